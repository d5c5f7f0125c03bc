package bot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/aura/transcribe"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

var _ conversation.Transcriber = (*transcribe.Client)(nil)

// fakeTranscriber is a Transcriber a test scripts.
type fakeTranscriber struct {
	mu    sync.Mutex
	names []string
	audio [][]byte
	fn    func(name string, audio []byte) (string, error)
}

func (f *fakeTranscriber) Transcribe(_ context.Context, name string, r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.names = append(f.names, name)
	f.audio = append(f.audio, data)
	fn := f.fn
	f.mu.Unlock()
	return fn(name, data)
}

func (f *fakeTranscriber) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.names)
}

// from is a private message of the allowed user, for the Push helpers of media messages.
func from(caption string) telegramtest.Incoming {
	return telegramtest.Incoming{
		Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: models.User{ID: user, FirstName: "Ann"}, Caption: caption,
	}
}

// sizes are a photo's sizes as Telegram sends them, smallest first.
var (
	small  = telegramtest.Image{Width: 320, Height: 213, Data: []byte("small jpeg")}
	medium = telegramtest.Image{Width: 1280, Height: 853, Data: []byte("medium jpeg")}
	large  = telegramtest.Image{Width: 2560, Height: 1706, Data: []byte("large jpeg")}
)

// A photo is sent to the model with its caption, in the largest size up to 1280 px; the
// picture is stored with the turn and goes with the history.
func TestPhoto(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(map[bool]string{false: "api", true: "local server"}[local], func(t *testing.T) {
			cfg := Config{}
			if local {
				cfg.Telegram.LocalFiles = t.TempDir()
			}
			e := newEnv(t, cfg)
			if local {
				e.tg.SetLocalMode(cfg.Telegram.LocalFiles)
			}
			e.model.fn = chunks("A cat.")
			m := e.tg.PushPhoto(from("what is this?"), small, medium, large)
			if got := e.final(user, m.ID)[0].Text; got != "A cat." {
				t.Fatalf("reply: got %q", got)
			}
			req := e.model.requests()[0]
			last := req[len(req)-1]
			if last.Content != "what is this?" || len(last.Images) != 1 || !bytes.Equal(last.Images[0].Data, medium.Data) || last.Images[0].MIME != "image/jpeg" {
				t.Fatalf("request: got %q with %d images, want the caption and the 1280 px size", last.Content, len(last.Images))
			}
			if n := len(e.tg.Calls("file")); local == (n != 0) {
				t.Errorf("downloads over HTTP: got %d (local mode %v)", n, local)
			}
			e.answered(history.Key{ChatID: user}, 2)
			e.model.fn = chunks("Still a cat.")
			e.final(user, e.say(user, user, "and its colour?"))
			req = e.model.requests()[1]
			if len(req) != 4 || len(req[1].Images) != 1 || !bytes.Equal(req[1].Images[0].Data, medium.Data) {
				t.Errorf("history: got %d messages, the photo turn with %d images; want the picture replayed", len(req), len(req[1].Images))
			}
		})
	}
}

// A photo without a caption asks a short default question; a photo whose sizes are all larger
// than 1280 px goes in the smallest.
func TestPhotoWithoutCaption(t *testing.T) {
	e := newEnv(t, Config{})
	m := e.tg.PushPhoto(from(""), large)
	e.final(user, m.ID)
	last := e.model.requests()[0][1]
	if last.Content != "What is in this picture?" || len(last.Images) != 1 || !bytes.Equal(last.Images[0].Data, large.Data) {
		t.Errorf("request: got %q with %d images", last.Content, len(last.Images))
	}
}

// The photos of an album are one turn: one request, one reply, every update finished.
func TestAlbum(t *testing.T) {
	e := newEnv(t, Config{})
	in := from("compare these")
	in.MediaGroupID = "album-1"
	first := e.tg.PushPhoto(in, small)
	in.Caption = ""
	e.tg.PushPhoto(in, medium)
	e.tg.PushPhoto(in, telegramtest.Image{Width: 800, Height: 600, Data: []byte("third")})
	e.final(user, first.ID)
	e.answered(history.Key{ChatID: user}, 2)
	reqs := e.model.requests()
	if len(reqs) != 1 {
		t.Fatalf("model requests: got %d, want 1 for the album", len(reqs))
	}
	last := reqs[0][1]
	if last.Content != "compare these" || len(last.Images) != 3 || string(last.Images[2].Data) != "third" {
		t.Errorf("request: got %q with %d images, want the caption and 3 pictures in order", last.Content, len(last.Images))
	}
	if n := len(e.tg.Calls("sendMessage")); n != 1 {
		t.Errorf("sendMessage calls: got %d, want 1 reply", n)
	}
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 0
	})
}

// With a text-only model server (chatbot-ui) a photo gets a notice and nothing is sent.
func TestPhotoTextOnly(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{TextOnly: true}})
	m := e.tg.PushPhoto(from("what?"), small)
	e.wait(func() bool { return hasText(e.tg, user, m.ID, "takes text only") })
	if n := len(e.model.requests()); n != 0 || len(e.tg.Calls("getFile")) != 0 {
		t.Errorf("got %d model requests and %d getFile calls, want none", n, len(e.tg.Calls("getFile")))
	}
	if ts := e.turns(history.Key{ChatID: user}); len(ts) != 0 {
		t.Errorf("stored: got %d turns, want none", len(ts))
	}
	// An album gets one notice.
	in := from("")
	in.MediaGroupID = "g"
	a := e.tg.PushPhoto(in, small)
	e.tg.PushPhoto(in, small)
	e.wait(func() bool { return hasText(e.tg, user, a.ID, "takes text only") })
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 0
	})
	if n := len(e.tg.Calls("sendMessage")); n != 2 {
		t.Errorf("notices: got %d, want one for the photo and one for the album", n)
	}
}

// A model that cannot see answers the picture with an error: the user is told to pick another
// with /model, and the picture stays, so that /model then /retry sends it to the new model.
func TestModelRefusesImages(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Models: []conversation.ModelChoice{{ID: "text-model"}, {ID: "vision-model", Name: "Vision"}}, DefaultModel: "text-model"}})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("", &aura.StatusError{StatusCode: 400, Reason: "model does not support image input"})
	}
	m := e.tg.PushPhoto(from("what?"), small)
	e.wait(func() bool {
		return hasText(e.tg, user, m.ID, "/model") && hasText(e.tg, user, m.ID, "does not support image input")
	})
	sw := e.say(user, user, "/model Vision")
	e.wait(func() bool { return hasText(e.tg, user, sw, "Switched to Vision") })
	e.model.fn = chunks("A picture.")
	e.say(user, user, "/retry")
	e.wait(func() bool { return hasText(e.tg, user, m.ID, "A picture.") })
	asked := e.model.asked()
	reqs := e.model.requests()
	if len(asked) != 2 || asked[0] != "text-model" || asked[1] != "vision-model" || len(reqs[1][1].Images) != 1 {
		t.Errorf("models asked: got %q, want text-model then vision-model with the picture", asked)
	}
}

// A voice message is transcribed; the reply shows the transcript quoted above the answer, and
// history holds the transcript as the user's turn and the answer alone.
func TestVoice(t *testing.T) {
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) { return "what is 2+2?", nil }}
	e := newEnv(t, Config{Transcriber: tr})
	e.model.fn = chunks("Four.")
	m := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS voice"), Duration: 2})
	ms := e.final(user, m.ID)
	if want := "🎤 \"what is 2+2?\"\n\nFour."; ms[0].Text != want {
		t.Errorf("reply: got %q, want %q", ms[0].Text, want)
	}
	if !hasEntity(ms[0], models.MessageEntityTypeBlockquote) {
		t.Errorf("reply entities: got %+v, want the transcript in a quote", ms[0].Entities)
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if ts[0].Content != "what is 2+2?" || ts[1].Content != "Four." {
		t.Errorf("stored: got %q, %q; want the transcript, then the answer alone", ts[0].Content, ts[1].Content)
	}
	if lastUser(e.model.requests()[0]) != "what is 2+2?" || tr.names[0] != "voice.ogg" || string(tr.audio[0]) != "OggS voice" {
		t.Errorf("got request %q, transcribed %q; want the transcript asked, the voice file sent", lastUser(e.model.requests()[0]), tr.names)
	}
	// Audio files and video notes go the same way.
	a := e.tg.PushAudio(from(""), telegramtest.File{Data: []byte("ID3"), FileName: "talk.mp3", MIMEType: "audio/mpeg"})
	e.final(user, a.ID)
	v := e.tg.PushVideoNote(from(""), telegramtest.File{Data: []byte("mp4"), Length: 240})
	e.final(user, v.ID)
	if tr.calls() != 3 || tr.names[1] != "talk.mp3" || tr.names[2] != "video_note.mp4" {
		t.Errorf("transcribed: got %q", tr.names)
	}
}

func hasEntity(m telegramtest.Message, typ models.MessageEntityType) bool {
	for _, e := range m.Entities {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// Without a speech-to-text server, a voice message gets a notice, once an hour per chat.
func TestVoiceNotSetUp(t *testing.T) {
	e := newEnv(t, Config{})
	m := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS")})
	e.wait(func() bool { return hasText(e.tg, user, m.ID, "not set up") })
	again := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS")})
	e.final(user, e.say(user, user, "hello"))
	if hasText(e.tg, user, again.ID, "not set up") || len(e.model.requests()) != 1 {
		t.Errorf("a second notice within the hour, or a request for the voice")
	}
}

// A transcription failure is a notice with /retry, and /retry downloads the recording again
// and answers it.
func TestVoiceRetryAfterFailure(t *testing.T) {
	fail := true
	var mu sync.Mutex
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return "", &transcribe.StatusError{StatusCode: 503, Reason: "model loading"}
		}
		return "hello", nil
	}}
	e := newEnv(t, Config{Transcriber: tr})
	e.model.fn = chunks("Hi!")
	m := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS")})
	e.wait(func() bool {
		return hasText(e.tg, user, m.ID, "could not transcribe") && hasText(e.tg, user, m.ID, "/retry")
	})
	if n := len(e.model.requests()); n != 0 {
		t.Fatalf("model requests after a failed transcription: got %d, want 0", n)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	e.say(user, user, "/retry")
	e.wait(func() bool { return hasText(e.tg, user, m.ID, "🎤 \"hello\"\n\nHi!") })
	if tr.calls() != 2 || len(e.tg.Calls("getFile")) != 2 {
		t.Errorf("got %d transcriptions and %d getFile calls, want 2 of each", tr.calls(), len(e.tg.Calls("getFile")))
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if ts[0].Content != "hello" || ts[1].Content != "Hi!" {
		t.Errorf("stored: got %q, %q", ts[0].Content, ts[1].Content)
	}
}

// A recording over Telegram's 20 MB download limit gets a notice without any download.
func TestVoiceTooBig(t *testing.T) {
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) { return "x", nil }}
	e := newEnv(t, Config{Transcriber: tr})
	id := e.tg.NewMessageID(user)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: id, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user},
		Audio: &models.Audio{FileID: "big", FileName: "podcast.mp3", FileSize: 30 << 20},
	}})
	e.wait(func() bool { return hasText(e.tg, user, id, "too big") && hasText(e.tg, user, id, "20 MB") })
	if len(e.tg.Calls("getFile")) != 0 || tr.calls() != 0 {
		t.Error("a file over 20 MB was asked for")
	}
}

// A text file is read into the turn: its name and content in a fenced block, then the caption.
func TestTextFile(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{MaxFileBytes: 2048, Budget: history.Budget{Chars: 1000}}})
	m := e.tg.PushDocument(from("what does it do?"), telegramtest.File{
		Data: []byte("package main\n\nfunc main() { println(\"```\") }\n\xff"), FileName: "main.go", MIMEType: "application/octet-stream",
	})
	e.final(user, m.ID)
	want := "File main.go:\n````\npackage main\n\nfunc main() { println(\"```\") }\n\uFFFD\n````\n\nwhat does it do?"
	if got := lastUser(e.model.requests()[0]); got != want {
		t.Errorf("request: got %q, want %q", got, want)
	}
	// Too big, not text, too long for the window.
	big := e.tg.PushDocument(from(""), telegramtest.File{Data: make([]byte, 4096), FileName: "big.txt", MIMEType: "text/plain"})
	e.wait(func() bool { return hasText(e.tg, user, big.ID, "too big") && hasText(e.tg, user, big.ID, "2 KiB") })
	zip := e.tg.PushDocument(from(""), telegramtest.File{Data: []byte("PK\x03\x04"), FileName: "a.zip", MIMEType: "application/zip"})
	e.wait(func() bool {
		return hasText(e.tg, user, zip.ID, "not a text file") && hasText(e.tg, user, zip.ID, ".csv")
	})
	long := e.tg.PushDocument(from(""), telegramtest.File{Data: bytes.Repeat([]byte("word "), 400), FileName: "notes.md"})
	e.wait(func() bool { return hasText(e.tg, user, long.ID, "too long for the model") })
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("model requests: got %d, want only the first file's", n)
	}
}

// /model shows the model and a keyboard; a press switches this chat, and the next answer comes
// from the chosen model. In openai mode without AURA_MODELS, the list is the server's.
func TestModelPicker(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{DefaultModel: "llama3"}})
	e.model.list = func() ([]string, error) { return []string{"llama3", "qwen2.5-vl"}, nil }
	cmd := e.say(user, user, "/model")
	var picker telegramtest.Message
	e.wait(func() bool {
		for _, m := range e.tg.Messages(user) {
			if m.ReplyTo == cmd && strings.Contains(m.Markup, "qwen2.5-vl") {
				picker = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(picker.Text, "The model is llama3") || !strings.Contains(picker.Markup, "✓ llama3") {
		t.Errorf("picker: got %q, %s", picker.Text, picker.Markup)
	}
	data := modelButton(t, picker.Markup, "qwen2.5-vl")
	e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "press", From: models.User{ID: user}, Data: data,
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{ID: picker.ID, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}}},
	}})
	e.wait(func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if strings.Contains(c.Params["text"], "Switched to qwen2.5-vl") {
				return true
			}
		}
		return false
	})
	e.final(user, e.say(user, user, "hi"))
	if got := e.model.asked(); len(got) != 1 || got[0] != "qwen2.5-vl" {
		t.Errorf("model asked: got %q, want qwen2.5-vl", got)
	}
	// The same press on a list that changed since switches to nothing.
	e.model.list = func() ([]string, error) { return []string{"other", "models"}, nil }
	e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "stale", From: models.User{ID: user}, Data: data,
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{ID: picker.ID, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}}},
	}})
	e.wait(func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if strings.Contains(c.Params["text"], "has changed") {
				return true
			}
		}
		return false
	})
	// A model server that cannot list its models.
	e.model.list = func() ([]string, error) { return nil, errors.New("aura: models: unreachable") }
	bad := e.say(user, user, "/model")
	e.wait(func() bool { return hasText(e.tg, user, bad, "could not get the list of models") })
}

// /model <name> switches by id or display name; an unknown one is refused.
func TestModelByName(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Models: []conversation.ModelChoice{{ID: "a"}, {ID: "b-1", Name: "Bee One"}}, DefaultModel: "a"}})
	sw := e.say(user, user, "/model bee one")
	e.wait(func() bool { return hasText(e.tg, user, sw, "Switched to Bee One") })
	unknown := e.say(user, user, "/model c")
	e.wait(func() bool { return hasText(e.tg, user, unknown, "no model \"c\"") })
	e.final(user, e.say(user, user, "hi"))
	if got := e.model.asked(); len(got) != 1 || got[0] != "b-1" {
		t.Errorf("model asked: got %q, want b-1", got)
	}
	shown := e.say(user, user, "/model")
	e.wait(func() bool { return hasText(e.tg, user, shown, "The model is Bee One") })
}

// modelButton is the callback data of the button labelled label in an inline keyboard.
func modelButton(t *testing.T, markup, label string) string {
	t.Helper()
	i := strings.Index(markup, `"text":"`+label+`"`)
	if i < 0 {
		t.Fatalf("no button %q in %s", label, markup)
	}
	rest := markup[i:]
	j := strings.Index(rest, `"callback_data":"`)
	rest = rest[j+len(`"callback_data":"`):]
	data := rest[:strings.IndexByte(rest, '"')]
	if len(data) == 0 || len(data) > 64 {
		t.Fatalf("callback data %q: want 1-64 bytes", data)
	}
	return data
}

// In a group, an album whose caption mentions the bot is one turn, its later photos (without a
// mention) included, and the turn carries its author; a photo that does not mention the bot is
// left alone.
func TestAlbumInGroup(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	in := telegramtest.Incoming{
		Chat: models.Chat{ID: group, Type: models.ChatTypeSupergroup}, From: models.User{ID: 555, FirstName: "Bob"},
		Caption: "@" + telegramtest.BotUsername + " which is older?", MediaGroupID: "g1",
	}
	first := e.tg.PushPhoto(in, small)
	in.Caption = ""
	e.tg.PushPhoto(in, medium)
	in.MediaGroupID = ""
	e.final(group, first.ID)
	ignored := e.tg.PushPhoto(in, small)
	e.final(group, e.say(group, 555, "@"+telegramtest.BotUsername+" thanks"))
	reqs := e.model.requests()
	if len(reqs) != 2 {
		t.Fatalf("model requests: got %d, want the album and the text", len(reqs))
	}
	turn := reqs[0][1]
	if turn.Content != "Bob: which is older?" || len(turn.Images) != 2 {
		t.Errorf("album turn: got %q with %d images, want Bob's question with both photos", turn.Content, len(turn.Images))
	}
	if hasText(e.tg, group, ignored.ID, "") {
		t.Error("a photo that does not mention the bot got a reply")
	}
}

// A recording that could not be transcribed is not sent to the model with later messages: it
// has no text yet.
func TestUnheardVoiceIsNotSent(t *testing.T) {
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) { return "", errors.New("connection refused") }}
	e := newEnv(t, Config{Transcriber: tr})
	v := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS")})
	e.wait(func() bool { return hasText(e.tg, user, v.ID, "could not transcribe") })
	e.final(user, e.say(user, user, "typed"))
	req := e.model.requests()[0]
	if len(req) != 2 || req[1].Content != "typed" {
		t.Errorf("request: got %+v, want the prompt and the typed message only", req)
	}
}

// The transcript above an answer does not hide an empty answer: the user is told, and nothing
// is stored as the answer.
func TestVoiceEmptyAnswer(t *testing.T) {
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) { return "hm", nil }}
	e := newEnv(t, Config{Transcriber: tr})
	e.model.fn = chunks()
	v := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS")})
	ms := e.final(user, v.ID)
	if !strings.HasPrefix(ms[0].Text, "🎤 \"hm\"") || !strings.Contains(ms[0].Text, "empty answer") {
		t.Errorf("reply: got %q, want the transcript and the empty-answer notice", ms[0].Text)
	}
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 0
	})
	if ts := e.turns(history.Key{ChatID: user}); len(ts) != 1 || ts[0].Content != "hm" {
		t.Errorf("stored: got %+v, want the transcript alone", ts)
	}
}
