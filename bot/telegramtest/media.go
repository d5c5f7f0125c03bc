package telegramtest

import (
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-telegram/bot/models"
)

// MaxDownloadSize is the largest file getFile hands out outside local mode (20 MiB, as
// telegram-bot-api's MAX_DOWNLOAD_FILE_SIZE).
const MaxDownloadSize = 20 << 20

// Incoming describes a message a user sends, for the Push helpers of media messages. The
// helpers give it the next message id of its chat and the current date.
type Incoming struct {
	Chat     models.Chat
	From     models.User
	ThreadID int
	Caption  string
	// MediaGroupID puts the message in an album: Telegram sends each item of an album as a
	// message of its own with the same media_group_id.
	MediaGroupID string
}

// Image is one size of a photo.
type Image struct {
	Width, Height int
	Data          []byte
}

// File is the content and description of a voice message, an audio file, a video note or a
// document.
type File struct {
	Data     []byte
	FileName string // audio files and documents
	MIMEType string // voice, audio and documents; a voice message defaults to audio/ogg
	Duration int    // voice, audio and video notes, in seconds
	Length   int    // video notes: the width and height of the square video
}

// storedFile is a file the server can hand out with getFile.
type storedFile struct {
	id, uniqueID string
	path         string // relative, as getFile answers it outside local mode
	data         []byte
	answer       string // set by AnswerFilePath: what getFile answers instead
}

// addFile registers data under a new file id; kind is the folder Telegram puts it in. It runs
// with s.mu held.
func (s *Server) addFile(data []byte, kind, ext string) *storedFile {
	s.nextFile++
	n := s.nextFile
	f := &storedFile{
		id:       fmt.Sprintf("FILE-%d-%s", n, kind),
		uniqueID: fmt.Sprintf("U%d", n),
		path:     fmt.Sprintf("%s/file_%d%s", kind, n, ext),
		data:     append([]byte(nil), data...),
	}
	s.files[f.id] = f
	return f
}

// incoming builds a user's message in a chat and registers its id. It runs with s.mu held.
func (s *Server) incoming(in Incoming) *models.Message {
	c := s.chat(in.Chat.ID)
	c.last++
	c.user[c.last] = true
	from := in.From
	return &models.Message{
		ID: c.last, MessageThreadID: in.ThreadID, Date: int(time.Now().Unix()),
		Chat: in.Chat, From: &from, Caption: in.Caption, MediaGroupID: in.MediaGroupID,
	}
}

// pushMessage queues a message update. It runs with s.mu held.
func (s *Server) pushMessage(m *models.Message) models.Message {
	addMentions(m)
	s.updates = append(s.updates, models.Update{ID: s.nextUpd, Message: m})
	s.nextUpd++
	s.changed()
	return *m
}

// PushPhoto queues a message with a photo in the given sizes (smallest first, as Telegram sends
// them) and returns it.
func (s *Server) PushPhoto(in Incoming, sizes ...Image) models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.incoming(in)
	for _, im := range sizes {
		f := s.addFile(im.Data, "photos", ".jpg")
		m.Photo = append(m.Photo, models.PhotoSize{
			FileID: f.id, FileUniqueID: f.uniqueID, Width: im.Width, Height: im.Height, FileSize: len(im.Data),
		})
	}
	return s.pushMessage(m)
}

// PushVoice queues a voice message and returns it.
func (s *Server) PushVoice(in Incoming, v File) models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.incoming(in)
	f := s.addFile(v.Data, "voice", ".oga")
	mime := v.MIMEType
	if mime == "" {
		mime = "audio/ogg"
	}
	m.Voice = &models.Voice{FileID: f.id, FileUniqueID: f.uniqueID, Duration: v.Duration, MimeType: mime, FileSize: int64(len(v.Data))}
	return s.pushMessage(m)
}

// PushAudio queues a message with an audio file and returns it.
func (s *Server) PushAudio(in Incoming, a File) models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.incoming(in)
	f := s.addFile(a.Data, "music", path.Ext(a.FileName))
	m.Audio = &models.Audio{
		FileID: f.id, FileUniqueID: f.uniqueID, Duration: a.Duration, FileName: a.FileName,
		MimeType: a.MIMEType, FileSize: int64(len(a.Data)),
	}
	return s.pushMessage(m)
}

// PushVideoNote queues a video note (a round video message) and returns it.
func (s *Server) PushVideoNote(in Incoming, v File) models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.incoming(in)
	f := s.addFile(v.Data, "video_notes", ".mp4")
	m.VideoNote = &models.VideoNote{FileID: f.id, FileUniqueID: f.uniqueID, Length: v.Length, Duration: v.Duration, FileSize: len(v.Data)}
	return s.pushMessage(m)
}

// PushDocument queues a message with a document (any file sent as a file) and returns it.
func (s *Server) PushDocument(in Incoming, d File) models.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.incoming(in)
	f := s.addFile(d.Data, "documents", path.Ext(d.FileName))
	m.Document = &models.Document{
		FileID: f.id, FileUniqueID: f.uniqueID, FileName: d.FileName, MimeType: d.MIMEType, FileSize: int64(len(d.Data)),
	}
	return s.pushMessage(m)
}

// SetLocalMode makes the server behave as telegram-bot-api started with --local and dir as its
// working directory: getFile writes the file under dir/<token>/ and answers its absolute path,
// with no size limit, and files are not served over HTTP. An empty dir turns local mode off.
func (s *Server) SetLocalMode(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.localDir = dir
}

// AnswerFilePath makes getFile answer filePath for the file fileID, whatever the mode: a Bot
// API server (a remote one, or one that was broken into) naming any path it likes, such as
// /proc/self/environ.
func (s *Server) AnswerFilePath(fileID, filePath string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[fileID]; f != nil {
		f.answer = filePath
	}
}

// getFile answers getFile. It runs with s.mu held.
func (s *Server) getFile(p map[string]string) (any, *Fault) {
	f := s.files[p["file_id"]]
	if f == nil {
		return nil, &Fault{Code: 400, Description: "Bad Request: invalid file_id"}
	}
	out := models.File{FileID: f.id, FileUniqueID: f.uniqueID, FileSize: int64(len(f.data)), FilePath: f.path}
	if f.answer != "" {
		out.FilePath = f.answer
		return out, nil
	}
	if s.localDir == "" {
		if len(f.data) > MaxDownloadSize {
			return nil, &Fault{Code: 400, Description: "Bad Request: file is too big"}
		}
		return out, nil
	}
	dir, err := filepath.Abs(s.localDir)
	if err != nil {
		return nil, &Fault{Code: 500, Description: "Internal Server Error: " + err.Error()}
	}
	local := filepath.Join(dir, Token, filepath.FromSlash(f.path))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, &Fault{Code: 500, Description: "Internal Server Error: cannot write the file"}
	}
	if err := os.WriteFile(local, f.data, 0o644); err != nil {
		return nil, &Fault{Code: 500, Description: "Internal Server Error: cannot write the file"}
	}
	out.FilePath = local
	return out, nil
}

// download serves GET /file/bot<token>/<file_path>, as api.telegram.org does.
func (s *Server) download(w http.ResponseWriter, filePath string) {
	s.mu.Lock()
	var data []byte
	found := false
	if s.localDir == "" {
		for _, f := range s.files {
			if f.path == filePath && len(f.data) <= MaxDownloadSize {
				data, found = f.data, true
				break
			}
		}
	}
	s.calls = append(s.calls, Call{Method: "file", Params: map[string]string{"file_path": filePath}, At: time.Now()})
	if !found {
		s.calls[len(s.calls)-1].Status = http.StatusNotFound
	}
	s.changed()
	s.mu.Unlock()
	if !found {
		fail(w, Fault{Code: http.StatusNotFound, Description: "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}
