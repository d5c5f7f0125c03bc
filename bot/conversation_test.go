package bot

import (
	"context"
	"runtime"
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

// lastUser is the content of the newest message sent to the model.
func lastUser(msgs []aura.Message) string { return msgs[len(msgs)-1].Content }

// Messages of one conversation are answered one at a time, in order; a message that arrives
// while a reply streams gets a reaction, then waits its turn.
func TestConversationOrder(t *testing.T) {
	e := newEnv(t, Config{})
	release := make(chan struct{})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "one" {
			if !yield("first ", nil) {
				return
			}
			<-release
		}
		yield("answer to "+lastUser(msgs), nil)
	}
	one := e.say(user, user, "one")
	e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
	two := e.say(user, user, "two")
	three := e.say(user, user, "three")
	e.wait(func() bool { return len(e.tg.Calls("setMessageReaction")) == 2 })
	if n := len(e.model.requests()); n != 1 {
		t.Fatalf("model requests while the first streams: got %d, want 1", n)
	}
	close(release)
	e.final(user, three)
	e.answered(history.Key{ChatID: user}, 6)
	reqs := e.model.requests()
	if len(reqs) != 3 || lastUser(reqs[1]) != "two" || lastUser(reqs[2]) != "three" {
		t.Fatalf("order: got %d requests, want one, two, three", len(reqs))
	}
	// The second request carries the first exchange, complete.
	if got := reqs[1][2].Content; got != "first answer to one" {
		t.Errorf("history for two: got %q, want the first answer", got)
	}
	for _, id := range []int{one, two} {
		if ms := e.final(user, id); len(ms) == 0 {
			t.Errorf("message %d: no reply", id)
		}
	}
}

// At most MaxConcurrentReplies replies stream at once; the rest queue.
func TestConcurrentRepliesAreCapped(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}, MaxConcurrentReplies: 2}})
	var running, peak atomic.Int32
	gate := make(chan struct{})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
		yield("done", nil)
	}
	chats := []int64{101, 102, 103, 104, 105}
	for _, c := range chats {
		e.say(c, c, "hi")
	}
	e.eventually(func() bool { return running.Load() == 2 })
	if n := conversationWorkers(); n != len(chats) {
		t.Errorf("conversation workers while all wait: got %d, want %d", n, len(chats))
	}
	close(gate)
	for _, c := range chats {
		e.answered(history.Key{ChatID: c}, 2)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent replies: got %d, want 2", p)
	}
	// Idle conversations hold no goroutine: no conversation keeps a worker once answered.
	e.eventually(func() bool { return conversationWorkers() == 0 })
}

// conversationWorkers counts the goroutines that run a conversation's queue, from the stacks of
// all goroutines.
func conversationWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "conversation.(*dispatcher).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// /retry answers the last message again as a new message; the old answer leaves the history.
func TestRetry(t *testing.T) {
	e := newEnv(t, Config{})
	n := 0
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		n++
		yield("answer "+jsonInt(n), nil)
	}
	id := e.say(user, user, "question")
	e.answered(history.Key{ChatID: user}, 2)
	e.say(user, user, "/retry")
	ts := e.answered(history.Key{ChatID: user}, 2)
	e.eventually(func() bool {
		ts = e.turns(history.Key{ChatID: user})
		return len(ts) == 2 && ts[1].Content == "answer 2"
	})
	reqs := e.model.requests()
	if len(reqs[1]) != 2 || lastUser(reqs[1]) != "question" {
		t.Errorf("retry request: got %+v, want the system prompt and the question only", reqs[1])
	}
	var replies []string
	for _, m := range e.tg.Messages(user) {
		if m.ReplyTo == id {
			replies = append(replies, m.Text)
		}
	}
	if len(replies) != 2 || replies[0] != "answer 1" || replies[1] != "answer 2" {
		t.Errorf("replies: got %q, want the old answer kept on screen and the new one as a new message", replies)
	}
	e.say(user, user, "/reset")
	e.eventually(func() bool { return len(e.turns(history.Key{ChatID: user})) == 0 })
	r := e.say(user, user, "/retry")
	e.wait(func() bool { return hasText(e.tg, user, r, "no message of yours") })
}

func hasText(tg *telegramtest.Server, chat int64, replyTo int, substr string) bool {
	for _, m := range tg.Messages(chat) {
		if m.ReplyTo == replyTo && strings.Contains(m.Text, substr) {
			return true
		}
	}
	return false
}

// /stop and the Stop button cancel the model request; the message keeps what was shown and
// history keeps it, marked cut.
func TestStop(t *testing.T) {
	for _, via := range []string{"command", "button"} {
		t.Run(via, func(t *testing.T) {
			e := newEnv(t, Config{})
			cancelled := make(chan struct{})
			e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
				if !yield("Once upon a time", nil) {
					return
				}
				<-ctx.Done()
				close(cancelled)
				yield("", ctx.Err())
			}
			id := e.say(user, user, "tell a story")
			e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
			if via == "command" {
				e.say(user, user, "/stop")
			} else {
				msg := e.tg.Messages(user)[0]
				e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
					ID: "cb1", From: models.User{ID: user}, Data: callbackStop,
					Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{
						ID: msg.ID, Date: int(time.Now().Unix()), Chat: models.Chat{ID: user, Type: models.ChatTypePrivate},
					}},
				}})
			}
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the model request was not cancelled")
			}
			msgs := e.final(user, id)
			if !strings.HasPrefix(msgs[0].Text, "Once upon a time") || !strings.Contains(msgs[0].Text, "Stopped") {
				t.Errorf("stopped message: got %q", msgs[0].Text)
			}
			ts := e.answered(history.Key{ChatID: user}, 2)
			if ts[1].Content != "Once upon a time" || ts[1].Status != history.StatusCut {
				t.Errorf("stored: got %+v, want the shown text marked cut", ts[1])
			}
		})
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t, Config{})
	help := e.say(user, user, "/help")
	e.wait(func() bool { return hasText(e.tg, user, help, "/retry") && hasText(e.tg, user, help, "/stop") })
	unknown := e.say(user, user, "/frobnicate now")
	e.wait(func() bool { return hasText(e.tg, user, unknown, "/help") })
	stop := e.say(user, user, "/stop")
	e.wait(func() bool { return hasText(e.tg, user, stop, "Nothing is streaming") })
	sys := e.say(user, user, "/system")
	e.wait(func() bool { return hasText(e.tg, user, sys, "Be helpful.") })
	e.say(user, user, "/system Talk like a pirate.")
	e.eventually(func() bool {
		p, ok, _ := e.store.SystemPrompt(context.Background(), history.Key{ChatID: user})
		return ok && p == "Talk like a pirate."
	})
	e.say(user, user, "/system default")
	e.eventually(func() bool {
		_, ok, _ := e.store.SystemPrompt(context.Background(), history.Key{ChatID: user})
		return !ok
	})
	if n := len(e.model.requests()); n != 0 {
		t.Errorf("model requests for commands: got %d, want 0", n)
	}
}

// In groups the bot answers mentions, replies to itself and commands, including /cmd@bot, and
// ignores the rest; user turns carry the author's name; topics are separate conversations.
func TestGroups(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{IDs: []int64{}}, AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	e.say(group, 5, "just chatting")
	e.say(group, 5, "/help@other_bot")
	id := e.say(group, 5, "@"+telegramtest.BotUsername+" what is Go?")
	ms := e.final(group, id)
	if ms[0].Text != "re: Ann: what is Go?" {
		t.Errorf("group answer: got %q, want the author's name and the text without the mention", ms[0].Text)
	}
	// A reply to the bot's message is addressed to it.
	botMsg := ms[0].ID
	rid := e.tg.NewMessageID(group)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: rid, Text: "and Rust?", Chat: models.Chat{ID: group, Type: models.ChatTypeSupergroup},
		From:           &models.User{ID: 6, FirstName: "Bob"},
		ReplyToMessage: &models.Message{ID: botMsg, From: &models.User{ID: telegramtest.BotID, IsBot: true}},
	}})
	e.final(group, rid)
	help := e.say(group, 5, "/help@"+telegramtest.BotUsername)
	e.wait(func() bool { return hasText(e.tg, group, help, "/retry") })

	// A forum topic is its own conversation.
	tid := e.tg.NewMessageID(group)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: tid, Text: "@" + telegramtest.BotUsername + " topic question", MessageThreadID: 77, IsTopicMessage: true,
		Chat: models.Chat{ID: group, Type: models.ChatTypeSupergroup, IsForum: true},
		From: &models.User{ID: 5, FirstName: "Ann"},
	}})
	e.final(group, tid)
	ts := e.answered(history.Key{ChatID: group}, 4)
	if len(ts) != 4 || ts[0].Author != "Ann" || ts[2].Author != "Bob" {
		t.Errorf("group history: got %+v, want Ann's and Bob's exchanges", ts)
	}
	topic := e.answered(history.Key{ChatID: group, ThreadID: 77}, 2)
	if len(topic) != 2 || topic[0].Content != "topic question" {
		t.Errorf("topic history: got %+v, want its own exchange", topic)
	}
	if n := len(e.model.requests()); n != 3 {
		t.Errorf("model requests: got %d, want 3 (plain chatter and other bots' commands ignored)", n)
	}
	// The topic's reply went into the topic.
	for _, c := range e.tg.Calls("sendMessage") {
		if strings.Contains(c.Params["text"], "topic question") && c.Params["message_thread_id"] != "77" {
			t.Errorf("topic reply: got message_thread_id %q, want 77", c.Params["message_thread_id"])
		}
	}
}

// Strangers get one refusal naming their id (and the group's), at most once an hour per chat,
// and never a model call.
func TestAccess(t *testing.T) {
	e := newEnv(t, Config{})
	const stranger = 999
	a := e.say(stranger, stranger, "hello?")
	e.wait(func() bool { return hasText(e.tg, stranger, a, "999") && hasText(e.tg, stranger, a, "ALLOWED_USERS") })
	b := e.say(stranger, stranger, "hello??")
	e.say(user, user, "sync") // handled after b: once it is answered, b has been handled too
	e.answered(history.Key{ChatID: user}, 2)
	if hasText(e.tg, stranger, b, "private") {
		t.Error("a second refusal within the hour")
	}
	g := e.say(-555, stranger, "@"+telegramtest.BotUsername+" hi")
	e.wait(func() bool { return hasText(e.tg, -555, g, "-555") && hasText(e.tg, -555, g, "ALLOWED_CHATS") })
	// A stranger's Stop button is refused too.
	e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "cb", From: models.User{ID: stranger}, Data: callbackStop,
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{ID: 1, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}}},
	}})
	e.wait(func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if strings.Contains(c.Params["text"], "private") {
				return true
			}
		}
		return false
	})
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1 (only the allowed user's)", n)
	}
}

// A sticker gets a short answer naming what the bot reads, edits are ignored, and an over-long message is refused
// with its length, none of them reaching the model.
func TestInputThatIsNotPlainText(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Budget: history.Budget{Chars: 200}}})
	photo := e.tg.NewMessageID(user)
	e.tg.Push(models.Update{Message: &models.Message{
		ID: photo, Sticker: &models.Sticker{FileID: "x", Width: 1, Height: 1},
		Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user},
	}})
	e.wait(func() bool {
		return hasText(e.tg, user, photo, "can't use stickers") && hasText(e.tg, user, photo, "photos, voice")
	})
	e.tg.Push(models.Update{EditedMessage: &models.Message{
		ID: photo, Text: "edited", Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user},
	}})
	long := e.say(user, user, strings.Repeat("word ", 100))
	// The notice says how long it is and how long it may be with the prompt ("Be helpful.").
	e.wait(func() bool {
		return hasText(e.tg, user, long, "too long") && hasText(e.tg, user, long, "500 characters") && hasText(e.tg, user, long, "at most 189 characters")
	})
	if n := len(e.model.requests()); n != 0 {
		t.Errorf("model requests: got %d, want 0", n)
	}
	if ts := e.turns(history.Key{ChatID: user}); len(ts) != 0 {
		t.Errorf("stored: got %+v, want nothing", ts)
	}
}

// A chat whose user blocked the bot does not stop the others.
func TestOneChatFailingDoesNotStopOthers(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}})
	e.tg.Block(301)
	var mu sync.Mutex
	seen := map[string]bool{}
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		mu.Lock()
		seen[lastUser(msgs)] = true
		mu.Unlock()
		yield("fine", nil)
	}
	e.say(301, 301, "blocked")
	e.say(302, 302, "open")
	ms := e.final(302, e.say(302, 302, "open again"))
	if ms[0].Text != "fine" {
		t.Errorf("other chat: got %q", ms[0].Text)
	}
}
