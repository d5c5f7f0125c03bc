package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aurabot/bot/telegramtest"
	"aurabot/history"
)

func TestHealthcheckFlag(t *testing.T) {
	status, body := http.StatusOK, "ok"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body + "\n"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	none := filepath.Join(t.TempDir(), "none.env")
	check := func(listen string) error {
		var out bytes.Buffer
		return command(context.Background(), []string{"-healthcheck"}, []string{"LISTEN_ADDR=" + listen}, none, &out, &out)
	}

	if err := check(addr); err != nil {
		t.Errorf("healthy, LISTEN_ADDR=%s: got %v, want success", addr, err)
	}
	if err := check(":" + port); err != nil {
		t.Errorf("healthy, LISTEN_ADDR=:%s (all interfaces, checked on loopback): got %v, want success", port, err)
	}
	status, body = http.StatusServiceUnavailable, "database: history: ping: sql: database is closed"
	if err := check(addr); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("unhealthy: got %v, want an error with the status and the reason", err)
	}
	if err := check(""); err == nil || !strings.Contains(err.Error(), "LISTEN_ADDR") {
		t.Errorf("LISTEN_ADDR empty: got %v, want an error naming it", err)
	}
}

// -backup copies the database of a bot that is running (in another process, as far as SQLite can
// tell: it holds its own connections to the file) and refuses to overwrite.
func TestBackupFlagWhileTheBotRuns(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("Backed-up answer.")
	h.start()
	h.replyTo(h.send("remember this"))

	backup := func(path string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "AURABOT_TEST_MAIN=1", "AURABOT_TEST_ARGS=-backup "+path, "DATABASE_PATH="+h.db)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if out, err := backup(path); err != nil {
		t.Fatalf("-backup: %v: %s", err, out)
	}
	if out, err := backup(path); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("-backup over an existing file: got %v: %s, want a refusal", err, out)
	}
	h.stop()

	store, err := history.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer store.Close()
	turns, err := store.Turns(context.Background(), history.Key{ChatID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 2 || turns[0].Content != "remember this" || turns[1].Content != "Backed-up answer." {
		t.Errorf("turns in the backup: got %+v, want the exchange", turns)
	}
}

// LOG_FORMAT=json writes JSON lines; at info a reply is one line without its text.
func TestJSONLogs(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("A confidential answer.")
	h.start("LOG_FORMAT=json", "LOG_LEVEL=info")
	h.replyTo(h.send("a private question"))
	h.stop()
	logs := h.logs

	replies := 0
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] == "reply" {
			replies++
			if rec["outcome"] != "done" || rec["chars"] != float64(len("A confidential answer.")) {
				t.Errorf("reply line: got %v, want outcome done and the answer's length", rec)
			}
		}
	}
	if replies != 1 {
		t.Errorf("reply lines: got %d, want 1", replies)
	}
	for _, secret := range []string{"confidential", "private question", telegramtest.Token} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
}
