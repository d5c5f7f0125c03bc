package conversation

import (
	"strings"
	"testing"

	"github.com/go-telegram/bot/models"
)

func TestPhotoSize(t *testing.T) {
	s := func(w, h int, id string) models.PhotoSize { return models.PhotoSize{Width: w, Height: h, FileID: id} }
	for _, tc := range []struct {
		name  string
		sizes []models.PhotoSize
		want  string
	}{
		{"largest up to 1280", []models.PhotoSize{s(90, 60, "a"), s(320, 213, "b"), s(1280, 853, "c"), s(2560, 1706, "d")}, "c"},
		{"portrait", []models.PhotoSize{s(60, 90, "a"), s(853, 1280, "b"), s(1706, 2560, "c")}, "b"},
		{"all larger", []models.PhotoSize{s(4000, 3000, "a"), s(2000, 1500, "b")}, "b"},
		{"one", []models.PhotoSize{s(100, 100, "a")}, "a"},
	} {
		if got := photoSize(tc.sizes).FileID; got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestIsTextFile(t *testing.T) {
	for _, tc := range []struct {
		mime, name string
		want       bool
	}{
		{"text/plain", "a", true},
		{"text/csv; charset=utf-8", "data", true},
		{"application/json", "x", true},
		{"application/vnd.api+json", "x", true},
		{"application/octet-stream", "main.go", true},
		{"application/octet-stream", "server.LOG", true},
		{"", "Dockerfile", true},
		{"application/zip", "a.zip", false},
		{"application/pdf", "paper.pdf", false},
		{"application/octet-stream", "program", false},
		{"image/png", "a.png", false},
	} {
		if got := isTextFile(tc.mime, tc.name); got != tc.want {
			t.Errorf("isTextFile(%q, %q): got %v, want %v", tc.mime, tc.name, got, tc.want)
		}
	}
}

// The transcript is quoted and escaped, and a reply finished after a restart loses it again.
func TestTranscriptPrefix(t *testing.T) {
	p := transcriptPrefix("use *bold* and `code`\n\nsecond line")
	want := "> 🎤 \"use \\*bold\\* and \\`code\\`\n> second line\"\n\n"
	if p != want {
		t.Errorf("prefix: got %q, want %q", p, want)
	}
	if got := stripTranscript(p + "The answer."); got != "The answer." {
		t.Errorf("stripTranscript: got %q, want the answer alone", got)
	}
	if got := stripTranscript("> quoted answer\n\nmore"); got != "> quoted answer\n\nmore" {
		t.Errorf("stripTranscript of an answer that is a quote: got %q, want it whole", got)
	}
}

func TestFileText(t *testing.T) {
	got := fileText("a.md", "x ``` y\n\n", "")
	if want := "File a.md:\n````\nx ``` y\n````"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := fileText("", "\xffok", "why?"); !strings.HasPrefix(got, "File file:\n```\n\uFFFDok\n```\n\nwhy?") {
		t.Errorf("got %q", got)
	}
}
