package bot

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"aurabot/bot/telegramtest"
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
	var logs syncBuffer
	tr := &failing{}
	e := newEnv(t, Config{ListenAddr: "127.0.0.1:0", HealthDiskEvery: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), HTTPClient: &http.Client{Transport: tr}})
	tr.on.Store(true)
	var body string
	e.eventually(func() bool {
		_, body = e.get("/healthz")
		return strings.Contains(body, "cannot reach")
	})
	if strings.Contains(body, telegramtest.Token) || strings.Contains(logs.String(), telegramtest.Token) {
		t.Errorf("the token shows: /healthz %q, logs:\n%s", body, logs.String())
	}
}

// failing is a transport whose every call fails, once on, with an error that quotes its URL.
type failing struct{ on atomic.Bool }

func (f *failing) RoundTrip(r *http.Request) (*http.Response, error) {
	if !f.on.Load() {
		return http.DefaultTransport.RoundTrip(r)
	}
	return nil, fmt.Errorf("cannot reach %s", r.URL)
}
