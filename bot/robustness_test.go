package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// A notice for a chat under a Telegram penalty waits it out without holding up other chats.
func TestNoticeInPenalizedChatDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}})
	const a, b = 401, 402
	var mu sync.Mutex
	penalized := true
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if method == "sendMessage" && p["chat_id"] == jsonInt(a) && penalized {
			penalized = false
			return &telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 5", RetryAfter: 5}
		}
		return nil
	})
	help := e.say(a, a, "/help")
	// The first try of the notice gets the 429 and puts chat a under a 5 s penalty.
	e.wait(func() bool { return e.tg.TooManyRequests() == 1 })
	e.model.fn = chunks("answer for b")
	q := e.say(b, b, "question")
	msgs := e.final(b, q)
	e.wait(func() bool { return hasText(e.tg, a, help, "/retry") })
	var helpAt, answerAt time.Time
	for _, c := range e.tg.Calls("sendMessage") {
		switch {
		case c.ChatID() == a && c.Status == 0:
			helpAt = c.At
		case c.ChatID() == b && answerAt.IsZero():
			answerAt = c.At
		}
	}
	if !answerAt.Before(helpAt) {
		t.Errorf("chat b's answer went out at %v, after chat a's penalised notice at %v: one chat held up another", answerAt, helpAt)
	}
	if msgs[0].Text != "answer for b" {
		t.Errorf("chat b: got %q", msgs[0].Text)
	}
}

// A final edit that fails with a 5xx or a network error is tried again: the final text arrives.
func TestFinalEditIsRetried(t *testing.T) {
	e := newEnv(t, Config{})
	var mu sync.Mutex
	failed := false
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if method == "editMessageText" && !strings.HasSuffix(p["text"], cursor) && !failed {
			failed = true
			return &telegramtest.Fault{Code: 502, Description: "Bad Gateway"}
		}
		return nil
	})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield("one", nil) {
			return
		}
		e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
		yield(" two", nil)
	}
	id := e.say(user, user, "hi")
	msgs := e.final(user, id)
	if msgs[0].Text != "one two" || msgs[0].Markup != "" {
		t.Errorf("final: got %q (markup %q), want the whole text and no Stop button", msgs[0].Text, msgs[0].Markup)
	}
	mu.Lock()
	defer mu.Unlock()
	if !failed {
		t.Error("the fault was never hit: the test did not exercise a failed final edit")
	}
}

// At shutdown a final edit waiting out a long penalty gives up after a grace period instead of
// holding the process; the reply stays in the inbox with its full text recorded.
func TestShutdownDoesNotWaitOutLongPenalties(t *testing.T) {
	e := newEnv(t, Config{ShutdownTimeout: 50 * time.Millisecond})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield("partial", nil) {
			return
		}
		e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
		e.tg.SetFaults(func(method string, _ map[string]string) *telegramtest.Fault {
			if method == "editMessageText" {
				return &telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 600", RetryAfter: 600}
			}
			return nil
		})
		<-ctx.Done()
	}
	e.say(user, user, "hi")
	e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute): // the penalty is 10 minutes: returning at all is the point
		t.Fatal("Run waited out a 10-minute penalty at shutdown")
	}
	pending, err := e.store.Inbox().Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Reply.Text != "partial" {
		t.Errorf("inbox after shutdown: got %+v, want the reply pending with its text, for the restart", pending)
	}
}

// Edits stay an interval apart even when the model pauses after a chunk that went out with the
// previous edit (a slot must not be held across the pause).
func TestEditsStayPacedAcrossModelPauses(t *testing.T) {
	interval := 150 * time.Millisecond
	e := newEnv(t, Config{PrivateInterval: interval})
	shownText := func(s string) func() bool {
		return func() bool {
			for _, c := range e.tg.Calls("editMessageText") {
				if strings.TrimSuffix(c.Params["text"], cursor) == s {
					return true
				}
			}
			return false
		}
	}
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		yield("a", nil)
		e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
		yield("b", nil)
		yield("c", nil)
		e.wait(shownText("abc"))
		select { // the model thinks
		case <-time.After(3 * interval):
		case <-ctx.Done():
			return
		}
		yield("d", nil)
		yield("e", nil)
		e.wait(shownText("abcde"))
		yield("f", nil)
	}
	id := e.say(user, user, "go")
	e.answered(history.Key{ChatID: user}, 2)
	e.final(user, id)
	checkSpacing(t, e.tg, user, interval)
}
