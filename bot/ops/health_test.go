package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
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
			h := NewHealth(okStore{}, time.Minute, 0)
			r, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/sendMessage", nil)
			h.started(r, "sendMessage")
			h.answered(r, "sendMessage", tt.resp, tt.err)
			if got := h.telegram() == ""; got != tt.healthy {
				t.Errorf("got healthy=%v (%q), want %v", got, h.telegram(), tt.healthy)
			}
		})
	}
}

// A call Telegram does not answer makes health fail within a few seconds, not when the client
// finally times out; getUpdates gets its long-poll timeout on top.
func TestHealthSeesSilence(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(okStore{}, 50*time.Second, 0)
	h.now = func() time.Time { return now }
	ok, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/getMe", nil)
	h.started(ok, "getMe")
	h.answered(ok, "getMe", &http.Response{StatusCode: 200}, nil)

	poll, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/getUpdates", nil)
	h.started(poll, "getUpdates")
	send, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/sendMessage", nil)
	h.started(send, "sendMessage")
	now = now.Add(4 * time.Second)
	if got := h.telegram(); got != "" {
		t.Fatalf("after 4s: got %q, want healthy", got)
	}
	now = now.Add(2 * time.Second)
	if got := h.telegram(); !strings.Contains(got, "sendMessage: no answer for 6s") {
		t.Fatalf("after 6s: got %q, want sendMessage named as silent", got)
	}
	h.answered(send, "sendMessage", &http.Response{StatusCode: 200}, nil)
	if got := h.telegram(); got != "" {
		t.Fatalf("a long poll of 6s: got %q, want healthy", got)
	}
	now = now.Add(50 * time.Second)
	if got := h.telegram(); !strings.Contains(got, "getUpdates: no answer") {
		t.Fatalf("a long poll of 56s: got %q, want getUpdates named as silent", got)
	}
}

func TestHealthTriesAWrite(t *testing.T) {
	h := NewHealth(okStore{err: errors.New("disk full")}, time.Minute, 0)
	if got := h.check(context.Background()); got != "database: disk full" {
		t.Fatalf("got %q, want the write's failure", got)
	}
}

// A timeout is a network error in the metrics; a call we cancelled ourselves is not counted.
func TestTransportCountsTimeouts(t *testing.T) {
	m := NewMetrics(func() float64 { return 0 })
	h := NewHealth(okStore{}, time.Minute, 0)
	c := Instrument(&http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})}, m, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://x/bot1:a/sendMessage", nil)
	_, _ = c.Do(req)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	req2, _ := http.NewRequestWithContext(ctx2, http.MethodPost, "http://x/bot1:a/editMessageText", nil)
	_, _ = c.Do(req2)
	var out strings.Builder
	m.set.WritePrometheus(&out)
	got := map[string]float64{}
	for l := range strings.Lines(out.String()) {
		if rest, ok := strings.CutPrefix(l, `aurabot_telegram_calls_total{method="`); ok {
			labels, value, _ := strings.Cut(rest, "} ")
			method, result, _ := strings.Cut(labels, `",result="`)
			got[method+"/"+strings.TrimSuffix(result, `"`)], _ = strconv.ParseFloat(strings.TrimSpace(value), 64)
		}
	}
	if got["sendMessage/network_error"] != 1 {
		t.Errorf("timeout: got %v, want sendMessage/network_error counted once", got)
	}
	if _, ok := got["editMessageText/network_error"]; ok {
		t.Errorf("cancelled call counted: %v", got)
	}
	if s := h.telegram(); !strings.Contains(s, "unreachable") {
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

// countingStore counts the real writes of the health check.
type countingStore struct {
	mu     sync.Mutex
	writes int
	err    error
}

func (s *countingStore) CheckWrite(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.err
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// However often /healthz is called, the database is written at most once every diskEvery; the
// calls in between answer what the last write found, a failure included.
func TestHealthWritesAtMostEveryFewSeconds(t *testing.T) {
	store := &countingStore{}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	h := NewHealth(store, time.Minute, 0)
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ok, _ := http.NewRequest(http.MethodPost, "http://x/bot1:a/getMe", nil)
	h.started(ok, "getMe")
	h.answered(ok, "getMe", &http.Response{StatusCode: 200}, nil)

	srv := httptest.NewServer(h.Handler(NewRedactor(slog.DiscardHandler)))
	defer srv.Close()
	get := func() int {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				if code := get(); code != http.StatusOK {
					t.Errorf("got %d, want 200", code)
				}
			}
		})
	}
	wg.Wait()
	if n := store.count(); n != 1 {
		t.Fatalf("1,000 calls within the interval: got %d writes, want 1", n)
	}
	advance(DefaultDiskEvery - time.Millisecond)
	get()
	if n := store.count(); n != 1 {
		t.Fatalf("just before the interval ends: got %d writes, want 1", n)
	}
	store.mu.Lock()
	store.err = errors.New("disk full")
	store.mu.Unlock()
	advance(time.Millisecond)
	if code := get(); code != http.StatusServiceUnavailable || store.count() != 2 {
		t.Fatalf("after the interval: got %d and %d writes, want 503 from a second write", code, store.count())
	}
	for range 10 {
		if code := get(); code != http.StatusServiceUnavailable {
			t.Fatalf("within the next interval: got %d, want the failure remembered", code)
		}
	}
	if n := store.count(); n != 2 {
		t.Errorf("got %d writes, want 2", n)
	}
}

// METRICS_TOKEN: /metrics answers only a request with the bearer token.
func TestBearer(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) })
	tests := []struct {
		token, header string
		want          int
	}{
		{"", "", http.StatusOK},
		{"s3cret-metrics-token", "", http.StatusUnauthorized},
		{"s3cret-metrics-token", "Bearer wrong", http.StatusUnauthorized},
		{"s3cret-metrics-token", "Bearer s3cret-metrics-toke", http.StatusUnauthorized},
		{"s3cret-metrics-token", "Basic s3cret-metrics-token", http.StatusUnauthorized},
		{"s3cret-metrics-token", "Bearer s3cret-metrics-token", http.StatusOK},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		Bearer(tt.token, next).ServeHTTP(rec, req)
		if rec.Code != tt.want || (tt.want == http.StatusOK) != (rec.Body.String() == "metrics") {
			t.Errorf("token %q, Authorization %q: got %d %q, want %d", tt.token, tt.header, rec.Code, rec.Body.String(), tt.want)
		}
	}
}
