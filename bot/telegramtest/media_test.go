package telegramtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
)

func updates(t *testing.T, s *telegramtest.Server) []models.Update {
	t.Helper()
	r := post(t, s.URL(), "getUpdates", map[string]string{"timeout": "0"})
	var us []models.Update
	if err := json.Unmarshal(r.Result, &us); err != nil {
		t.Fatalf("getUpdates: %v in %s", err, r.Result)
	}
	return us
}

// getFile calls getFile and decodes the file, or returns the refusal.
func getFile(t *testing.T, s *telegramtest.Server, id string) (models.File, reply) {
	t.Helper()
	r := post(t, s.URL(), "getFile", map[string]string{"file_id": id})
	var f models.File
	if r.OK {
		if err := json.Unmarshal(r.Result, &f); err != nil {
			t.Fatal(err)
		}
	}
	return f, r
}

func download(t *testing.T, base, token, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/file/bot" + token + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

var ann = telegramtest.Incoming{
	Chat: models.Chat{ID: 21, Type: models.ChatTypePrivate},
	From: models.User{ID: 21, FirstName: "Ann"},
}

// A photo comes in several sizes, each a file of its own that getFile and /file/ hand out.
func TestPushPhotoAndDownload(t *testing.T) {
	s := newServer(t)
	in := ann
	in.Caption = "what is this?"
	small, big := []byte("small jpeg"), []byte("a bigger jpeg, in full")
	pushed := s.PushPhoto(in, telegramtest.Image{Width: 90, Height: 60, Data: small}, telegramtest.Image{Width: 1280, Height: 853, Data: big})
	us := updates(t, s)
	if len(us) != 1 || us[0].Message == nil {
		t.Fatalf("updates: got %+v, want one message", us)
	}
	m := us[0].Message
	if m.ID != 1 || m.ID != pushed.ID || m.Caption != "what is this?" || m.Chat.ID != 21 || m.From.ID != 21 || m.Date == 0 {
		t.Errorf("message: got %+v, want id 1 from Ann with the caption", m)
	}
	if len(m.Photo) != 2 {
		t.Fatalf("photo sizes: got %+v, want 2", m.Photo)
	}
	for i, want := range []struct {
		w, h int
		data []byte
	}{{90, 60, small}, {1280, 853, big}} {
		ps := m.Photo[i]
		if ps.Width != want.w || ps.Height != want.h || ps.FileSize != len(want.data) || ps.FileID == "" || ps.FileUniqueID == "" {
			t.Errorf("size %d: got %+v, want %dx%d of %d bytes", i, ps, want.w, want.h, len(want.data))
		}
		f, r := getFile(t, s, ps.FileID)
		if !r.OK || f.FileID != ps.FileID || f.FileUniqueID != ps.FileUniqueID || f.FileSize != int64(len(want.data)) || f.FilePath == "" {
			t.Fatalf("getFile of size %d: got %+v %q, want the file with a path", i, f, r.Description)
		}
		status, got := download(t, s.URL(), telegramtest.Token, f.FilePath)
		if status != 200 || !bytes.Equal(got, want.data) {
			t.Errorf("download of size %d: got %d %q, want %q", i, status, got, want.data)
		}
	}
	if m.Photo[0].FileID == m.Photo[1].FileID || m.Photo[0].FileUniqueID == m.Photo[1].FileUniqueID {
		t.Errorf("sizes share a file id: %+v", m.Photo)
	}
	if status, _ := download(t, s.URL(), "1:wrong", "photos/file_1.jpg"); status != 401 {
		t.Errorf("download with a wrong token: got %d, want 401", status)
	}
	if status, _ := download(t, s.URL(), telegramtest.Token, "photos/none.jpg"); status != 404 {
		t.Errorf("download of an unknown path: got %d, want 404", status)
	}
	if _, r := getFile(t, s, "no-such-file"); r.OK || r.ErrorCode != 400 || r.Description != "Bad Request: invalid file_id" {
		t.Errorf("getFile of an unknown id: got %d %q, want 400 invalid file_id", r.ErrorCode, r.Description)
	}
}

// Voice messages, audio files, video notes and documents carry their descriptions, and their
// files download as they were pushed.
func TestPushOtherMedia(t *testing.T) {
	s := newServer(t)
	doc := ann
	doc.Caption = "summarise this"
	s.PushVoice(ann, telegramtest.File{Data: []byte("OggS voice"), Duration: 3})
	s.PushAudio(ann, telegramtest.File{Data: []byte("ID3 song"), FileName: "song.mp3", MIMEType: "audio/mpeg", Duration: 200})
	s.PushVideoNote(ann, telegramtest.File{Data: []byte("mp4 round"), Length: 384, Duration: 9})
	s.PushDocument(doc, telegramtest.File{Data: []byte("%PDF-1.7"), FileName: "report.pdf", MIMEType: "application/pdf"})
	us := updates(t, s)
	if len(us) != 4 {
		t.Fatalf("updates: got %d, want 4", len(us))
	}
	type file struct {
		id   string
		size int64
		data string
	}
	var files []file
	if v := us[0].Message.Voice; v == nil || v.Duration != 3 || v.MimeType != "audio/ogg" || v.FileSize != 10 {
		t.Errorf("voice: got %+v, want 3 s of audio/ogg, 10 bytes", v)
	} else {
		files = append(files, file{v.FileID, v.FileSize, "OggS voice"})
	}
	if a := us[1].Message.Audio; a == nil || a.FileName != "song.mp3" || a.MimeType != "audio/mpeg" || a.Duration != 200 || a.FileSize != 8 {
		t.Errorf("audio: got %+v, want song.mp3", a)
	} else {
		files = append(files, file{a.FileID, a.FileSize, "ID3 song"})
	}
	if v := us[2].Message.VideoNote; v == nil || v.Length != 384 || v.Duration != 9 || v.FileSize != 9 {
		t.Errorf("video note: got %+v, want 384 px, 9 s", v)
	} else {
		files = append(files, file{v.FileID, int64(v.FileSize), "mp4 round"})
	}
	m := us[3].Message
	if d := m.Document; d == nil || d.FileName != "report.pdf" || d.MimeType != "application/pdf" || d.FileSize != 8 || m.Caption != "summarise this" {
		t.Errorf("document: got %+v with caption %q, want report.pdf with its caption", d, m.Caption)
	} else {
		files = append(files, file{d.FileID, d.FileSize, "%PDF-1.7"})
	}
	for i, u := range us {
		if u.Message.ID != i+1 {
			t.Errorf("message %d: got id %d, want %d", i, u.Message.ID, i+1)
		}
	}
	for _, want := range files {
		f, r := getFile(t, s, want.id)
		if !r.OK || f.FileSize != want.size {
			t.Errorf("getFile %s: got %+v %q", want.id, f, r.Description)
			continue
		}
		if status, got := download(t, s.URL(), telegramtest.Token, f.FilePath); status != 200 || string(got) != want.data {
			t.Errorf("download %s: got %d %q, want %q", f.FilePath, status, got, want.data)
		}
	}
	if len(files) == 4 {
		if p := mustPath(t, s, files[3].id); !strings.HasSuffix(p, ".pdf") {
			t.Errorf("document path: got %q, want it to keep the .pdf extension", p)
		}
	}
}

func mustPath(t *testing.T, s *telegramtest.Server, id string) string {
	t.Helper()
	f, r := getFile(t, s, id)
	if !r.OK {
		t.Fatalf("getFile: %q", r.Description)
	}
	return f.FilePath
}

// Outside local mode getFile refuses files over 20 MiB; in local mode it writes them under the
// working directory and answers the absolute path, with no limit.
func TestGetFileSizeLimitAndLocalMode(t *testing.T) {
	s := newServer(t)
	limit := bytes.Repeat([]byte("a"), telegramtest.MaxDownloadSize)
	over := append(bytes.Repeat([]byte("b"), telegramtest.MaxDownloadSize), 'c')
	atLimit := s.PushDocument(ann, telegramtest.File{Data: limit, FileName: "limit.bin"}).Document
	tooBig := s.PushDocument(ann, telegramtest.File{Data: over, FileName: "big.bin"}).Document
	if tooBig.FileSize != telegramtest.MaxDownloadSize+1 {
		t.Fatalf("file_size: got %d, want %d", tooBig.FileSize, telegramtest.MaxDownloadSize+1)
	}
	if f, r := getFile(t, s, atLimit.FileID); !r.OK || f.FileSize != telegramtest.MaxDownloadSize {
		t.Errorf("getFile of exactly 20 MiB: got %d %q, want ok", r.ErrorCode, r.Description)
	}
	if _, r := getFile(t, s, tooBig.FileID); r.OK || r.Status != 400 || r.Description != "Bad Request: file is too big" {
		t.Errorf("getFile of 20 MiB + 1: got %d %q, want 400 file is too big", r.ErrorCode, r.Description)
	}

	dir := t.TempDir()
	s.SetLocalMode(dir)
	for _, tt := range []struct {
		doc  *models.Document
		data []byte
	}{{atLimit, limit}, {tooBig, over}} {
		f, r := getFile(t, s, tt.doc.FileID)
		if !r.OK {
			t.Fatalf("local getFile of %s: got %q, want ok", tt.doc.FileName, r.Description)
		}
		if !filepath.IsAbs(f.FilePath) || !strings.HasPrefix(f.FilePath, filepath.Join(dir, telegramtest.Token)+string(filepath.Separator)) {
			t.Errorf("local path: got %q, want an absolute path under %s/<token>/", f.FilePath, dir)
		}
		got, err := os.ReadFile(f.FilePath)
		if err != nil || !bytes.Equal(got, tt.data) {
			t.Errorf("local file %s: got %d bytes, %v; want the %d bytes pushed", f.FilePath, len(got), err, len(tt.data))
		}
		if status, _ := download(t, s.URL(), telegramtest.Token, "documents/"+filepath.Base(f.FilePath)); status != 404 {
			t.Errorf("HTTP download in local mode: got %d, want 404", status)
		}
	}
	s.SetLocalMode("")
	if f, r := getFile(t, s, atLimit.FileID); !r.OK || filepath.IsAbs(f.FilePath) {
		t.Errorf("getFile after local mode is off: got %+v %q, want a relative path", f, r.Description)
	}
}

// The items of an album are messages of their own with one media_group_id.
func TestPushAlbum(t *testing.T) {
	s := newServer(t)
	in := ann
	in.MediaGroupID = "13579"
	in.Caption = "our trip"
	s.PushPhoto(in, telegramtest.Image{Width: 10, Height: 10, Data: []byte("1")})
	in.Caption = ""
	s.PushDocument(in, telegramtest.File{Data: []byte("2"), FileName: "b.txt", MIMEType: "text/plain"})
	s.PushPhoto(ann, telegramtest.Image{Width: 10, Height: 10, Data: []byte("3")})
	us := updates(t, s)
	if len(us) != 3 {
		t.Fatalf("updates: got %d, want 3", len(us))
	}
	for i, want := range []string{"13579", "13579", ""} {
		if got := us[i].Message.MediaGroupID; got != want {
			t.Errorf("message %d media_group_id: got %q, want %q", i, got, want)
		}
	}
	if us[0].Message.Caption != "our trip" || us[1].ID != us[0].ID+1 {
		t.Errorf("album: got %+v, want the caption on the first item and consecutive updates", us[:2])
	}
}
