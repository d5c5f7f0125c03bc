package tg_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
	"aurabot/bot/tg"
)

func newClient(t *testing.T, srv *telegramtest.Server) *tg.Client {
	t.Helper()
	c, err := tg.New(telegramtest.Token, srv.URL(), time.Second, &http.Client{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
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
			if local {
				srv.SetLocalMode(t.TempDir())
			}
			c := newClient(t, srv)
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

// Telegram refuses getFile for files over 20 MB; the error says so, and no error holds the
// token.
func TestDownloadErrors(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	c := newClient(t, srv)
	in := telegramtest.Incoming{Chat: models.Chat{ID: 1, Type: models.ChatTypePrivate}, From: models.User{ID: 1}}
	big := srv.PushDocument(in, telegramtest.File{Data: make([]byte, telegramtest.MaxDownloadSize+1), FileName: "big.txt"})
	if _, err := c.Download(t.Context(), big.Document.FileID, 1<<30); !errors.Is(err, tg.ErrFileTooBig) {
		t.Errorf("Download of a 20 MB+ file: got %v, want ErrFileTooBig", err)
	}
	_, err := c.Download(t.Context(), "no-such-file", 1<<20)
	if err == nil || strings.Contains(err.Error(), telegramtest.Token) {
		t.Errorf("Download of an unknown file: got %v, want an error without the token", err)
	}
}
