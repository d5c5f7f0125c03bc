package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// quoteOf returns the text of a message's expandable blockquote, "" if it has none.
func quoteOf(m telegramtest.Message) string {
	for _, e := range m.Entities {
		if e.Type == models.MessageEntityTypeExpandableBlockquote {
			u := utf16.Encode([]rune(m.Text))
			return string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
		}
	}
	return ""
}

// A reasoning model's thinking, in each form a server sends it, is shown while the model
// thinks, then collapsed above the answer; the answer is exact and stored alone, and the next
// request carries no thinking. The <think> tags come split across chunks.
func TestReasoningDialects(t *testing.T) {
	t.Parallel()
	thinking := []string{"The user ", "says hi.", "\nI should greet back."}
	const want = "The user says hi.\nI should greet back."
	for _, tt := range []struct {
		name, protocol, field string // field: where the thinking goes ("": <think> in the content)
	}{
		{"openai reasoning_content", "openai", "reasoning_content"},
		{"openai reasoning", "openai", "reasoning"},
		{"openai <think>", "openai", ""},
		{"chatbot-ui <think>", "chatbot-ui", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
				if len(req.Messages) > 1 {
					streamText("Fine.")(w, flush, req)
					return
				}
				pieces := thinking
				if tt.field == "" {
					pieces = append(append([]string{"\n<th", "ink>"}, thinking...), "\n</thi", "nk>\n", "\n")
				}
				for _, p := range pieces {
					if tt.field != "" {
						w.(*sseWriter).reason(tt.field, p)
					} else {
						_, _ = w.Write([]byte(p))
					}
					flush()
				}
				// The model goes on once Telegram shows the thinking.
				ctx, cancel := context.WithTimeout(req.ctx, 20*time.Second)
				defer cancel()
				_ = h.tg.Wait(ctx, func() bool {
					for _, m := range h.tg.Messages(userID) {
						if strings.HasPrefix(m.Text, "💭 Thinking…") && quoteOf(m) == want {
							return true
						}
					}
					return false
				})
				streamText("Hello, ", "**world**!")(w, flush, req)
			}
			extra := []string{"AURA_PROTOCOL=" + tt.protocol}
			if tt.protocol == "openai" {
				extra = append(extra, "AURA_MODEL=qwen3")
			}
			h.start(extra...)
			m := h.replyTo(h.send("hi"))
			if !strings.HasPrefix(m.Text, "💭 Thought for ") || quoteOf(m) != want || !strings.HasSuffix(m.Text, "\n\nHello, world!") {
				t.Errorf("final: got %q (quote %q), want the collapsed thinking and the answer", m.Text, quoteOf(m))
			}
			h.replyTo(h.send("again"))
			reqs := h.aura.requests()
			next := reqs[len(reqs)-1].Messages
			if len(next) != 3 || next[1].Content != "Hello, **world**!" {
				t.Errorf("next request: got %+v, want the answer alone as the assistant's turn", next)
			}
			h.stop()
			store, err := history.Open(context.Background(), h.db)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ts, err := store.Turns(context.Background(), history.Key{ChatID: userID})
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 4 || ts[1].Content != "Hello, **world**!" || ts[1].Status != history.StatusDone {
				t.Errorf("stored: got %+v, want the answer alone", ts)
			}
		})
	}
}
