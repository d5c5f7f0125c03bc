package bot

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
	"github.com/jmoiron/sqlx"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// Telegram carries out a sendMessage but its answer is lost (the connection breaks after the
// call went through), and the next calls meet connection resets: the reply still ends as one
// message, complete, with no cursor or button left anywhere.
func TestLostSendAnswerLeavesOneReply(t *testing.T) {
	e, p := newProxiedEnv(t, Config{})
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		switch {
		case c.Method == "sendMessage" && c.N == 1:
			return telegramtest.Action{Drop: true}
		case c.Method == "editMessageText" && c.N <= 3:
			return telegramtest.Action{Reset: true}
		}
		return telegramtest.Action{}
	})
	e.model.fn = func(_ context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield("Little lamb, ", nil) {
			return
		}
		// The lost send was carried out: Telegram has the message.
		e.wait(func() bool { return len(e.tg.Messages(user)) == 1 })
		if !yield("who made thee?", nil) {
			return
		}
		e.wait(func() bool {
			ms := e.tg.Messages(user)
			return len(ms) > 0 && strings.Contains(ms[0].Text, "who made thee")
		})
		yield(" Dost thou know?", nil)
	}
	id := e.say(user, user, "a poem")
	msgs := e.final(user, id)
	if got, want := len(e.tg.Messages(user)), 1; got != want {
		t.Fatalf("bot messages: got %d, want %d: %+v", got, want, e.tg.Messages(user))
	}
	if got, want := msgs[0].Text, "Little lamb, who made thee? Dost thou know?"; got != want {
		t.Errorf("reply: got %q, want %q", got, want)
	}
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1", n)
	}
}

// A send that never reached Telegram (reset before it went through) is sent again: nothing is
// found where it would be, so the reply is posted once.
func TestResetSendIsSentAgain(t *testing.T) {
	e, p := newProxiedEnv(t, Config{})
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "sendMessage" && c.N == 1 {
			return telegramtest.Action{Reset: true}
		}
		return telegramtest.Action{}
	})
	e.model.fn = chunks("Hello there.")
	msgs := e.final(user, e.say(user, user, "hi"))
	if len(e.tg.Messages(user)) != 1 || msgs[0].Text != "Hello there." {
		t.Fatalf("got %+v, want one message with the answer", e.tg.Messages(user))
	}
}

// An update the Telegram library cannot decode is kept raw and skipped: the offset moves past
// it, and the messages after it are answered.
func TestUndecodableUpdateIsKeptAndSkipped(t *testing.T) {
	store, path := openStore(t, false)
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	p := telegramtest.NewProxy(tg.URL())
	t.Cleanup(p.Close)
	e := newEnvOn(t, Config{}, tg, p.URL(), store)
	var badID atomic.Int64
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method != "getUpdates" || badID.Load() == 0 {
			return telegramtest.Action{}
		}
		return telegramtest.Action{Rewrite: telegramtest.ReplaceUpdate(badID.Load(),
			`{"message":{"message_id":1,"date":1,"chat":{"id":777,"type":"private"},"forward_origin":{"type":"hidden_user","date":"yesterday"},"text":"x"}}`)}
	})
	bad := e.tg.NewMessageID(user)
	badID.Store(e.tg.Push(models.Update{Message: &models.Message{ID: bad, Date: 1, Text: "x",
		Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user}}}))
	e.model.fn = chunks("still here")
	msgs := e.final(user, e.say(user, user, "are you there?"))
	if msgs[0].Text != "still here" {
		t.Fatalf("got %q", msgs[0].Text)
	}
	kept := undecodable(t, path)
	if len(kept) != 1 || kept[0].ID != badID.Load() || !strings.Contains(kept[0].Payload, "yesterday") {
		t.Errorf("kept: got %+v, want the raw update %d", kept, badID.Load())
	}
}

// undecodable returns the updates the inbox keeps raw (inbox.SaveUndecodable), oldest first,
// read with plain SQL from the database file at path.
func undecodable(t *testing.T, path string) (kept []struct {
	ID      int64  `db:"update_id"`
	Payload string `db:"payload"`
}) {
	t.Helper()
	db, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Select(&kept, `SELECT update_id, payload FROM inbox WHERE undecodable = 1 ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	return kept
}

// The same in webhook mode: the webhook answers 200 (Telegram would send it again forever
// otherwise) and keeps it raw.
func TestWebhookUndecodableUpdateIsKept(t *testing.T) {
	store, path := openStore(t, false)
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	e := newEnvOn(t, Config{ListenAddr: "127.0.0.1:0", WebhookURL: hookURL, WebhookSecret: hookSecret}, tg, tg.URL(), store) // as newWebhookEnv
	raw := `{"update_id":7,"message":{"message_id":1,"date":1,"chat":{"id":777,"type":"private"},"forward_origin":{"type":"hidden_user","date":"yesterday"},"text":"x"}}`
	if code := e.hook(hookSecret, []byte(raw)); code != http.StatusOK {
		t.Fatalf("got %d, want 200", code)
	}
	kept := undecodable(t, path)
	if len(kept) != 1 || kept[0].ID != 7 {
		t.Errorf("kept: got %+v, want update 7", kept)
	}
	body, id := e.update(8, "hi")
	if code := e.hook(hookSecret, body); code != http.StatusOK {
		t.Fatalf("got %d, want 200", code)
	}
	e.final(user, id)
}

// A reaction or a callback answer that Telegram holds for a long time delays no conversation:
// those calls go out on their own, off the path that takes updates.
func TestSlowSideCallsBlockNobody(t *testing.T) {
	e, p := newProxiedEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}})
	gate := telegramtest.NewGate()
	defer gate.Release()
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "setMessageReaction" || c.Method == "answerCallbackQuery" {
			return telegramtest.Action{HoldAnswer: gate.C()}
		}
		return telegramtest.Action{}
	})
	const a, b = 501, 502
	release := make(chan struct{})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "slow" {
			if !yield("thinking", nil) {
				return
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			yield(".", nil)
			return
		}
		yield("answer to "+lastUser(msgs), nil)
	}
	defer close(release)
	e.say(a, a, "slow")
	e.wait(func() bool { return len(e.tg.Messages(a)) == 1 })
	e.say(a, a, "queued") // gets a 👀 reaction, which Telegram holds
	e.wait(func() bool { return len(e.tg.Calls("setMessageReaction")) == 1 })
	e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "held", From: models.User{ID: a}, Data: "noop",
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{
			ID: 1, Date: int(time.Now().Unix()), Chat: models.Chat{ID: a, Type: models.ChatTypePrivate},
		}},
	}})
	e.wait(func() bool { return len(e.tg.Calls("answerCallbackQuery")) == 1 })
	// Both answers are still held: another chat is answered all the same.
	msgs := e.final(b, e.say(b, b, "question"))
	if msgs[0].Text != "answer to question" {
		t.Errorf("chat b: got %q", msgs[0].Text)
	}
}

// One user sending many messages while Telegram answers slowly costs other chats nothing: the
// 👀 reactions of a flooding chat are few and go out on their own.
func TestFloodingChatDoesNotDelayOthers(t *testing.T) {
	e, p := newProxiedEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}})
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "getUpdates" {
			return telegramtest.Action{}
		}
		return telegramtest.Action{DelayAnswer: 100 * time.Millisecond}
	})
	const a, b = 601, 602
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	for i := range 300 {
		e.say(a, a, "spam "+jsonInt(i))
	}
	e.wait(func() bool { return len(e.tg.Messages(a)) >= 1 })
	e.final(b, e.say(b, b, "question"))
	answered := len(e.tg.Messages(a))
	if answered > 150 {
		t.Errorf("chat b was answered only after %d of chat a's 300 messages", answered)
	}
	// A reaction is for a message taken while another was answered: of the flood, only the few
	// a user may have waiting (the rest are skipped), however slow Telegram is. Counted once the
	// bot has finished every update, when each message it took has had its model request.
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 0 && e.tg.PendingUpdates() == 0
	})
	taken := 0
	for _, msgs := range e.model.requests() {
		if strings.HasPrefix(lastUser(msgs), "spam ") {
			taken++
		}
	}
	if n := len(e.tg.Calls("setMessageReaction")); n > taken {
		t.Errorf("reactions: got %d for one flooding chat of which %d messages were taken, want at most one each", n, taken)
	}
	e.stop()
	if len(e.turns(history.Key{ChatID: b})) != 2 {
		t.Error("chat b's exchange was not stored")
	}
}

// Telegram that accepts connections but never answers turns /healthz to 503 within seconds,
// not when the long poll finally times out.
func TestHealthSeesSilentTelegram(t *testing.T) {
	e, p := newProxiedEnv(t, Config{ListenAddr: "127.0.0.1:0", PollTimeout: 30 * time.Second, ProbeEvery: 100 * time.Millisecond})
	if code, body := e.get("/healthz"); code != http.StatusOK {
		t.Fatalf("before: got %d %q", code, body)
	}
	gate := telegramtest.NewGate()
	defer gate.Release()
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		return telegramtest.Action{HoldForward: gate.C()}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := e.get("/healthz")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body, "no answer") {
				t.Errorf("got %q, want a reason naming the silence", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz still ok 20s after Telegram went silent")
		}
		time.Sleep(50 * time.Millisecond)
	}
	gate.Release()
}
