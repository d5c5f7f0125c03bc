package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/render"
	"aurabot/bot/reply"
	"aurabot/history"
)

// When the final text renders into fewer messages than a partial one did (a Markdown link cut
// open renders longer than the finished link), the reply's extra messages do not stay behind
// with stale text, a cursor or a button: they are deleted (or blanked, where Telegram refuses).
func TestFinalReplyRemovesLeftoverMessages(t *testing.T) {
	e := newEnv(t, Config{})
	prefix := strings.Repeat("word ", 600)
	url := "https://example.com/" + strings.Repeat("x", 1480)
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		if !yield(prefix+"[link](", nil) {
			return
		}
		for i := 0; i < len(url); i += 500 {
			if !yield(url[i:i+500], nil) {
				return
			}
		}
		// The unfinished link shows as text: the reply takes two messages now.
		e.wait(func() bool { return len(e.tg.Messages(user)) >= 2 })
		yield(")", nil)
	}
	id := e.say(user, user, "link please")
	e.wait(func() bool {
		for _, m := range e.tg.Messages(user) {
			if strings.HasSuffix(m.Text, cursor) || m.Markup != "" {
				return false
			}
		}
		ms := e.tg.Messages(user)
		return len(ms) > 0 && ms[0].ReplyTo == id && strings.HasSuffix(ms[0].Text, "link")
	})
	want := render.Markdown(prefix + "[link](" + url + ")")
	var visible []string
	for _, m := range e.tg.Messages(user) {
		if m.Text != "…" {
			visible = append(visible, m.Text)
		}
	}
	if len(visible) != 1 || visible[0] != want.Text {
		t.Fatalf("visible messages: got %d (%.40q...), want the one final message", len(visible), visible)
	}
	if n := len(e.tg.Calls("deleteMessage")); n == 0 {
		t.Errorf("deleteMessage calls: got none, want the leftover message deleted")
	}
}

// The Stop button stops its own reply only: pressed after that reply ended, it stops nothing
// (not the reply streaming in the same conversation then) and loses its keyboard.
func TestStaleStopButtonStopsNothing(t *testing.T) {
	e := newEnv(t, Config{})
	release := make(chan struct{})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "first" {
			if yield("First answer", nil) {
				e.wait(func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
				yield(".", nil)
			}
			return
		}
		if !yield("Second answer", nil) {
			return
		}
		select {
		case <-release:
			yield(" ends.", nil)
		case <-ctx.Done():
			yield("", ctx.Err())
		}
	}
	first := e.say(user, user, "first")
	e.final(user, first)
	var staleData string
	for _, c := range e.tg.Calls("sendMessage") {
		var kb struct {
			Rows [][]struct {
				Data string `json:"callback_data"`
			} `json:"inline_keyboard"`
		}
		if json.Unmarshal([]byte(c.Params["reply_markup"]), &kb) == nil && len(kb.Rows) > 0 {
			staleData = kb.Rows[0][0].Data
			break
		}
	}
	if staleData == "" {
		t.Fatal("the first reply had no Stop button")
	}
	firstMsg := e.tg.Messages(user)[0]

	second := e.say(user, user, "second")
	e.wait(func() bool { return hasText(e.tg, user, second, "Second answer") })
	e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
		ID: "stale", From: models.User{ID: user}, Data: staleData,
		Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{
			ID: firstMsg.ID, Date: int(time.Now().Unix()), Chat: models.Chat{ID: user, Type: models.ChatTypePrivate},
		}},
	}})
	e.wait(func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if c.Params["callback_query_id"] == "stale" {
				return strings.Contains(c.Params["text"], "ended")
			}
		}
		return false
	})
	close(release)
	msgs := e.final(user, second)
	if got := msgs[0].Text; got != "Second answer ends." {
		t.Fatalf("second reply: got %q, want it whole: a stale button stopped it", got)
	}
	if n := len(e.tg.Calls("editMessageReplyMarkup")); n != 1 {
		t.Errorf("editMessageReplyMarkup: got %d calls, want 1 taking the stale keyboard off", n)
	}
}

// An answer longer than MaxAnswerChars is cut there: the model's stream is stopped, the user is
// told under the reply, and the text shown is what is stored.
func TestAnswerCappedAtMaxAnswerChars(t *testing.T) {
	e := newEnv(t, Config{Reply: reply.Config{MaxAnswerChars: 1000}})
	stopped := make(chan struct{})
	e.model.fn = func(ctx context.Context, _ []aura.Message, yield func(string, error) bool) {
		defer close(stopped)
		for i := 0; ; i++ {
			if !yield(strings.Repeat("é", 49)+" ", nil) {
				return
			}
		}
	}
	id := e.say(user, user, "go on forever")
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the model's stream was not stopped at the cap")
	}
	msgs := e.final(user, id)
	if !strings.Contains(msgs[len(msgs)-1].Text, "1000 characters") {
		t.Errorf("last message: got %q, want a notice naming the cap", msgs[len(msgs)-1].Text)
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if n := utf8.RuneCountInString(ts[1].Content); n != 1000 {
		t.Errorf("stored answer: %d characters, want 1000", n)
	}
}
