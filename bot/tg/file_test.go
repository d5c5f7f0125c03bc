package tg_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
	"aurabot/bot/tg"
)

func newClient(t *testing.T, srv *telegramtest.Server) *tg.Client {
	t.Helper()
	c, err := tg.New(tg.Config{Token: telegramtest.Token, APIURL: srv.URL()}, time.Second, &http.Client{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDownload(t *testing.T) {
	in := telegramtest.Incoming{Chat: models.Chat{ID: 1, Type: models.ChatTypePrivate}, From: models.User{ID: 1}}
	data := bytes.Repeat([]byte("voice"), 1000)
	for _, local := range []bool{false, true} {
		name := map[bool]string{false: "api.telegram.org", true: "local server"}[local]
		t.Run(name, func(t *testing.T) {
			srv := telegramtest.New()
			defer srv.Close()
			c := newClient(t, srv)
			if local {
				dir := t.TempDir()
				srv.SetLocalMode(dir)
				if err := c.SetLocalFiles(dir); err != nil {
					t.Fatal(err)
				}
			}
			m := srv.PushVoice(in, telegramtest.File{Data: data})
			got, err := c.Download(t.Context(), m.Voice.FileID, 1<<20)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Download: got %d bytes, %v; want the %d sent", len(got), err, len(data))
			}
			if _, err := c.Download(t.Context(), m.Voice.FileID, 100); !errors.Is(err, tg.ErrFileTooBig) {
				t.Errorf("Download past the limit: got %v, want ErrFileTooBig", err)
			}
			if n := len(srv.Calls("file")); local && n != 0 {
				t.Errorf("local mode: got %d downloads over HTTP, want none (the file is on disk)", n)
			}
		})
	}
}

// Telegram refuses getFile for files over 20 MB; the error says so. (That no error reaches the
// log or /healthz with the token is checked at the boundary: bot's TestDownloadErrorsHoldNoToken.)
func TestDownloadErrors(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	c := newClient(t, srv)
	in := telegramtest.Incoming{Chat: models.Chat{ID: 1, Type: models.ChatTypePrivate}, From: models.User{ID: 1}}
	big := srv.PushDocument(in, telegramtest.File{Data: make([]byte, telegramtest.MaxDownloadSize+1), FileName: "big.txt"})
	if _, err := c.Download(t.Context(), big.Document.FileID, 1<<30); !errors.Is(err, tg.ErrFileTooBig) {
		t.Errorf("Download of a 20 MB+ file: got %v, want ErrFileTooBig", err)
	}
	if _, err := c.Download(t.Context(), "no-such-file", 1<<20); err == nil {
		t.Error("Download of an unknown file: got no error")
	}
}

// A Bot API server that answers getFile with a path on its disk gets nothing read from the
// bot's disk unless TELEGRAM_LOCAL_FILES names a directory, and then only a regular file inside
// it, within the limit: not a path outside it, nor one that leads out with .. or a symbolic
// link, nor a FIFO (which would block the reply), nor the directory itself.
func TestDownloadLocalPaths(t *testing.T) {
	in := telegramtest.Incoming{Chat: models.Chat{ID: 1, Type: models.ChatTypePrivate}, From: models.User{ID: 1}}
	secret := []byte("SECRET=outside the local files directory")
	outside := filepath.Join(t.TempDir(), "environ")
	if err := os.WriteFile(outside, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, telegramtest.Token, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("documents/file_1.txt", []byte("inside"))
	big := write("documents/big.txt", bytes.Repeat([]byte("x"), 2000))
	link := filepath.Join(dir, telegramtest.Token, "documents", "link.txt")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, telegramtest.Token, "documents", "fifo.txt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("SKIP: cannot make a FIFO: %v", err)
	}

	tests := []struct {
		name     string
		setting  string // TELEGRAM_LOCAL_FILES
		path     string // what getFile answers
		want     []byte // nil: an error
		wantHTTP bool   // downloaded over HTTP instead
	}{
		{"no directory set, absolute path", "", outside, nil, true},
		{"no directory set, /proc/self/environ", "", "/proc/self/environ", nil, true},
		{"outside the directory", dir, outside, nil, false},
		{".. out of the directory", dir, filepath.Join(dir, telegramtest.Token) + "/../../" + filepath.Base(filepath.Dir(outside)) + "/environ", nil, false},
		{"a symbolic link out of it", dir, link, nil, false},
		{"a FIFO", dir, fifo, nil, false},
		{"the directory itself", dir, dir, nil, false},
		{"over the limit", dir, big, nil, false},
		{"inside", dir, good, []byte("inside"), false},
		{"inside, by a path with ..", dir, filepath.Join(dir, telegramtest.Token, "documents") + "/../documents/file_1.txt", []byte("inside"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := telegramtest.New()
			defer srv.Close()
			c := newClient(t, srv)
			if tt.setting != "" {
				if err := c.SetLocalFiles(tt.setting); err != nil {
					t.Fatal(err)
				}
			}
			m := srv.PushDocument(in, telegramtest.File{Data: []byte("x"), FileName: "a.txt"})
			srv.AnswerFilePath(m.Document.FileID, tt.path)
			type result struct {
				data []byte
				err  error
			}
			done := make(chan result, 1)
			go func() {
				data, err := c.Download(t.Context(), m.Document.FileID, 1000)
				done <- result{data, err}
			}()
			var got result
			select {
			case got = <-done:
			case <-time.After(20 * time.Second): // a guard against a hang, not a timing assertion
				t.Fatal("Download hangs")
			}
			switch {
			case tt.want == nil && got.err == nil:
				t.Fatalf("got %q, want an error", got.data)
			case tt.want != nil && (got.err != nil || !bytes.Equal(got.data, tt.want)):
				t.Fatalf("got %q, %v; want %q", got.data, got.err, tt.want)
			}
			if got.err != nil && strings.Contains(got.err.Error(), "SECRET") {
				t.Errorf("error %q holds the file", got.err)
			}
			if n := len(srv.Calls("file")); (n > 0) != tt.wantHTTP {
				t.Errorf("downloads over HTTP: got %d, want them %v", n, tt.wantHTTP)
			}
		})
	}
	srv := telegramtest.New()
	defer srv.Close()
	if err := newClient(t, srv).SetLocalFiles(good); err == nil {
		t.Error("SetLocalFiles of a file: got no error")
	}
}
