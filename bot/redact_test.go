package bot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	tgapi "aurabot/bot/tg"
	"aurabot/history"
)

// The token is in every Bot API URL and in a local server's paths, so in the errors of the calls
// that fail: they reach the log through its redactor and never show the token, whatever logger
// the bot was given. Here a download that breaks on the wire, and one of a local server's paths
// that leads out of TELEGRAM_LOCAL_FILES.
func TestDownloadErrorsHoldNoToken(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(map[bool]string{false: "connection reset", true: "local path leading out"}[local], func(t *testing.T) {
			var logs syncBuffer
			cfg := Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			var dir string
			if local {
				dir = t.TempDir()
				cfg.Telegram.LocalFiles = dir
			}
			e, p := newProxiedEnv(t, cfg)
			p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
				return telegramtest.Action{Reset: c.Method == "file"}
			})
			m := e.tg.PushDocument(from("what does it say?"), telegramtest.File{Data: []byte("text"), FileName: "notes.txt", MIMEType: "text/plain"})
			if local {
				link := filepath.Join(dir, telegramtest.Token, "documents", "link.txt")
				if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), link); err != nil {
					t.Fatal(err)
				}
				e.tg.AnswerFilePath(m.Document.FileID, link)
			}
			e.wait(func() bool { return hasText(e.tg, user, m.ID, "could not download your file") })
			e.handled()
			out := logs.String()
			if !strings.Contains(out, "could not download a file") {
				t.Fatalf("got logs %q, want the failed download logged", out)
			}
			if strings.Contains(out, telegramtest.Token) {
				t.Errorf("the log holds the token:\n%s", out)
			}
		})
	}
}

// /healthz shows anyone who asks why Telegram fails: a reason that quotes a call's URL (here a
// transport that says which URL it could not reach) shows no token; the log's lines neither.
func TestHealthzHoldsNoToken(t *testing.T) {
	store, err := history.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs syncBuffer
	b, err := New(Config{
		Telegram:     tgapi.Config{Token: telegramtest.Token, APIURL: "http://telegram.invalid"},
		Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}, Budget: history.Budget{Chars: 1000}},
		ListenAddr:   "127.0.0.1:0", HealthDiskEvery: time.Nanosecond,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		HTTPClient: &http.Client{Transport: failing{}},
	}, store, &fakeModel{fn: chunks("ok")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(body, "unreachable") && time.Now().Before(deadline) {
		if addr := b.Addr(); addr != "" {
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(raw)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "cannot reach") {
		t.Fatalf("/healthz: got %q, want the reason quoting the URL", body)
	}
	if strings.Contains(body, telegramtest.Token) || strings.Contains(logs.String(), telegramtest.Token) {
		t.Errorf("the token shows: /healthz %q, logs:\n%s", body, logs.String())
	}
}

// failing is a transport whose every call fails with an error that quotes its URL.
type failing struct{}

func (failing) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("cannot reach %s", r.URL)
}
