package bot

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/bot/telegramtest"
	"aurabot/history"
	"aurabot/history/inbox"
)

const thinkingText = "The user greets me. I should greet back, briefly."

// quoted returns the text of the message's expandable blockquote, "" if it has none.
func quoted(m telegramtest.Message) string {
	for _, e := range m.Entities {
		if e.Type == models.MessageEntityTypeExpandableBlockquote {
			u := utf16.Encode([]rune(m.Text))
			return string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		}
	}
	return ""
}

// showing reports whether the chat shows a message with the given start and, in its quote, the
// given text.
func showing(tg *telegramtest.Server, chat int64, start, inQuote string) bool {
	for _, m := range tg.Messages(chat) {
		if strings.HasPrefix(m.Text, start) && strings.Contains(quoted(m), inQuote) {
			return true
		}
	}
	return false
}

// thinkThenAnswer is a reasoning model: it yields each piece of thinking, waits until ready
// says the user sees it, then yields each piece of the answer.
func thinkThenAnswer(thinking []string, ready func() bool, e *env, answer ...string) func(context.Context, []aura.Message, func(aura.Chunk, error) bool) {
	return func(ctx context.Context, _ []aura.Message, yield func(aura.Chunk, error) bool) {
		for _, s := range thinking {
			if !yield(aura.Chunk{Thinking: s}, nil) {
				return
			}
		}
		e.wait(func() bool { return ready() || ctx.Err() != nil })
		for _, s := range answer {
			if !yield(aura.Chunk{Text: s}, nil) {
				return
			}
		}
	}
}

// In edit mode the reply starts with the thinking (a label, the newest lines in an expandable
// quote, the Stop button); once the answer begins the thinking collapses to that quote above
// it. The answer is exact and stored alone, and the next request carries no thinking.
func TestThinkingShownThenCollapsed(t *testing.T) {
	e := newEnv(t, Config{})
	k := history.Key{ChatID: user}
	e.model.chunks = thinkThenAnswer([]string{"\n", "The user greets me.", " I should greet back, briefly.\n"}, func() bool {
		for _, m := range e.tg.Messages(user) {
			if strings.HasPrefix(m.Text, "💭 Thinking…") && quoted(m) == thinkingText && strings.Contains(m.Markup, callbackStop) {
				return true
			}
		}
		return false
	}, e, "Hello **there**", "!")
	id := e.say(user, user, "hi")
	msgs := e.final(user, id)
	m := msgs[0]
	if len(msgs) != 1 || !strings.HasPrefix(m.Text, "💭 Thought for ") || !strings.HasSuffix(m.Text, "\n"+thinkingText+"\n\nHello there!") {
		t.Fatalf("final: got %+v, want the collapsed thinking above the answer", msgs)
	}
	if quoted(m) != thinkingText {
		t.Errorf("final quote: got %q, want the whole thinking", quoted(m))
	}
	if i := slices.IndexFunc(m.Entities, func(e models.MessageEntity) bool { return e.Type == models.MessageEntityTypeBold }); i < 0 ||
		string(utf16.Decode(utf16.Encode([]rune(m.Text))[m.Entities[i].Offset:m.Entities[i].Offset+m.Entities[i].Length])) != "there" {
		t.Errorf("final entities: got %+v, want the answer's bold", m.Entities)
	}
	ts := e.answered(k, 2)
	if ts[1].Content != "Hello **there**!" || ts[1].Status != history.StatusDone {
		t.Errorf("stored: got %+v, want the answer alone", ts[1])
	}
	e.model.chunks = nil
	e.model.fn = chunks("ok")
	e.final(user, e.say(user, user, "and now?"))
	reqs := e.model.requests()
	last := reqs[len(reqs)-1]
	if len(last) != 4 || last[2].Role != "assistant" || last[2].Content != "Hello **there**!" {
		t.Errorf("next request: got %+v, want the answer alone as the assistant's turn", last)
	}
}

// SHOW_THINKING=off: the label and the time, never the thinking.
func TestThinkingHidden(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{Thinking: "off"}})
	e.model.chunks = thinkThenAnswer([]string{thinkingText}, func() bool {
		return slices.ContainsFunc(e.tg.Messages(user), func(m telegramtest.Message) bool { return strings.HasPrefix(m.Text, "💭 Thinking…") })
	}, e, "Hello!")
	id := e.say(user, user, "hi")
	msgs := e.final(user, id)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "💭 Thought for ") || !strings.HasSuffix(msgs[0].Text, " s\n\nHello!") || quoted(msgs[0]) != "" {
		t.Errorf("final: got %+v, want the one line and the answer", msgs)
	}
	for _, c := range e.tg.Calls("") {
		if strings.Contains(c.Params["text"], "greet") {
			t.Errorf("%s showed the thinking: %q", c.Method, c.Params["text"])
		}
	}
}

// A thinking of 20,000 characters followed by a short answer: the thinking shown is bounded,
// collapses to one line, and the answer keeps every rule it has without thinking: it goes on
// past 4096 in a second message, keeps its entities, and MAX_ANSWER_CHARS counts it alone.
func TestLongThinking(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{MaxAnswerChars: 6000}})
	var thinking []string
	for i := range 100 {
		thinking = append(thinking, strings.Repeat("x", 190)+" step "+strconv.Itoa(i%10)+".\n") // 200 characters
	}
	answer := "**Short** answer. " + strings.Repeat("word ", 900) // 4518 characters
	e.model.chunks = thinkThenAnswer(thinking, func() bool {
		return showing(e.tg, user, "💭 Thinking…", "step 9.")
	}, e, answer[:2000], answer[2000:])
	id := e.say(user, user, "think hard")
	ts := e.answered(history.Key{ChatID: user}, 2) // stored once every message is final
	msgs := e.final(user, id)
	if len(msgs) != 2 {
		t.Fatalf("final: got %d messages (%d units: %.200q), want the answer over two", len(msgs), len(utf16.Encode([]rune(msgs[0].Text))), msgs[0].Text)
	}
	if !strings.HasPrefix(msgs[0].Text, "💭 Thought for ") || !strings.Contains(msgs[0].Text, " s\n\nShort answer. word") || quoted(msgs[0]) != "" {
		t.Errorf("first message: got %.80q… %+v, want the one line and the answer", msgs[0].Text, msgs[0].Entities)
	}
	if b := msgs[0].Entities; len(b) != 1 || b[0].Type != models.MessageEntityTypeBold || b[0].Length != 5 {
		t.Errorf("first message entities: got %+v, want Short in bold", b)
	}
	head, _, _ := strings.Cut(msgs[0].Text, "\n\n")
	if got := strings.TrimSpace(strings.TrimPrefix(msgs[0].Text, head+"\n\n") + " " + msgs[1].Text); got != strings.TrimSpace(strings.ReplaceAll(answer, "**", "")) {
		t.Errorf("the answer over the messages differs from the model's")
	}
	for _, m := range msgs {
		if strings.Contains(m.Text, "✂️") || strings.Contains(m.Text, "step") {
			t.Errorf("got %.60q…, want neither a cut nor the thinking", m.Text)
		}
	}
	for _, c := range append(e.tg.Calls("sendMessage"), e.tg.Calls("editMessageText")...) {
		if txt := c.Params["text"]; strings.HasPrefix(txt, "💭 Thinking…") && len([]rune(txt)) > 400 {
			t.Errorf("a live update showed %d characters of thinking, want its newest lines only", len([]rune(txt)))
		}
	}
	if ts[1].Content != answer || ts[1].Status != history.StatusDone {
		t.Errorf("stored: got %d characters (%s), want the answer alone, done", len(ts[1].Content), ts[1].Status)
	}
}

// chatIn is a private chat, or a topic of it.
type chatIn struct {
	name   string
	thread int
}

// sayIn delivers text from the user in their private chat, in a topic when thread is not 0.
func (e *env) sayIn(thread int, text string) int {
	return e.post(models.Message{Text: text, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate}, From: &models.User{ID: user, FirstName: "Ann"},
		IsTopicMessage: thread != 0, MessageThreadID: thread})
}

// journalOf returns the reply journal of the inbox entry of message id.
func (e *env) journalOf(id int) inbox.Reply {
	e.t.Helper()
	for seq := int64(1); seq < 100; seq++ {
		u, err := e.store.Inbox().Get(context.Background(), seq)
		if err != nil {
			continue
		}
		var up models.Update
		if json.Unmarshal(u.Payload, &up) == nil && up.Message != nil && up.Message.ID == id {
			return u.Reply
		}
	}
	e.t.Fatalf("no inbox entry for message %d", id)
	return inbox.Reply{}
}

// draftOf waits for a draft of the chat (in thread) that shows text with Telegram's Stop button
// and keeps its text when pressed, and returns it.
func (e *env) draftOf(thread int, text string) telegramtest.Draft {
	var d telegramtest.Draft
	e.wait(func() bool {
		for _, x := range e.tg.Drafts(user) {
			if x.ThreadID == thread && strings.Contains(x.Text, text) && x.CanStop && x.KeepOnStop && !x.Stopped {
				d = x
				return true
			}
		}
		return false
	})
	return d
}

// In draft mode, Telegram's own Stop button (a stopped_message_generation update) stops a reply
// as /stop does, in a private chat and in a topic of one: the model's request is cancelled, the
// kept text is the final message with "⏹ Stopped.", the journal and the history hold the same
// as after /stop. Before the first text the draft is Telegram's "Thinking…" placeholder, not
// "typing…". A press on the draft of a reply that has ended stops nothing.
func TestNativeStop(t *testing.T) {
	for _, where := range []chatIn{{"private chat", 0}, {"topic", 9}} {
		t.Run(where.name, func(t *testing.T) {
			type result struct {
				final   string
				journal inbox.Reply
				stored  history.Turn
			}
			run := func(e *env, native bool, question string) result {
				cancelled := make(chan struct{})
				e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
					// The placeholder comes first: nothing else shows while the model is silent.
					e.wait(func() bool {
						return slices.ContainsFunc(e.tg.Drafts(user), func(d telegramtest.Draft) bool {
							return d.ThreadID == where.thread && d.Placeholders > 0 && d.Updates == 0 && d.CanStop && d.KeepOnStop && !d.Stopped
						})
					})
					if !yield("Once upon a time", nil) {
						return
					}
					<-ctx.Done()
					close(cancelled)
					yield("", ctx.Err())
				}
				id := e.sayIn(where.thread, question)
				d := e.draftOf(where.thread, "Once upon a time")
				if native {
					if _, err := e.tg.StopGeneration(user, where.thread, d.ID); err != nil {
						t.Fatal(err)
					}
				} else {
					e.sayIn(where.thread, "/stop")
				}
				select {
				case <-cancelled:
				case <-time.After(20 * time.Second):
					t.Fatal("the model request was not cancelled")
				}
				msgs := e.final(user, id)
				k := history.Key{ChatID: user, ThreadID: int64(where.thread)}
				ts := e.answered(k, 2)
				e.handled()
				return result{final: msgs[0].Text, journal: e.journalOf(id), stored: ts[len(ts)-1]}
			}
			cmd := run(newEnv(t, Config{Reply: reply.Config{StreamMode: reply.StreamDraft}}), false, "tell a story")
			e := newEnv(t, Config{Reply: reply.Config{StreamMode: reply.StreamDraft}})
			native := run(e, true, "tell a story")
			if native.final != "Once upon a time\n\n⏹ Stopped." {
				t.Errorf("final: got %q, want the kept text and the stopped note", native.final)
			}
			if native.final != cmd.final || native.journal.Text != cmd.journal.Text || native.journal.Notice != cmd.journal.Notice ||
				native.journal.Final != cmd.journal.Final || native.stored.Content != cmd.stored.Content || native.stored.Status != cmd.stored.Status {
				t.Errorf("Telegram's stop: got %+v, /stop: %+v, want the same", native, cmd)
			}
			if n := len(e.tg.Calls("sendChatAction")); n != 0 {
				t.Errorf("sendChatAction: got %d calls, want the draft placeholder instead", n)
			}
			for _, c := range e.tg.Calls("sendMessageDraft") {
				if c.Params["can_stop"] != "true" || c.Params["keep_on_stop"] != "true" {
					t.Errorf("draft %v: want can_stop and keep_on_stop on every draft", c.Params)
				}
			}

			// A press on the old draft while a new reply streams stops nothing.
			old := e.tg.Drafts(user)[0]
			release := make(chan struct{})
			e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
				if !yield("A second story", nil) {
					return
				}
				select {
				case <-release:
				case <-ctx.Done():
					yield("", ctx.Err())
					return
				}
				yield(" ends well.", nil)
			}
			id := e.sayIn(where.thread, "another")
			e.draftOf(where.thread, "A second story")
			if _, err := e.tg.StopGeneration(user, where.thread, old.ID); err != nil {
				t.Fatal(err)
			}
			// Handled (and finished at once) while the new reply streams: only its question is
			// left in the inbox.
			e.eventually(func() bool {
				p, err := e.store.Inbox().Pending(context.Background())
				return err == nil && len(p) == 1 && e.tg.PendingUpdates() == 0
			})
			close(release)
			if got := e.final(user, id)[0].Text; got != "A second story ends well." {
				t.Errorf("after a press on an old draft: got %q, want the reply whole", got)
			}
		})
	}
}

// In draft mode the thinking goes in the draft, as in the message in edit mode.
func TestThinkingInDraft(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{StreamMode: reply.StreamDraft}})
	e.model.chunks = thinkThenAnswer([]string{thinkingText}, func() bool {
		return slices.ContainsFunc(e.tg.Drafts(user), func(d telegramtest.Draft) bool {
			return strings.HasPrefix(d.Text, "💭 Thinking…\n"+thinkingText) && slices.ContainsFunc(d.Entities, func(x models.MessageEntity) bool {
				return x.Type == models.MessageEntityTypeExpandableBlockquote
			})
		})
	}, e, "Hello!")
	id := e.say(user, user, "hi")
	if m := e.final(user, id)[0]; !strings.HasPrefix(m.Text, "💭 Thought for ") || quoted(m) != thinkingText || !strings.HasSuffix(m.Text, "\n\nHello!") {
		t.Errorf("final: got %q, want the collapsed thinking and the answer", m.Text)
	}
}

// In draft mode, while the model has sent nothing, the draft is Telegram's "Thinking…"
// placeholder (an empty draft, with the Stop button), not "typing…"; the text follows in the
// same draft, or in the final message.
func TestDraftPlaceholder(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{StreamMode: reply.StreamDraft}})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		e.wait(func() bool {
			return slices.ContainsFunc(e.tg.Drafts(user), func(d telegramtest.Draft) bool { return d.Placeholders > 0 && d.CanStop })
		})
		yield("Here you are.", nil)
	}
	id := e.say(user, user, "hi")
	if got := e.final(user, id)[0].Text; got != "Here you are." {
		t.Errorf("final: got %q", got)
	}
	drafts := e.tg.Calls("sendMessageDraft")
	if len(drafts) == 0 || drafts[0].Params["text"] != "" {
		t.Fatalf("drafts: got %+v, want the placeholder first", drafts)
	}
	for _, d := range drafts {
		if d.Params["draft_id"] != drafts[0].Params["draft_id"] {
			t.Errorf("draft ids: got %q and %q, want one draft", d.Params["draft_id"], drafts[0].Params["draft_id"])
		}
	}
	if n := len(e.tg.Calls("sendChatAction")); n != 0 {
		t.Errorf("sendChatAction: got %d, want none in draft mode", n)
	}
}
