package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

type okStore struct{ err error }

func (s okStore) CheckWrite(context.Context) error { return s.err }

func TestHealthFollowsTelegram(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	tests := []struct {
		name    string
		resp    *http.Response
		err     error
		healthy bool
	}{
		{"ok", resp(200), nil, true},
		{"flood control", resp(429), nil, true},
		{"message not modified", resp(400), nil, true},
		{"blocked by a user", resp(403), nil, true},
		{"token revoked", resp(401), nil, false},
		{"token unknown", resp(404), nil, false},
		{"another instance polls", resp(409), nil, false},
		{"telegram down", resp(502), nil, false},
		{"unreachable", nil, fmt.Errorf("dial tcp: connection refused"), false},
		{"no answer in time", nil, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(okStore{}, time.Minute)
			r, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/sendMessage", nil)
			h.started(r, "sendMessage")
			h.answered(r, "sendMessage", tt.resp, tt.err)
			if got := h.Telegram() == ""; got != tt.healthy {
				t.Errorf("got healthy=%v (%q), want %v", got, h.Telegram(), tt.healthy)
			}
		})
	}
}

// A call Telegram does not answer makes health fail within a few seconds, not when the client
// finally times out; getUpdates gets its long-poll timeout on top.
func TestHealthSeesSilence(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(okStore{}, 50*time.Second)
	h.now = func() time.Time { return now }
	ok, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/getMe", nil)
	h.started(ok, "getMe")
	h.answered(ok, "getMe", &http.Response{StatusCode: 200}, nil)

	poll, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/getUpdates", nil)
	h.started(poll, "getUpdates")
	send, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/sendMessage", nil)
	h.started(send, "sendMessage")
	now = now.Add(4 * time.Second)
	if got := h.Telegram(); got != "" {
		t.Fatalf("after 4s: got %q, want healthy", got)
	}
	now = now.Add(2 * time.Second)
	if got := h.Telegram(); !strings.Contains(got, "sendMessage: no answer for 6s") {
		t.Fatalf("after 6s: got %q, want sendMessage named as silent", got)
	}
	h.answered(send, "sendMessage", &http.Response{StatusCode: 200}, nil)
	if got := h.Telegram(); got != "" {
		t.Fatalf("a long poll of 6s: got %q, want healthy", got)
	}
	now = now.Add(50 * time.Second)
	if got := h.Telegram(); !strings.Contains(got, "getUpdates: no answer") {
		t.Fatalf("a long poll of 56s: got %q, want getUpdates named as silent", got)
	}
}

func TestHealthTriesAWrite(t *testing.T) {
	h := NewHealth(okStore{err: errors.New("disk full")}, time.Minute)
	if got := h.Check(context.Background()); got != "database: disk full" {
		t.Fatalf("got %q, want the write's failure", got)
	}
}

// A timeout is a network error in the metrics; a call we cancelled ourselves is not counted.
func TestTransportCountsTimeouts(t *testing.T) {
	m := NewMetrics(func() float64 { return 0 })
	h := NewHealth(okStore{}, time.Minute)
	c := Instrument(&http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})}, m, h, func(err error) error { return err })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://x/bot1:a/sendMessage", nil)
	_, _ = c.Do(req)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	req2, _ := http.NewRequestWithContext(ctx2, http.MethodPost, "http://x/bot1:a/editMessageText", nil)
	_, _ = c.Do(req2)
	mfs, _ := m.Gatherer().Gather()
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "aurabot_telegram_calls_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			got[mm.GetLabel()[0].GetValue()+"/"+mm.GetLabel()[1].GetValue()] = mm.GetCounter().GetValue()
		}
	}
	if got["sendMessage/network_error"] != 1 {
		t.Errorf("timeout: got %v, want sendMessage/network_error counted once", got)
	}
	if _, ok := got["editMessageText/network_error"]; ok {
		t.Errorf("cancelled call counted: %v", got)
	}
	if s := h.Telegram(); !strings.Contains(s, "unreachable") {
		t.Errorf("health after a timeout: got %q, want unreachable", s)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAPIMethod(t *testing.T) {
	for path, want := range map[string]string{"/bot123:abc/sendMessage": "sendMessage", "/x/getUpdates": "getUpdates", "/x/": "other", "/x/a.b": "other", "/file/bot123:abc/voice/file_1.oga": "file", "/api/file/bot1:a/photos/getMe": "file"} {
		if got := apiMethod(path); got != want {
			t.Errorf("apiMethod(%q): got %q, want %q", path, got, want)
		}
	}
}
