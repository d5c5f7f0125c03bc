package history

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// Images are stored with their turn, come back with the window in order, and go with the turn.
func TestImagesStoredWithTurn(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ims := []Image{{MIME: "image/jpeg", Data: []byte{0xff, 0xd8, 1}}, {MIME: "image/png", Data: []byte("\x89PNG2")}}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "text first", MessageID: 1})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "ok", MessageID: 2})
	stored := mustAppend(t, s, k, Turn{Role: RoleUser, Content: "what is this?", MessageID: 3, Images: ims})
	if stored.ImageCount() != 2 {
		t.Errorf("Append: got %d images, want 2", stored.ImageCount())
	}
	w, err := s.Window(t.Context(), k, Budget{Chars: 1000}, "")
	if err != nil || len(w) != 3 {
		t.Fatalf("Window: got %d turns, %v; want 3", len(w), err)
	}
	if len(w[0].Images) != 0 || len(w[2].Images) != 2 || !bytes.Equal(w[2].Images[1].Data, ims[1].Data) || w[2].Images[1].MIME != "image/png" {
		t.Errorf("Window images: got %+v, want the two images on the last turn, in order", w[2].Images)
	}
	// A redelivered message keeps its images, once.
	again, inserted, err := s.Append(t.Context(), k, Turn{Role: RoleUser, Content: "what is this?", MessageID: 3, Images: ims[:1]})
	if err != nil || inserted || len(again.Images) != 2 {
		t.Errorf("Append again: got inserted %v, %d images, %v; want false, the 2 stored", inserted, len(again.Images), err)
	}
	// A backup holds them.
	backup := filepath.Join(t.TempDir(), "copy.db")
	if err := s.Backup(t.Context(), backup); err != nil {
		t.Fatal(err)
	}
	b, err := Open(t.Context(), backup)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Images(t.Context(), stored.ID)
	b.Close()
	if err != nil || len(got) != 2 || !bytes.Equal(got[0].Data, ims[0].Data) {
		t.Errorf("images in the backup: got %d, %v; want 2", len(got), err)
	}
	if err := s.Reset(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Images(t.Context(), stored.ID); err != nil || len(got) != 0 {
		t.Errorf("images after /reset: got %d, %v; want none", len(got), err)
	}
}

// Each image counts ImageTokens tokens against the window.
func TestImagesCountInWindow(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "old", MessageID: 1, Images: []Image{{MIME: "image/jpeg", Data: []byte{1}}}})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "a", MessageID: 2})
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "new", MessageID: 3})
	three := Budget{Tokens: 10 + 800, ImageTokens: 800}
	if w, err := s.Window(t.Context(), k, three, ""); err != nil || len(w) != 3 {
		t.Errorf("Window with room for the image: got %d turns, %v; want 3", len(w), err)
	}
	two := Budget{Tokens: 799, ImageTokens: 800}
	if w, err := s.Window(t.Context(), k, two, ""); err != nil || len(w) != 2 {
		t.Errorf("Window without room for the image: got %d turns, %v; want 2", len(w), err)
	}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "look", MessageID: 4, Images: []Image{{MIME: "image/jpeg", Data: []byte{1}}}})
	var long *TooLongError
	if _, err := s.Window(t.Context(), k, two, ""); !errors.As(err, &long) {
		t.Errorf("Window with an image that cannot fit: got %v, want a TooLongError", err)
	}
}

// A spoken turn is stored before its transcript, which is then counted like any text.
func TestSetTranscript(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	turn := mustAppend(t, s, k, Turn{Role: RoleUser, MessageID: 1, Author: "Ann", Audio: Audio{FileID: "F1", Name: "voice.ogg"}})
	if !turn.Untranscribed() {
		t.Fatal("got a transcribed turn, want one waiting for its transcript")
	}
	if err := s.SetTranscript(t.Context(), k, turn.ID, "hello there"); err != nil {
		t.Fatal(err)
	}
	ts := mustTurns(t, s, k)
	if ts[0].Content != "hello there" || ts[0].Audio.FileID != "F1" || ts[0].Audio.Name != "voice.ogg" || ts[0].Untranscribed() {
		t.Errorf("got %+v, want the transcript and the audio kept", ts[0])
	}
	if _, err := s.Window(t.Context(), k, Budget{Chars: len("Ann: hello there")}, ""); err != nil {
		t.Errorf("Window that fits the transcript exactly: %v", err)
	}
	if _, err := s.Window(t.Context(), k, Budget{Chars: len("Ann: hello there") - 1}, ""); err == nil {
		t.Error("Window one character short: got nil, want the transcript counted")
	}
	text := mustAppend(t, s, k, Turn{Role: RoleUser, Content: "typed", MessageID: 2})
	if err := s.SetTranscript(t.Context(), k, text.ID, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetTranscript on a typed turn: got %v, want ErrNotFound", err)
	}
}

// A conversation's model is its own, like its prompt.
func TestModel(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	if m, ok, err := s.Model(t.Context(), k); err != nil || ok || m != "" {
		t.Errorf("Model of a new chat: got %q, %v, %v; want none", m, ok, err)
	}
	if err := s.SetSystemPrompt(t.Context(), k, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetModel(t.Context(), k, "gpt-4o"); err != nil {
		t.Fatal(err)
	}
	if m, ok, err := s.Model(t.Context(), k); err != nil || !ok || m != "gpt-4o" {
		t.Errorf("Model: got %q, %v, %v; want gpt-4o", m, ok, err)
	}
	if p, _, _ := s.SystemPrompt(t.Context(), k); p != "p" {
		t.Errorf("prompt after SetModel: got %q, want it kept", p)
	}
	if m, ok, _ := s.Model(t.Context(), Key{ChatID: 1, ThreadID: 2}); ok {
		t.Errorf("Model of another topic: got %q, want none", m)
	}
}
