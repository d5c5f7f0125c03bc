package reply

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"aurabot/bot/pace"
	"aurabot/bot/render"
	"aurabot/bot/telegramtest"
	"aurabot/bot/tg"
)

func newDeps(t *testing.T, srv *telegramtest.Server) Deps {
	t.Helper()
	client, err := tg.New(tg.Config{Token: telegramtest.Token, APIURL: srv.URL()}, time.Second, &http.Client{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return Deps{TG: client, Pacer: pace.New(time.Millisecond, time.Millisecond, 1000), Log: slog.New(slog.DiscardHandler), Registry: NewRegistry()}
}

// send posts a message as the bot would, for a display to adopt.
func send(t *testing.T, srv *telegramtest.Server, chat int64, text string) int {
	t.Helper()
	d := NewDisplay(newDeps(t, srv), Target{ChatID: chat}, nil, "")
	if err := d.Apply(context.Background(), []render.Message{{Text: text}}, true, false); err != nil {
		t.Fatal(err)
	}
	return d.FirstID()
}

// A reply resumed after a restart whose first message the user deleted goes on in new messages,
// in order: its later messages are taken down, never left behind with stale text.
func TestApplyAfterADeletedMessageOrphansNothing(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	const chat = 555
	first := send(t, srv, chat, "old part one")
	second := send(t, srv, chat, "old part two ▍")
	resp, err := http.PostForm(srv.URL()+"/bot"+telegramtest.Token+"/deleteMessage",
		url.Values{"chat_id": {strconv.Itoa(chat)}, "message_id": {strconv.Itoa(first)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	d := NewDisplay(newDeps(t, srv), Target{ChatID: chat}, nil, "")
	d.Adopt([]RecordedPart{{ID: first}, {ID: second}})
	parts := []render.Message{{Text: "new part one"}, {Text: "new part two"}}
	if err := d.Apply(context.Background(), parts, true, false); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range srv.Messages(chat) {
		texts = append(texts, m.Text)
	}
	if got, want := strings.Join(texts, " | "), "new part one | new part two"; got != want {
		t.Errorf("messages: got %q, want %q", got, want)
	}
}

// Messages a final text no longer needs are deleted; where Telegram refuses, they are blanked:
// no cursor, no button, no stale text.
func TestApplyRemovesExtraMessages(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	const chat = 556
	d := NewDisplay(newDeps(t, srv), Target{ChatID: chat}, nil, "stop:1")
	streaming := []render.Message{{Text: "one"}, {Text: "two"}, {Text: "three ▍"}}
	if err := d.Apply(context.Background(), streaming, false, false); err != nil {
		t.Fatal(err)
	}
	third := strconv.Itoa(d.sent[2].id)
	srv.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		if method == "deleteMessage" && p["message_id"] == third {
			return &telegramtest.Fault{Code: 400, Description: "Bad Request: message can't be deleted"}
		}
		return nil
	})
	if err := d.Apply(context.Background(), []render.Message{{Text: "one and two"}}, true, false); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range srv.Messages(chat) {
		if m.Markup != "" {
			t.Errorf("message %q keeps a keyboard", m.Text)
		}
		texts = append(texts, m.Text)
	}
	if got, want := strings.Join(texts, " | "), "one and two | …"; got != want {
		t.Errorf("messages: got %q, want %q", got, want)
	}
	if len(d.sent) != 1 {
		t.Errorf("the display owns %d messages, want 1", len(d.sent))
	}
}
