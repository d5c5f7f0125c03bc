package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"aurabot/aura"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// The disk fills up: the user is told once that the bot cannot save, /healthz answers 503
// because a real write fails, and once there is room again the message sent meanwhile is
// answered, once.
func TestFullDiskIsWaitedOut(t *testing.T) {
	store, _ := openStore(t, true)
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	e := newEnvOn(t, Config{ListenAddr: "127.0.0.1:0", HealthDiskEvery: time.Nanosecond}, tg, tg.URL(), store) // every call writes
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	e.final(user, e.say(user, user, "before"))
	e.answered(history.Key{ChatID: user}, 2)

	fill(t, e.store)
	id := e.say(user, user, "while full")
	e.wait(func() bool {
		for _, m := range e.tg.Messages(user) {
			if strings.Contains(m.Text, "can't save") {
				return true
			}
		}
		return false
	})
	if code, body := e.get("/healthz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "database:") {
		t.Errorf("/healthz on a full disk: got %d %q, want 503 naming the database", code, body)
	}
	free(t, e.store)
	e.wait(func() bool { return hasText(e.tg, user, id, "re: while full") })
	e.answered(history.Key{ChatID: user}, 4)
	answers, notices := 0, 0
	for _, m := range e.tg.Messages(user) {
		switch {
		case m.Text == "re: while full":
			answers++
		case strings.Contains(m.Text, "can't save"):
			notices++
		}
	}
	if answers != 1 || notices != 1 {
		t.Errorf("got %d answers and %d notices, want one of each", answers, notices)
	}
	if code, _ := e.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after: got %d, want 200", code)
	}
}

// diskPages caps the small disks of openStore: 4 MB, ample for a test's messages.
const diskPages = 1000

// smallDisks are the database files that openStore capped.
var smallDisks sync.Map

// Every connection the SQLite driver opens to a file of smallDisks is capped at diskPages
// pages by PRAGMA max_page_count, a setting of each connection: the store's writer then meets
// a full disk once the file has grown to that size.
func init() {
	sqlite.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, dsn string) error {
		u, err := url.Parse(dsn)
		if _, small := smallDisks.Load(u.Path); err != nil || !small {
			return nil
		}
		_, err = c.ExecContext(context.Background(), fmt.Sprintf("PRAGMA max_page_count = %d", diskPages), nil)
		return err
	})
}

// openStore opens a store of the test's own and returns it with the path of its database file.
// small caps that file at diskPages pages, as if its disk were that small.
func openStore(t *testing.T, small bool) (*history.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bot.db")
	if small {
		smallDisks.Store(path, true)
	}
	store, err := history.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, path
}

// filler is the conversation that fill fills the disk with, and free frees it of.
var filler = history.Key{ChatID: 434343}

// fill makes a small disk of openStore full: no page more, and no room left in the pages in use.
// Pictures take the most of it, as they cost no token counting.
func fill(t *testing.T, store *history.Store) {
	t.Helper()
	n := 0
	for _, size := range []int{1 << 16, 4096, 256, 20, 1} {
		for {
			n++
			turn := history.Turn{Role: history.RoleUser, Content: strings.Repeat("x", min(size, 20)), MessageID: int64(n)}
			if size > 20 {
				turn.Images = []history.Image{{MIME: "image/png", Data: make([]byte, size)}}
			}
			_, _, err := store.Append(context.Background(), filler, turn)
			if errors.Is(err, history.ErrStorageFull) {
				break
			}
			if err != nil || n > 100000 {
				t.Fatalf("filling the database: %v after %d turns", err, n)
			}
		}
	}
}

// free makes room again on a disk that fill filled.
func free(t *testing.T, store *history.Store) {
	t.Helper()
	if err := store.Reset(context.Background(), filler); err != nil {
		t.Fatal(err)
	}
}

// The disk fills while a reply streams: the reply shows nothing it could not record (so a crash
// then would never shorten what the user read), waits, and once there is room shows and stores
// the whole answer.
func TestDiskFullMidReply(t *testing.T) {
	store, _ := openStore(t, true)
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	e := newEnvOn(t, Config{}, tg, tg.URL(), store)
	full := make(chan struct{})
	e.model.fn = func(_ context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield("The first part of the answer ", nil) {
			return
		}
		e.wait(func() bool { return len(e.tg.Messages(user)) == 1 })
		<-full
		yield("and the rest of it: "+strings.Repeat("yy ", 3000)+"end.", nil) // needs new pages to record
	}
	id := e.say(user, user, "go")
	e.wait(func() bool { return len(e.tg.Messages(user)) == 1 })
	fill(t, e.store)
	close(full)
	e.wait(func() bool {
		for _, m := range e.tg.Messages(user) {
			if strings.Contains(m.Text, "can't save") {
				return true
			}
		}
		return false
	})
	for _, m := range e.tg.Messages(user) {
		if strings.Contains(m.Text, "yy") {
			t.Fatalf("the reply showed text it could not record: %q", m.Text)
		}
	}
	free(t, e.store)
	want := "The first part of the answer and the rest of it: " + strings.Repeat("yy ", 3000) + "end."
	ts := e.answered(history.Key{ChatID: user}, 2)
	msgs := e.final(user, id)
	var shown strings.Builder
	for _, m := range msgs {
		shown.WriteString(m.Text)
	}
	if strings.Count(shown.String(), "yy") != 3000 || !strings.HasSuffix(shown.String(), "end.") {
		t.Errorf("final: %d messages without the whole answer", len(msgs))
	}
	if ts[1].Content != want || ts[1].Status != history.StatusDone {
		t.Errorf("stored: got %.60q (%s), want the whole answer, done", ts[1].Content, ts[1].Status)
	}
}
