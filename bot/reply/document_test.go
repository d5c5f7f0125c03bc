package reply

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"aurabot/bot/pace"
	"aurabot/bot/render"
	"aurabot/bot/telegramtest"
	"aurabot/bot/tg"
)

// A document goes out under the chat's send gate, waiting for a reply that holds it, and its id
// joins the registry; the gate is free afterwards.
func TestSendDocumentTakesTheGate(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	const chat = 600
	deps := newDeps(t, srv)
	s := NewStreamer(deps, Config{})
	deps.Registry.Hold(chat, 99) // a reply whose send has no answer yet
	done := make(chan error, 1)
	go func() {
		_, err := s.SendDocument(context.Background(), Target{ChatID: chat}, nil, Document{Name: "a.md", Data: []byte("x")})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("sent while another reply held the gate: %v", err)
	case <-time.After(50 * time.Millisecond): // nothing to wait on: the send must not happen
	}
	if n := len(srv.Calls("sendDocument")); n != 0 {
		t.Fatalf("got %d sends while the gate was held, want none", n)
	}
	deps.Registry.Release(chat, 99)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages(chat)
	if len(msgs) != 1 || msgs[0].Document == nil || !deps.Registry.Known(chat, msgs[0].ID) {
		t.Fatalf("got %+v, want the document, known to the registry", msgs)
	}
	if h := deps.Registry.Holder(chat); h != 0 {
		t.Errorf("gate held by %d after the send, want free", h)
	}
	// A text reply goes on after it as usual.
	d := NewDisplay(deps, Target{ChatID: chat}, nil, "")
	if err := d.Apply(context.Background(), []render.Message{{Text: "after"}}, true, false); err != nil || d.FirstID() != msgs[0].ID+1 {
		t.Errorf("the next reply: got id %d, %v", d.FirstID(), err)
	}
}

// A send whose answer is lost is not made again (a second copy of a document is worse than
// none) and says so; the gate is freed. A flood limit is waited out.
func TestSendDocumentOnce(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	proxy := telegramtest.NewProxy(srv.URL())
	defer proxy.Close()
	const chat = 601
	client, err := tg.New(tg.Config{Token: telegramtest.Token, APIURL: proxy.URL()}, time.Second, &http.Client{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{TG: client, Pacer: pace.New(time.Millisecond, time.Millisecond, 1000), Log: slog.New(slog.DiscardHandler), Registry: NewRegistry()}
	s := NewStreamer(deps, Config{})
	proxy.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "sendDocument" && c.N == 1 {
			return telegramtest.Action{RespondStatus: 429, RespondBody: `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}`}
		}
		if c.Method == "sendDocument" && c.N == 2 {
			return telegramtest.Action{Drop: true}
		}
		return telegramtest.Action{}
	})
	_, err = s.SendDocument(context.Background(), Target{ChatID: chat}, nil, Document{Name: "a.md", Data: []byte("x")})
	if err == nil || !tg.Unknown(errors.Unwrap(err)) {
		t.Fatalf("a lost answer: got %v, want an unknown outcome", err)
	}
	if n := len(srv.Calls("sendDocument")); n != 1 {
		t.Errorf("Telegram got %d sends, want 1 (the flood answer was the proxy's, the lost one carried out)", n)
	}
	if h := deps.Registry.Holder(chat); h != 0 {
		t.Errorf("gate held by %d, want free", h)
	}
	msgs := srv.Messages(chat)
	if len(msgs) != 1 || !bytes.Equal(msgs[0].Document.Data, []byte("x")) {
		t.Errorf("got %d messages, want the one document", len(msgs))
	}
}
