package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/render"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// The reply is posted on the first chunk, grows with a cursor and a Stop button while streaming,
// and ends with the formatted text and neither.
func TestReplyStreamsThenFinalises(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		// While the model is silent, the user sees "typing…".
		e.wait(func() bool { return len(e.tg.Calls("sendChatAction")) > 0 })
		if !yield("Here is **bold**", nil) {
			return
		}
		// The first text is on screen before the model says more.
		e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
		if !yield(" and `code`", nil) {
			return
		}
		e.wait(func() bool { return len(e.tg.Calls("editMessageText")) >= 1 })
		yield(".", nil)
	}
	id := e.say(user, user, "hi")
	msgs := e.final(user, id)
	if len(msgs) != 1 {
		t.Fatalf("messages: got %d, want 1", len(msgs))
	}
	want := render.Markdown("Here is **bold** and `code`.")
	if msgs[0].Text != want.Text {
		t.Fatalf("final text: got %q, want %q", msgs[0].Text, want.Text)
	}
	if !sameEntities(msgs[0].Entities, want.Entities) {
		t.Errorf("final entities: got %+v, want %+v", msgs[0].Entities, want.Entities)
	}
	send := e.tg.Calls("sendMessage")[0]
	if !strings.HasSuffix(send.Params["text"], cursor) || !strings.Contains(send.Params["reply_markup"], callbackStop) {
		t.Errorf("first send: got text %q markup %q, want a cursor and a Stop button", send.Params["text"], send.Params["reply_markup"])
	}
	if !strings.Contains(send.Params["reply_parameters"], jsonInt(id)) {
		t.Errorf("first send: got reply_parameters %q, want a reply to %d", send.Params["reply_parameters"], id)
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if len(ts) != 2 || ts[1].Content != "Here is **bold** and `code`." || ts[1].Status != history.StatusDone {
		t.Errorf("stored turns: got %+v", ts)
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

func sameEntities(a, b []models.MessageEntity) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Offset != b[i].Offset || a[i].Length != b[i].Length || a[i].URL != b[i].URL || a[i].Language != b[i].Language {
			return false
		}
	}
	return true
}

// Many chunks arriving fast make few edits, each with newer text than the last, paced by the
// chat's interval.
func TestReplyEditsArePacedAndNeverStale(t *testing.T) {
	interval := 150 * time.Millisecond
	e := newEnv(t, Config{PrivateInterval: interval})
	const n = 60
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		for i := range n {
			if !yield("word"+jsonInt(i)+" ", nil) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	id := e.say(user, user, "count")
	msgs := e.final(user, id)
	calls := append(e.tg.Calls("sendMessage"), e.tg.Calls("editMessageText")...)
	var last string
	for i, c := range calls {
		text := strings.TrimSuffix(c.Params["text"], cursor)
		if i > 0 && !strings.HasPrefix(text, last) || text == last && strings.HasSuffix(c.Params["text"], cursor) {
			t.Errorf("call %d: text %q does not grow from %q", i, text, last)
		}
		last = text
	}
	checkSpacing(t, e.tg, user, interval)
	if len(calls) > n/2 {
		t.Errorf("calls: got %d for %d chunks, want far fewer (edits are paced, not per chunk)", len(calls), n)
	}
	if !strings.HasSuffix(msgs[0].Text, "word59") {
		t.Errorf("final text ends %q, want the last chunk", msgs[0].Text[max(0, len(msgs[0].Text)-20):])
	}
}

// A 429 stops all calls to that chat until retry_after has passed; the final text still arrives.
func TestReplyWaitsOutTooManyRequests(t *testing.T) {
	e := newEnv(t, Config{})
	var hit time.Time
	first := true
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		if method == "editMessageText" && first {
			first = false
			hit = time.Now()
			return &telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1}
		}
		return nil
	})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		yield("one", nil)
		e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
		yield(" two", nil)
		e.wait(func() bool { return len(e.tg.Calls("editMessageText")) == 1 }) // the 429
		yield(" three", nil)
	}
	id := e.say(user, user, "go")
	msgs := e.final(user, id)
	if msgs[0].Text != "one two three" {
		t.Fatalf("final text: got %q", msgs[0].Text)
	}
	for _, c := range e.tg.Calls("") {
		if c.ChatID() == user && c.At.After(hit) && c.At.Before(hit.Add(time.Second)) && c.Method != "sendChatAction" {
			t.Errorf("%s at +%v: a call inside the retry_after window", c.Method, c.At.Sub(hit))
		}
	}
	if n := e.tg.TooManyRequests(); n != 1 {
		t.Errorf("429s: got %d, want 1", n)
	}
}

// "message is not modified" is success; a formatting 400 falls back to plain text, losing nothing.
func TestReplyTelegram400s(t *testing.T) {
	e := newEnv(t, Config{})
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		if p["entities"] != "" {
			return &telegramtest.Fault{Code: 400, Description: "Bad Request: can't parse entities: Unsupported start tag"}
		}
		return nil
	})
	e.model.fn = chunks("Some **bold** text")
	id := e.say(user, user, "fmt")
	msgs := e.final(user, id)
	if msgs[0].Text != "Some bold text" || len(msgs[0].Entities) != 0 {
		t.Fatalf("got %q %+v, want the rendered text, plain", msgs[0].Text, msgs[0].Entities)
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if len(ts) != 2 || ts[1].Status != history.StatusDone {
		t.Errorf("stored: got %+v, want the answer stored as done", ts)
	}

	// Not modified: the final edit carries the same text as the last streaming one would if the
	// cursor were gone; force it by answering every edit with "not modified".
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		if method == "editMessageText" {
			return &telegramtest.Fault{Code: 400, Description: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same"}
		}
		return nil
	})
	sends, edits := len(e.tg.Calls("sendMessage")), len(e.tg.Calls("editMessageText"))
	e.model.fn = func(_ context.Context, _ []aura.Message, yield func(string, error) bool) {
		// The reply is on screen, with its cursor, before the answer ends: the final text goes
		// out as an edit, and that edit is the one answered "not modified".
		if yield("same", nil) {
			e.wait(func() bool { return len(e.tg.Calls("sendMessage")) > sends })
		}
	}
	id = e.say(user, user, "again")
	if ts := e.answered(history.Key{ChatID: user}, 4); ts[3].Content != "same" || ts[3].Status != history.StatusDone {
		t.Errorf("after not-modified: got %+v, want the answer stored as done", ts[3])
	}
	if n := len(e.tg.Calls("editMessageText")) - edits; n != 1 {
		t.Errorf("edits: got %d, want the one final edit, taken as done (not tried again)", n)
	}
}

// A 403 (the user blocked the bot) stops the reply: the model request is cancelled.
func TestReplyStopsWhenBlocked(t *testing.T) {
	e := newEnv(t, Config{})
	cancelled := make(chan struct{})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield("hello", nil) {
			return
		}
		e.tg.Block(user)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				close(cancelled)
				yield("", ctx.Err())
				return
			case <-time.After(5 * time.Millisecond):
				if !yield(".", nil) {
					close(cancelled)
					return
				}
			}
		}
	}
	e.say(user, user, "hi")
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the model stream was not cancelled after a 403")
	}
	// No assistant turn is stored for a reply nobody can see.
	e.stop()
	for _, turn := range e.turns(history.Key{ChatID: user}) {
		if turn.Role == history.RoleAssistant {
			t.Errorf("stored %+v, want no answer for a blocked chat", turn)
		}
	}
}

// A reply longer than 4096 UTF-16 units goes on in new messages that together hold all of it.
func TestReplyLongSplitsAcrossMessages(t *testing.T) {
	e := newEnv(t, Config{})
	var sb strings.Builder
	for i := range 300 {
		sb.WriteString("Paragraph ")
		sb.WriteString(jsonInt(i))
		sb.WriteString(" has some words and an emoji 🙂 in it.\n\n")
	}
	sb.WriteString("```go\n")
	for i := range 150 {
		sb.WriteString("fmt.Println(\"line ")
		sb.WriteString(jsonInt(i))
		sb.WriteString("\")\n")
	}
	sb.WriteString("```\nThe end.")
	text := sb.String()
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		for i := 0; i < len(text); i += 500 {
			if !yield(text[i:min(i+500, len(text))], nil) {
				return
			}
		}
	}
	id := e.say(user, user, "long")
	e.answered(history.Key{ChatID: user}, 2)
	msgs := e.final(user, id)
	if len(msgs) < 3 {
		t.Fatalf("messages: got %d, want at least 3", len(msgs))
	}
	var joined strings.Builder
	for i, m := range msgs {
		if n := len(utf16.Encode([]rune(m.Text))); n > 4096 {
			t.Errorf("message %d: %d UTF-16 units, want at most 4096", i, n)
		}
		joined.WriteString(m.Text)
	}
	rendered := render.Markdown(text).Text
	if strip(joined.String()) != strip(rendered) {
		t.Errorf("the messages do not hold the whole reply: got %d visible characters, want %d", len(strip(joined.String())), len(strip(rendered)))
	}
	if last := msgs[len(msgs)-1].Text; !strings.HasSuffix(last, "The end.") {
		t.Errorf("last message ends %q", last[max(0, len(last)-30):])
	}
}

func strip(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// A model failure shows a clear message with the reason and /retry; a partial answer is kept as cut.
func TestReplyModelFailures(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		yield("", &aura.StatusError{StatusCode: 500, Reason: "model overloaded", Body: "Error"})
	}
	id := e.say(user, user, "hi")
	msgs := e.final(user, id)
	if !strings.Contains(msgs[0].Text, "500 model overloaded") || !strings.Contains(msgs[0].Text, "/retry") {
		t.Errorf("failure notice: got %q, want the status, reason and /retry", msgs[0].Text)
	}
	ts := e.turns(history.Key{ChatID: user})
	if len(ts) != 1 || ts[0].Role != history.RoleUser {
		t.Errorf("stored: got %+v, want only the user turn", ts)
	}

	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		if yield("The answer is", nil) {
			yield("", aura.ErrBrokenStream)
		}
	}
	id = e.say(user, user, "again")
	msgs = e.final(user, id)
	if !strings.HasPrefix(msgs[0].Text, "The answer is") || !strings.Contains(msgs[0].Text, "broke off") {
		t.Errorf("partial reply: got %q, want the text and a broke-off notice", msgs[0].Text)
	}
	ts = e.answered(history.Key{ChatID: user}, 3)
	if ts[2].Content != "The answer is" || ts[2].Status != history.StatusCut {
		t.Errorf("stored partial: got %+v, want the text the user saw, marked cut", ts[2])
	}
}

// An answer of only whitespace is an empty answer: a notice, and nothing stored.
func TestReplyBlankAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = chunks("  ", "\n\n ")
	id := e.say(user, user, "hi")
	e.wait(func() bool { return hasText(e.tg, user, id, "empty answer") })
	e.stop()
	if ts := e.turns(history.Key{ChatID: user}); len(ts) != 1 {
		t.Errorf("stored: got %+v, want only the user turn", ts)
	}
}
