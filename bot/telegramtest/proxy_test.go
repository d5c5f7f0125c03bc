package telegramtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/telegramtest"
)

// proxied is a fake Server behind a Proxy.
func proxied(t *testing.T) (*telegramtest.Server, *telegramtest.Proxy) {
	t.Helper()
	s := newServer(t)
	p := telegramtest.NewProxy(s.URL())
	t.Cleanup(p.Close)
	return s, p
}

// rawCall is a plain HTTP call: its answer, or the error the client saw.
type rawCall struct {
	status int
	body   string
	err    error
}

func do(base, method string, params url.Values) rawCall {
	resp, err := http.PostForm(base+"/bot"+telegramtest.Token+"/"+method, params)
	if err != nil {
		return rawCall{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawCall{status: resp.StatusCode, body: string(b), err: err}
}

func hello(chat string) url.Values { return url.Values{"chat_id": {chat}, "text": {"hello"}} }

// recorder collects what OnCall sees.
type recorder struct {
	mu    sync.Mutex
	calls []telegramtest.ProxyCall
}

func (r *recorder) hook(c telegramtest.ProxyCall) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) seen() []telegramtest.ProxyCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]telegramtest.ProxyCall(nil), r.calls...)
}

// The zero Action forwards; the rule and the hook see the method, the decoded parameters and the
// ordinal of the call, and the hook sees the upstream answer come back.
func TestProxyForwardsAndReports(t *testing.T) {
	s, p := proxied(t)
	var rec recorder
	p.OnCall(rec.hook)
	var ruled []telegramtest.ProxyCall
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		ruled = append(ruled, c)
		return telegramtest.Action{}
	})
	for _, chat := range []string{"1", "2"} {
		if c := do(p.URL(), "sendMessage", hello(chat)); c.err != nil || c.status != 200 {
			t.Fatalf("sendMessage through the proxy: got %d %v, want 200", c.status, c.err)
		}
	}
	if c := do(p.URL(), "getMe", nil); c.status != 200 || !strings.Contains(c.body, telegramtest.BotUsername) {
		t.Fatalf("getMe through the proxy: got %d %s", c.status, c.body)
	}
	if n := len(s.Messages(1)) + len(s.Messages(2)); n != 2 {
		t.Errorf("messages upstream: got %d, want 2", n)
	}
	if len(ruled) != 3 || ruled[1].Method != "sendMessage" || ruled[1].N != 2 || ruled[1].Params["chat_id"] != "2" || ruled[2].N != 1 {
		t.Errorf("rule calls: got %+v, want sendMessage 1 and 2, then getMe 1", ruled)
	}
	seen := rec.seen()
	if len(seen) != 6 {
		t.Fatalf("hook calls: got %d, want 6 (arrival and answer of each call)", len(seen))
	}
	first, answered := seen[0], seen[1]
	if first.Answered || first.Method != "sendMessage" || first.N != 1 {
		t.Errorf("first hook call: got %+v, want the arrival of sendMessage 1", first)
	}
	if !answered.Answered || answered.Status != 200 || !strings.Contains(string(answered.Body), `"message_id"`) {
		t.Errorf("second hook call: got %+v, want the answer of sendMessage 1", answered)
	}
}

// Reset drops the connection without forwarding; Drop forwards and then drops it. Either way
// the client sees a connection error, not an HTTP status.
func TestProxyResetAndDrop(t *testing.T) {
	tests := []struct {
		name      string
		action    telegramtest.Action
		forwarded bool
	}{
		{"reset", telegramtest.Action{Reset: true}, false},
		{"drop", telegramtest.Action{Drop: true}, true},
		{"drop after a delayed answer", telegramtest.Action{Drop: true, DelayAnswer: time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := proxied(t)
			var rec recorder
			p.OnCall(rec.hook)
			p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
				if c.Method == "sendMessage" && c.N == 1 {
					return tt.action
				}
				return telegramtest.Action{}
			})
			c := do(p.URL(), "sendMessage", hello("5"))
			if !errors.Is(c.err, syscall.ECONNRESET) && !errors.Is(c.err, io.EOF) {
				t.Fatalf("got HTTP %d %s, error %v, want a connection reset", c.status, c.body, c.err)
			}
			if got := len(s.Messages(5)); got != map[bool]int{true: 1}[tt.forwarded] {
				t.Errorf("messages upstream: got %d, want forwarded=%v", got, tt.forwarded)
			}
			if got := len(rec.seen()); got != map[bool]int{true: 2, false: 1}[tt.forwarded] {
				t.Errorf("hook calls: got %d, want %d", got, map[bool]int{true: 2, false: 1}[tt.forwarded])
			}
			// The next call goes through.
			if c := do(p.URL(), "sendMessage", hello("5")); c.err != nil || c.status != 200 {
				t.Errorf("the next call: got %d %v, want 200", c.status, c.err)
			}
		})
	}
}

// RespondStatus answers without forwarding.
func TestProxyResponds(t *testing.T) {
	s, p := proxied(t)
	const body = `{"ok":false,"error_code":502,"description":"Bad Gateway"}`
	p.SetRule(func(telegramtest.ProxyCall) telegramtest.Action {
		return telegramtest.Action{RespondStatus: 502, RespondBody: body}
	})
	c := do(p.URL(), "sendMessage", hello("6"))
	if c.err != nil || c.status != 502 || c.body != body {
		t.Errorf("got %d %q %v, want 502 %q", c.status, c.body, c.err, body)
	}
	if n := len(s.Calls("")); n != 0 {
		t.Errorf("calls upstream: got %d, want none", n)
	}
}

// DelayForward delays the call on its way to upstream; DelayAnswer delays the answer on its
// way back. (Lower bounds only: a delay can never make a call faster.)
func TestProxyDelays(t *testing.T) {
	const d = 50 * time.Millisecond
	tests := []struct {
		name   string
		action telegramtest.Action
		before bool // the delay comes before upstream sees the call
	}{
		{"before forwarding", telegramtest.Action{DelayForward: d}, true},
		{"before answering", telegramtest.Action{DelayAnswer: d}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := proxied(t)
			p.SetRule(func(telegramtest.ProxyCall) telegramtest.Action { return tt.action })
			start := time.Now()
			c := do(p.URL(), "sendMessage", hello("7"))
			end := time.Now()
			if c.err != nil || c.status != 200 {
				t.Fatalf("got %d %v, want 200", c.status, c.err)
			}
			at := s.Calls("sendMessage")[0].At
			if tt.before && at.Sub(start) < d {
				t.Errorf("upstream saw the call %v after it was made, want at least %v", at.Sub(start), d)
			}
			if !tt.before && end.Sub(at) < d {
				t.Errorf("the answer came %v after upstream saw the call, want at least %v", end.Sub(at), d)
			}
		})
	}
}

// HoldForward keeps a call from upstream until its gate opens; HoldAnswer lets it reach
// upstream and keeps the answer until the gate opens.
func TestProxyHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("before forwarding", func(t *testing.T) {
		s, p := proxied(t)
		gate := telegramtest.NewGate()
		ruled := make(chan struct{})
		p.SetRule(func(telegramtest.ProxyCall) telegramtest.Action {
			close(ruled)
			return telegramtest.Action{HoldForward: gate.C()}
		})
		done := make(chan rawCall, 1)
		go func() { done <- do(p.URL(), "sendMessage", hello("8")) }()
		<-ruled
		if n := len(s.Calls("")); n != 0 {
			t.Fatalf("calls upstream while held: got %d, want none", n)
		}
		gate.Release()
		gate.Release() // releasing twice is fine
		if c := <-done; c.err != nil || c.status != 200 {
			t.Fatalf("after the release: got %d %v, want 200", c.status, c.err)
		}
		if n := len(s.Messages(8)); n != 1 {
			t.Errorf("messages upstream: got %d, want 1", n)
		}
	})

	t.Run("before answering", func(t *testing.T) {
		s, p := proxied(t)
		gate := telegramtest.NewGate()
		p.SetRule(func(telegramtest.ProxyCall) telegramtest.Action {
			return telegramtest.Action{HoldAnswer: gate.C()}
		})
		done := make(chan rawCall, 1)
		go func() { done <- do(p.URL(), "sendMessage", hello("9")) }()
		if err := s.Wait(ctx, func() bool { return len(s.Messages(9)) == 1 }); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-done:
			t.Fatalf("the client got %d %v while the answer was held", c.status, c.err)
		default:
		}
		gate.Release()
		if c := <-done; c.err != nil || c.status != 200 {
			t.Fatalf("after the release: got %d %v, want 200", c.status, c.err)
		}
	})

	t.Run("close ends a hold", func(t *testing.T) {
		s := newServer(t)
		p := telegramtest.NewProxy(s.URL())
		ruled := make(chan struct{})
		p.SetRule(func(telegramtest.ProxyCall) telegramtest.Action {
			close(ruled)
			return telegramtest.Action{HoldForward: make(chan struct{})} // never released
		})
		done := make(chan rawCall, 1)
		go func() { done <- do(p.URL(), "sendMessage", hello("10")) }()
		<-ruled
		p.Close()
		if c := <-done; c.err == nil {
			t.Errorf("a held call after Close: got %d, want a connection error", c.status)
		}
		if n := len(s.Calls("")); n != 0 {
			t.Errorf("calls upstream: got %d, want none", n)
		}
	})
}

// ReplaceUpdate puts a raw update in place of a pushed one, for updates go-telegram/bot cannot
// decode; the other updates and the update ids stay as they were.
func TestProxyReplacesAnUpdate(t *testing.T) {
	s, p := proxied(t)
	chat := models.Chat{ID: 12, Type: models.ChatTypePrivate}
	first := s.Push(models.Update{Message: &models.Message{ID: s.NewMessageID(12), Chat: chat, Text: "one"}})
	bad := s.Push(models.Update{Message: &models.Message{ID: s.NewMessageID(12), Chat: chat, Text: "two"}})
	const raw = `{"message":{"message_id":2,"date":1,"chat":{"id":12,"type":"private"},"text":"fwd","forward_origin":{"type":"hidden_user","sender_user_name":"x","date":"yesterday"}}}`
	p.SetRule(func(c telegramtest.ProxyCall) telegramtest.Action {
		if c.Method == "getUpdates" {
			return telegramtest.Action{Rewrite: telegramtest.ReplaceUpdate(bad, raw)}
		}
		return telegramtest.Action{}
	})
	c := do(p.URL(), "getUpdates", url.Values{"offset": {"0"}, "timeout": {"0"}})
	if c.err != nil || c.status != 200 {
		t.Fatalf("getUpdates: got %d %v", c.status, c.err)
	}
	var ans struct {
		OK     bool              `json:"ok"`
		Result []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(c.body), &ans); err != nil || !ans.OK || len(ans.Result) != 2 {
		t.Fatalf("getUpdates answer %s: %v, want ok with two updates", c.body, err)
	}
	var one models.Update
	if err := json.Unmarshal(ans.Result[0], &one); err != nil || one.ID != first || one.Message.Text != "one" {
		t.Errorf("first update: got %+v %v, want update %d unchanged", one, err, first)
	}
	var two struct {
		ID      int64 `json:"update_id"`
		Message struct {
			Origin struct {
				Type string `json:"type"`
			} `json:"forward_origin"`
		} `json:"message"`
	}
	if err := json.Unmarshal(ans.Result[1], &two); err != nil || two.ID != bad || two.Message.Origin.Type != "hidden_user" {
		t.Errorf("second update: got %s, want the raw update numbered %d", ans.Result[1], bad)
	}
	var u models.Update
	if err := json.Unmarshal(ans.Result[1], &u); err == nil {
		t.Errorf("go-telegram/bot's models decode the replaced update; want them to fail on it")
	}
}
