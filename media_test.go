package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// incoming is a private message of the allowed user, for the fake's media helpers.
func incoming(caption string) telegramtest.Incoming {
	return telegramtest.Incoming{
		Chat: models.Chat{ID: userID, Type: models.ChatTypePrivate}, From: models.User{ID: userID, FirstName: "Ann"}, Caption: caption,
	}
}

// The media paths end to end, in openai mode: a photo to a model that cannot see it, /model
// (the list from GET /v1/models) to one that can and /retry; a voice message transcribed by the
// speech-to-text server; a text file, and one too big; the picture replayed after a restart.
func TestEndToEndMedia(t *testing.T) {
	h := newHarness(t)
	h.aura.models = []string{"text-model", "vision-model"}
	h.aura.vision = map[string]bool{"vision-model": true}
	h.aura.transcribe = func(transcription) (int, string) { return http.StatusOK, `{"text":"what is on it?"}` }
	h.aura.reply = streamText("A red bicycle.")
	const key = "sk-transcribe-secret"
	extra := []string{
		"AURA_PROTOCOL=openai", "AURA_MODEL=text-model",
		"TRANSCRIBE_URL=" + h.aura.srv.URL, "TRANSCRIBE_KEY=" + key, "MAX_FILE_BYTES=1024",
	}
	h.start(extra...)

	// A photo: the model cannot see it, and the user is told what to do.
	photo := []byte("\xff\xd8\xff\xe0 a jpeg")
	p := h.tg.PushPhoto(incoming("what is this?"),
		telegramtest.Image{Width: 320, Height: 240, Data: []byte("thumb")}, telegramtest.Image{Width: 1280, Height: 960, Data: photo})
	h.wait(func() bool {
		return hasReply(h.tg, p.ID, "/model") && hasReply(h.tg, p.ID, "does not support image input")
	})

	// /model lists the server's models; a press picks the one that sees; /retry asks it.
	pick := h.send("/model")
	var picker telegramtest.Message
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == pick && strings.Contains(m.Markup, "vision-model") {
				picker = m
				return true
			}
		}
		return false
	})
	h.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "press", From: models.User{ID: userID}, Data: buttonData(t, picker.Markup, "vision-model"),
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{ID: picker.ID, Chat: models.Chat{ID: userID, Type: models.ChatTypePrivate}}},
	}})
	h.wait(func() bool { return hasReply(h.tg, pick, "Switched to vision-model") })
	h.send("/retry")
	h.wait(func() bool { return hasReply(h.tg, p.ID, "A red bicycle.") })
	reqs := h.aura.requests()
	r := reqs[len(reqs)-1]
	last := r.Messages[len(r.Messages)-1]
	if r.Model.ID != "vision-model" || last.Content != "what is this?" || len(last.Images) != 1 ||
		!bytes.Equal(last.Images[0].Data, photo) || last.Images[0].MIME != "image/jpeg" {
		t.Errorf("retried request: model %q, %q with %d images; want vision-model, the caption and the 1280 px photo", r.Model.ID, last.Content, len(last.Images))
	}

	// A voice message: transcribed, quoted above the answer, and asked as text.
	h.aura.reply = streamText("It is red.")
	v := h.tg.PushVoice(incoming(""), telegramtest.File{Data: []byte("OggS opus"), Duration: 3})
	h.wait(func() bool { return hasReply(h.tg, v.ID, "🎤 \"what is on it?\"\n\nIt is red.") })
	trs := h.aura.transcriptions()
	if len(trs) != 1 || trs[0].Auth != "Bearer "+key || trs[0].Model != "whisper-1" || trs[0].FileName != "voice.ogg" || string(trs[0].Audio) != "OggS opus" {
		t.Errorf("transcription requests: got %+v", trs)
	}
	reqs = h.aura.requests()
	if got := reqs[len(reqs)-1].Messages; got[len(got)-1].Content != "what is on it?" {
		t.Errorf("after the voice message: got %+v, want the transcript asked", got[len(got)-1])
	}

	// A text file is read; one over MAX_FILE_BYTES is refused.
	h.aura.reply = streamText("A list.")
	doc := h.tg.PushDocument(incoming("summarise"), telegramtest.File{Data: []byte("milk\neggs\n"), FileName: "list.txt", MIMEType: "text/plain"})
	h.wait(func() bool { return hasReply(h.tg, doc.ID, "A list.") })
	reqs = h.aura.requests()
	if got := reqs[len(reqs)-1].Messages; got[len(got)-1].Content != "File list.txt:\n```\nmilk\neggs\n```\n\nsummarise" {
		t.Errorf("file turn: got %q", got[len(got)-1].Content)
	}
	big := h.tg.PushDocument(incoming(""), telegramtest.File{Data: bytes.Repeat([]byte("x"), 2048), FileName: "big.log"})
	h.wait(func() bool { return hasReply(h.tg, big.ID, "too big") })

	// After a restart, the picture still goes with the history, from the database.
	h.stop()
	h.start(extra...)
	h.aura.reply = streamText("Yes.")
	h.replyTo(h.send("still there?"))
	reqs = h.aura.requests()
	r = reqs[len(reqs)-1]
	if r.Model.ID != "vision-model" || len(r.Messages) < 1 || len(r.Messages[0].Images) != 1 || !bytes.Equal(r.Messages[0].Images[0].Data, photo) {
		t.Errorf("after a restart: model %q, first turn %+v; want the chat's model and the picture replayed", r.Model.ID, r.Messages[0])
	}
	h.stop()
	if strings.Contains(h.logs.String(), key) {
		t.Error("the logs contain TRANSCRIBE_KEY")
	}
}

// In chatbot-ui mode a photo is refused at once (the protocol carries text only), and without
// TRANSCRIBE_URL a voice message is told that voice is not set up; a transcription failure
// elsewhere is a notice with /retry.
func TestEndToEndMediaRefused(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("ok")
	h.start()
	p := h.tg.PushPhoto(incoming("what?"), telegramtest.Image{Width: 10, Height: 10, Data: []byte("x")})
	h.wait(func() bool { return hasReply(h.tg, p.ID, "takes text only") })
	v := h.tg.PushVoice(incoming(""), telegramtest.File{Data: []byte("OggS")})
	h.wait(func() bool { return hasReply(h.tg, v.ID, "not set up") })
	if n := len(h.aura.requests()); n != 0 || len(h.tg.Calls("getFile")) != 0 {
		t.Errorf("got %d model requests and %d downloads, want none", n, len(h.tg.Calls("getFile")))
	}
	h.stop()

	h.aura.transcribe = func(transcription) (int, string) {
		return http.StatusServiceUnavailable, `{"error":{"message":"model is loading"}}`
	}
	h.start("TRANSCRIBE_URL=" + h.aura.srv.URL)
	v = h.tg.PushVoice(incoming(""), telegramtest.File{Data: []byte("OggS")})
	h.wait(func() bool { return hasReply(h.tg, v.ID, "could not transcribe") && hasReply(h.tg, v.ID, "/retry") })
	h.aura.transcribe = func(transcription) (int, string) { return http.StatusOK, `{"text":"hello"}` }
	h.send("/retry")
	h.wait(func() bool { return hasReply(h.tg, v.ID, "🎤 \"hello\"\n\nok") })
	h.stop()
}

// buttonData is the callback data of the button labelled label in an inline keyboard.
func buttonData(t *testing.T, markup, label string) string {
	t.Helper()
	i := strings.Index(markup, `"text":"`+label+`"`)
	if i < 0 {
		t.Fatalf("no button %q in %s", label, markup)
	}
	rest := markup[i:]
	rest = rest[strings.Index(rest, `"callback_data":"`)+len(`"callback_data":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// A bot killed with SIGKILL while it answers a voice message shows, after the restart, the
// transcript, the text so far and the interrupted notice, once; the history holds the transcript
// and the answer without the quote, and the recording is transcribed only once.
func TestKilledMidVoiceReply(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	defer close(release)
	h.aura.transcribe = func(transcription) (int, string) { return http.StatusOK, `{"text":"tell me a story"}` }
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Once upon a time"))
		flush()
		<-release // never finishes while the first process lives
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"AURABOT_TEST_MAIN=1",
		"TELEGRAM_TOKEN="+telegramtest.Token,
		"TELEGRAM_API_URL="+h.tg.URL(),
		"AURA_URL="+h.aura.srv.URL,
		"TRANSCRIBE_URL="+h.aura.srv.URL,
		"DATABASE_PATH="+h.db,
		"ALLOWED_USERS="+strconv.Itoa(userID),
		"LISTEN_ADDR=127.0.0.1:0",
	)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > 0 })
	v := h.tg.PushVoice(incoming(""), telegramtest.File{Data: []byte("OggS")})
	h.wait(func() bool { return hasReply(h.tg, v.ID, "Once upon a time") })
	deadline := time.Now().Add(10 * time.Second)
	for !recorded(t, h.db, "> 🎤 \"tell me a story\"\n\nOnce upon a time") {
		if time.Now().After(deadline) {
			t.Fatal("the reply's progress was never recorded")
		}
		time.Sleep(10 * time.Millisecond) // polling the database file, which signals nothing
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	h.start("TRANSCRIBE_URL=" + h.aura.srv.URL)
	got := h.replyTo(v.ID)
	if !strings.HasPrefix(got.Text, "🎤 \"tell me a story\"\n\nOnce upon a time") || !strings.Contains(got.Text, "Interrupted") {
		t.Errorf("reply after the restart: got %q, want the transcript, the text so far and the notice", got.Text)
	}
	h.stop()
	if n := len(h.aura.transcriptions()); n != 1 {
		t.Errorf("transcriptions: got %d, want 1", n)
	}
	store, err := history.Open(context.Background(), h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ts, err := store.Turns(context.Background(), history.Key{ChatID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Content != "tell me a story" || ts[1].Content != "Once upon a time" {
		t.Errorf("stored: got %+v, want the transcript and the answer without the quote", ts)
	}
}
