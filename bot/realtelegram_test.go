package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// What the real Telegram does that a naive fake does not, each with the bot's answer to it.

// After a week without updates Telegram numbers the next update at random, possibly below every
// id the bot has seen. A bot that polls from its highest id + 1 confirms (deletes) those unseen;
// this one polls without an offset and confirms only what it saved.
func TestUpdateIDsThatRestartBelowEveryEarlierOne(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	e.tg.RenumberUpdates(5000)
	first := e.say(user, user, "before the quiet week")
	e.final(user, first)

	// Running: the next update is numbered far below.
	e.tg.RenumberUpdates(17)
	second := e.say(user, user, "after the quiet week")
	if got := e.final(user, second); got[0].Text != "re: after the quiet week" {
		t.Fatalf("got %q", got[0].Text)
	}

	// Across a restart: stopped, another quiet week, and the numbering starts low again.
	e.stop()
	e.tg.RenumberUpdates(3)
	third := e.say(user, user, "after another quiet week")
	e2 := newEnvOn(t, Config{}, e.tg, e.tg.URL(), e.store)
	e2.model.fn = e.model.fn
	if got := e2.final(user, third); got[0].Text != "re: after another quiet week" {
		t.Fatalf("after the restart: got %q", got[0].Text)
	}
	for _, id := range []int{first, second, third} {
		if n := len(repliesTo(e2.tg.Messages(user), id)); n != 1 {
			t.Errorf("message %d: %d replies, want 1", id, n)
		}
	}
}

// Telegram drains HTTP/2 connections with a GOAWAY. A call in flight on a draining connection
// never reached Telegram and must be sent again on a new connection, which net/http does only
// for a request whose body it can replay: no call may fail for a drain.
func TestConnectionDrainsFailNoCall(t *testing.T) {
	tg := telegramtest.NewTLS()
	t.Cleanup(tg.Close)
	tg.DrainEvery(3)
	lat, err := telegramtest.NewLatency(strings.TrimPrefix(tg.URL(), "https://"), 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lat.Close)
	var failed atomic.Int64
	var failures sync.Map
	client := &http.Client{Transport: countErrors{
		next: &http.Transport{TLSClientConfig: tg.TLSConfig(), ForceAttemptHTTP2: true},
		fail: func(err error) { failed.Add(1); failures.Store(err.Error(), true) },
	}}
	e := newEnvOn(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}, HTTPClient: client}, tg, "https://"+lat.Addr(), nil)
	// net/http sends a call refused by a GOAWAY again at once, and again after 1, 2, 4, 8, 16
	// and 32 s if the new connections drain too (as they do here, every third request, far
	// more often than Telegram's): on a busy machine a reply can be held for up to 63 s before
	// a call would fail, and a failed call is what this test reports.
	e.patience = 90 * time.Second
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		for _, w := range []string{"one ", "two ", "three ", "four."} {
			if !yield(w, nil) {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	const chats = 12
	ids := map[int64][]int{}
	for round := range 3 {
		for c := range int64(chats) {
			chat := 9000 + c
			ids[chat] = append(ids[chat], e.say(chat, chat, fmt.Sprint("question ", round)))
		}
	}
	for chat, ms := range ids {
		for _, id := range ms {
			if got := e.final(chat, id); got[len(got)-1].Text != "one two three four." {
				t.Errorf("chat %d message %d: got %q", chat, id, got[len(got)-1].Text)
			}
		}
	}
	for chat, ms := range ids {
		for _, id := range ms {
			if n := len(repliesTo(tg.Messages(chat), id)); n != 1 {
				t.Errorf("chat %d message %d: %d replies, want 1", chat, id, n)
			}
		}
	}
	if tg.Drains() < 20 {
		t.Errorf("the fake drained %d connections, want many", tg.Drains())
	}
	if n := failed.Load(); n != 0 {
		var errs []string
		failures.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
		t.Errorf("%d calls failed across %d drains, want none: %s", n, tg.Drains(), strings.Join(errs, "; "))
	}
}

// countErrors is a RoundTripper that reports every call that failed without an answer.
type countErrors struct {
	next http.RoundTripper
	fail func(error)
}

func (c countErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil && r.Context().Err() == nil && !errors.Is(err, context.Canceled) {
		c.fail(err)
	}
	return resp, err
}

// repliesTo are the messages of ms that reply to message id.
func repliesTo(ms []telegramtest.Message, id int) []telegramtest.Message {
	var out []telegramtest.Message
	for _, m := range ms {
		if m.ReplyTo == id {
			out = append(out, m)
		}
	}
	return out
}

// settle waits until the bot has done all it had to (no update pending in the inbox, no lost
// message being looked for), then checks that message id of chat has exactly one reply, and that
// nothing of the bot's in the chat shows a cursor or a button; it returns the reply.
func (e *env) settle(chat int64, id int) telegramtest.Message {
	e.t.Helper()
	e.wait(func() bool { return len(repliesTo(e.tg.Messages(chat), id)) > 0 })
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		l, lerr := e.store.Inbox().LostSends(context.Background())
		return err == nil && lerr == nil && len(p) == 0 && len(l) == 0
	})
	for _, m := range e.tg.Messages(chat) {
		if strings.HasSuffix(m.Text, cursor) || m.Markup != "" {
			e.t.Errorf("message %d is stuck: %q %s", m.ID, m.Text, m.Markup)
		}
	}
	rs := repliesTo(e.tg.Messages(chat), id)
	if len(rs) != 1 {
		e.t.Fatalf("message %d: %d replies, want 1: %+v", id, len(rs), rs)
	}
	return rs[0]
}

// lostFirstSend makes the first sendMessage of chat go through to Telegram while its answer is
// lost (the connection breaks after the call was carried out).
func lostFirstSend(p *telegramtest.Proxy, chat int64) {
	var lost atomic.Bool
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "sendMessage" && c.Params["chat_id"] == fmt.Sprint(chat) && lost.CompareAndSwap(false, true) {
			return telegramtest.Action{Drop: true}
		}
		return telegramtest.Action{}
	})
}

// groupMessage pushes a message from user in group that mentions the bot, and returns its id.
func (e *env) groupMessage(chat, from int64, text string) int {
	id := e.tg.NewMessageID(chat)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: id, Date: int(time.Now().Unix()), Text: "@" + telegramtest.BotUsername + " " + text,
		Chat:     models.Chat{ID: chat, Type: models.ChatTypeSupergroup},
		From:     &models.User{ID: from, FirstName: "Ann"},
		Entities: []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 0, Length: len(telegramtest.BotUsername) + 1}},
	}})
	return id
}

// In a busy group in privacy mode the bot never sees most messages: 30 of them (5 deleted since)
// lie between a question and the reply whose first send's answer was lost. The reply goes on at
// once in a message sent again, and the copy the lost send posted is found and deleted; no
// message is left stuck, and nothing else is touched.
func TestBusyGroupLostSend(t *testing.T) {
	e, p := newProxiedEnv(t, Config{Conversation: conversation.Config{AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	q := e.groupMessage(group, 41, "a question")
	var unseen []int
	for range 30 {
		unseen = append(unseen, e.tg.NewMessageID(group))
	}
	for _, id := range unseen[10:15] {
		e.tg.DeleteUserMessage(group, id)
	}
	lostFirstSend(p, group)
	e.model.fn = chunks("The answer, ", "in two parts.")
	got := e.settle(group, q)
	if got.Text != "The answer, in two parts." {
		t.Errorf("reply: got %q", got.Text)
	}
	if n := len(e.tg.Messages(group)); n != 1 {
		t.Errorf("bot messages in the group: got %d, want 1: %+v", n, e.tg.Messages(group))
	}
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1", n)
	}
	// Every probe was an edit of a message id above the question and below the reply sent again.
	for _, c := range e.tg.Calls("editMessageText") {
		var id int
		fmt.Sscan(c.Params["message_id"], &id)
		if id <= q {
			t.Errorf("an edit touched message %d, at or below the question %d", id, q)
		}
	}
}

// Messages deleted right above the floor are "not found": that is "not this one", never "the
// lost send was not carried out".
func TestDeletedMessagesAboveTheFloor(t *testing.T) {
	e, p := newProxiedEnv(t, Config{})
	for range 3 {
		e.tg.DeleteUserMessage(user, e.tg.NewMessageID(user))
	}
	// The question is sent first, then three of the user's messages are deleted: ids the bot
	// never saw, right above the question.
	q := e.tg.NewMessageID(user)
	for range 3 {
		e.tg.DeleteUserMessage(user, e.tg.NewMessageID(user))
	}
	e.tg.Push(models.Update{Message: &models.Message{ID: q, Date: int(time.Now().Unix()), Text: "hi",
		Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user, FirstName: "Ann"}}})
	lostFirstSend(p, user)
	e.model.fn = chunks("Hello, ", "there.")
	if got := e.settle(user, q); got.Text != "Hello, there." {
		t.Errorf("reply: got %q", got.Text)
	}
	if n := len(e.tg.Messages(user)); n != 1 {
		t.Errorf("bot messages: got %d, want 1: %+v", n, e.tg.Messages(user))
	}
}

// A notice goes out in the same chat while a reply's send has no answer, and Telegram is slow to
// answer the notice's own send: no look for the lost message ever edits the notice. (Sends in a
// chat take turns, so the notice is either below the lost send's floor or above the id of the
// send made again: outside the range looked at.)
func TestNoticeDuringASearch(t *testing.T) {
	e, p := newProxiedEnv(t, Config{Conversation: conversation.Config{AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	q := e.groupMessage(group, 41, "a question")
	for range 10 {
		e.tg.NewMessageID(group) // unseen
	}
	var notice atomic.Int64
	var lost atomic.Bool
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		switch {
		case c.Method != "sendMessage":
		case strings.Contains(c.Params["text"], "Commands:"):
			return telegramtest.Action{DelayAnswer: 2 * time.Second}
		case lost.CompareAndSwap(false, true):
			// Another member asks for /help while the reply's first send is on its way; that
			// send never reaches Telegram.
			notice.Store(int64(e.groupCommand(group, 42, "/help")))
			return telegramtest.Action{Reset: true}
		}
		return telegramtest.Action{}
	})
	e.model.fn = chunks("Answer.")
	e.wait(func() bool {
		return notice.Load() != 0 && len(repliesTo(e.tg.Messages(group), int(notice.Load()))) == 1
	})
	e.settle(group, q)
	help := repliesTo(e.tg.Messages(group), int(notice.Load()))[0]
	if !strings.Contains(help.Text, "Commands:") {
		t.Errorf("the notice: got %q, want the help text", help.Text)
	}
	if help.Edits != 0 {
		t.Errorf("the notice was edited %d times, want never", help.Edits)
	}
}

// groupCommand pushes a command from user in group, and returns its id.
func (e *env) groupCommand(chat, from int64, text string) int {
	id := e.tg.NewMessageID(chat)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: id, Date: int(time.Now().Unix()), Text: text,
		Chat: models.Chat{ID: chat, Type: models.ChatTypeSupergroup}, From: &models.User{ID: from, FirstName: "Bo"},
		Entities: []models.MessageEntity{{Type: models.MessageEntityTypeBotCommand, Offset: 0, Length: len(strings.Fields(text)[0])}},
	}})
	return id
}

// A model stream that panics ends the reply with a notice; the bot goes on.
func TestPanickingStream(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "boom" {
			yield("Half an ans", nil)
			panic("the model client fell over")
		}
		yield("fine", nil)
	}
	got := e.final(user, e.say(user, user, "boom"))
	if !strings.Contains(got[0].Text, "Half an ans") || !strings.Contains(got[0].Text, "⚠️") {
		t.Errorf("reply: got %q, want the text shown and a notice", got[0].Text)
	}
	if got := e.final(user, e.say(user, user, "after")); got[0].Text != "fine" {
		t.Errorf("the next message: got %q", got[0].Text)
	}
}

// An update whose handling panics every time (here the speech-to-text client, which runs in the
// conversation's job) is tried maxAttempts times, then skipped with a notice; the conversation
// goes on, and nothing is left pending.
func TestPanickingUpdateIsSkipped(t *testing.T) {
	var calls atomic.Int64
	tr := &fakeTranscriber{fn: func(string, []byte) (string, error) {
		calls.Add(1)
		panic("cannot handle this one")
	}}
	e := newEnv(t, Config{Transcriber: tr})
	e.model.fn = chunks("ok")
	m := e.tg.PushVoice(from(""), telegramtest.File{Data: []byte("OggS voice"), Duration: 2})
	got := e.final(user, m.ID)
	if !strings.Contains(got[0].Text, "skipped") {
		t.Errorf("reply: got %q, want the skipped notice", got[0].Text)
	}
	if n := calls.Load(); n != maxAttemptsForTest {
		t.Errorf("attempts: got %d, want %d", n, maxAttemptsForTest)
	}
	if got := e.final(user, e.say(user, user, "next")); got[0].Text != "ok" {
		t.Errorf("the next message: got %q", got[0].Text)
	}
	e.eventually(func() bool {
		p, _ := e.store.Inbox().Pending(context.Background())
		return len(p) == 0
	})
}

// maxAttemptsForTest is conversation.maxAttempts, as the README states it.
const maxAttemptsForTest = 3

// A reply whose final edit Telegram refuses is finished in the same run, as soon as Telegram
// takes it, not at the next restart; and the history keeps its order: the answer is stored
// before the next question, which is answered meanwhile.
func TestUnfinishedReplyFinishesInProcess(t *testing.T) {
	e, p := newProxiedEnv(t, Config{})
	var refuse atomic.Bool
	var refused atomic.Int64
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if refuse.Load() && c.Method == "editMessageText" && !strings.Contains(c.Params["text"], cursor) {
			refused.Add(1)
			return telegramtest.Action{RespondStatus: 400, RespondBody: `{"ok":false,"error_code":400,"description":"Bad Request: MESSAGE_EDIT_TIME_EXPIRED"}`}
		}
		return telegramtest.Action{}
	})
	release := make(chan struct{})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) != "first" {
			yield("second answer", nil)
			return
		}
		if !yield("first answer, ", nil) {
			return
		}
		<-release
		yield("complete.", nil)
	}
	first := e.say(user, user, "first")
	e.wait(func() bool { return len(e.tg.Messages(user)) == 1 })
	refuse.Store(true)
	close(release)
	e.eventually(func() bool { return refused.Load() > 0 && len(e.turns(history.Key{ChatID: user})) == 2 })
	second := e.say(user, user, "second")
	// The second question is taken while the first reply is still unfinished.
	e.eventually(func() bool { return len(e.turns(history.Key{ChatID: user})) >= 3 })
	refuse.Store(false)
	if got := e.final(user, first); got[0].Text != "first answer, complete." {
		t.Errorf("first reply: got %q", got[0].Text)
	}
	e.final(user, second)
	ts := e.answered(history.Key{ChatID: user}, 4)
	var order []string
	for _, t := range ts {
		order = append(order, t.Content)
	}
	if got, want := strings.Join(order, " | "), "first | first answer, complete. | second | second answer"; got != want {
		t.Errorf("history: got %q, want %q", got, want)
	}
	e.eventually(func() bool {
		p, _ := e.store.Inbox().Pending(context.Background())
		return len(p) == 0
	})
}
