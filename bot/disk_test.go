package bot

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"aurabot/aura"
	"aurabot/history"
)

// The disk fills up: the user is told once that the bot cannot save, /healthz answers 503
// because a real write fails, and once there is room again the message sent meanwhile is
// answered, once.
func TestFullDiskIsWaitedOut(t *testing.T) {
	e := newEnv(t, Config{ListenAddr: "127.0.0.1:0", HealthDiskEvery: time.Nanosecond}) // every call writes
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	e.final(user, e.say(user, user, "before"))
	e.answered(history.Key{ChatID: user}, 2)

	ctx := context.Background()
	room := fill(t, e.store)
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
	if _, err := e.store.LimitPages(ctx, room); err != nil {
		t.Fatal(err)
	}
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

// fill makes the database full: no page more, and no room left in the pages in use.
func fill(t *testing.T, store *history.Store) (room int64) {
	t.Helper()
	ctx := context.Background()
	room, err := store.LimitPages(ctx, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.LimitPages(ctx, 1); err != nil {
		t.Fatal(err)
	}
	filler := history.Key{ChatID: 434343}
	n := 0
	for _, size := range []int{2000, 200, 20, 1} {
		for {
			n++
			_, _, err := store.Append(ctx, filler, history.Turn{Role: history.RoleUser, Content: strings.Repeat("x", size), MessageID: int64(n)})
			if errors.Is(err, history.ErrStorageFull) {
				break
			}
			if err != nil || n > 100000 {
				t.Fatalf("filling the database: %v after %d turns", err, n)
			}
		}
	}
	return room
}

// The disk fills while a reply streams: the reply shows nothing it could not record (so a crash
// then would never shorten what the user read), waits, and once there is room shows and stores
// the whole answer.
func TestDiskFullMidReply(t *testing.T) {
	e := newEnv(t, Config{})
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
	room := fill(t, e.store)
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
	if _, err := e.store.LimitPages(context.Background(), room); err != nil {
		t.Fatal(err)
	}
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
