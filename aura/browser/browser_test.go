package browser

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aurabot/aura"
)

var _ aura.Credentials = (*Capturer)(nil)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeCapture is a capture function that counts its runs and gives
// "n=<run>" as the cookie. While gate is not nil, a run waits for it.
type fakeCapture struct {
	runs    atomic.Int32
	started chan struct{} // receives once per run, if not nil
	gate    chan struct{}
	fail    atomic.Pointer[error]
	stopped atomic.Int32 // runs that ended by their context
}

func (f *fakeCapture) capture(ctx context.Context) (captured, error) {
	n := f.runs.Add(1)
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default: // a second run would only happen with a bug; do not hang on it
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.stopped.Add(1)
			return captured{}, ctx.Err()
		}
	}
	if err := f.fail.Load(); err != nil {
		return captured{}, *err
	}
	return captured{cookie: "n=" + strconv.Itoa(int(n)), userAgent: "UA", cookies: 1, settled: true}, nil
}

func newTestCapturer(t *testing.T, f *fakeCapture) (*Capturer, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newCapturer(f.capture, time.Hour, slog.New(slog.DiscardHandler))
	c.now = clock.now
	t.Cleanup(c.Close)
	return c, clock
}

func mustCookie(t *testing.T, c *Capturer, refresh bool, want string) {
	t.Helper()
	cookie, ua, err := c.Credentials(t.Context(), refresh)
	if err != nil || cookie != want || ua != "UA" {
		t.Fatalf("Credentials(refresh=%v): got (%q, %q, %v), want (%q, \"UA\", nil)", refresh, cookie, ua, err, want)
	}
}

func TestCapturerReusesRefreshesAndRecaptures(t *testing.T) {
	f := &fakeCapture{}
	c, clock := newTestCapturer(t, f)
	mustCookie(t, c, false, "n=1")
	mustCookie(t, c, false, "n=1") // reused
	clock.add(time.Hour)
	mustCookie(t, c, false, "n=2") // older than Refresh
	// A refresh right after a capture is served by it: replies refused
	// together ask together.
	mustCookie(t, c, true, "n=2")
	clock.add(c.minGap)
	mustCookie(t, c, true, "n=3")
	if got := f.runs.Load(); got != 3 {
		t.Errorf("got %d captures, want 3", got)
	}
}

func TestCapturerRunsOneCaptureForConcurrentCallers(t *testing.T) {
	f := &fakeCapture{started: make(chan struct{}, 1), gate: make(chan struct{})}
	c, _ := newTestCapturer(t, f)
	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			cookie, _, err := c.Credentials(t.Context(), false)
			if err == nil && cookie != "n=1" {
				err = errors.New("got cookie " + cookie + ", want n=1")
			}
			errs <- err
		})
	}
	<-f.started
	// Every caller is waiting (or about to join); then the capture ends.
	waitUntil(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inflight != nil && c.inflight.waiters == callers
	})
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := f.runs.Load(); got != 1 {
		t.Errorf("got %d captures, want 1", got)
	}
}

func TestCapturerBacksOffAfterAFailure(t *testing.T) {
	f := &fakeCapture{}
	cause := errors.New("browser: start chromium: exit status 1")
	f.fail.Store(&cause)
	c, clock := newTestCapturer(t, f)

	_, _, err := c.Credentials(t.Context(), false)
	if !errors.Is(err, cause) {
		t.Fatalf("got error %v, want the capture's", err)
	}
	// Within the backoff: the same failure at once, no new capture.
	_, _, err = c.Credentials(t.Context(), false)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "next try in 5s") {
		t.Fatalf("got error %v, want the last failure and the wait", err)
	}
	if got := f.runs.Load(); got != 1 {
		t.Fatalf("got %d captures, want 1", got)
	}
	// After it, a new try; a second failure doubles the backoff.
	clock.add(c.backoffMin)
	_, _, _ = c.Credentials(t.Context(), false)
	if got := f.runs.Load(); got != 2 {
		t.Fatalf("got %d captures, want 2", got)
	}
	clock.add(c.backoffMin)
	if _, _, err := c.Credentials(t.Context(), false); !strings.Contains(err.Error(), "next try in 5s") {
		t.Fatalf("got error %v, want a doubled backoff with 5s left", err)
	}
	clock.add(c.backoffMin)
	f.fail.Store(nil)
	mustCookie(t, c, false, "n=3")
}

func TestCapturerKeepsOldCookiesWhenAPeriodicCaptureFails(t *testing.T) {
	f := &fakeCapture{}
	c, clock := newTestCapturer(t, f)
	mustCookie(t, c, false, "n=1")
	cause := errors.New("browser: capture: the page did not load within 30s")
	f.fail.Store(&cause)
	clock.add(time.Hour)
	mustCookie(t, c, false, "n=1") // the periodic capture failed: keep these
	mustCookie(t, c, false, "n=1") // within the backoff too
	// A refresh means the server refused them: the failure it is.
	if _, _, err := c.Credentials(t.Context(), true); !errors.Is(err, cause) {
		t.Fatalf("got error %v, want the capture's failure", err)
	}
}

func TestCapturerStopsACaptureNobodyWaitsFor(t *testing.T) {
	f := &fakeCapture{started: make(chan struct{}, 1), gate: make(chan struct{})}
	c, _ := newTestCapturer(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Credentials(ctx, false)
		done <- err
	}()
	<-f.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	waitUntil(t, func() bool { return f.stopped.Load() == 1 })
	// Not a failure: the next caller starts a new capture at once.
	close(f.gate)
	mustCookie(t, c, false, "n=2")
}

func TestCapturerKeepsACaptureOthersWaitFor(t *testing.T) {
	f := &fakeCapture{started: make(chan struct{}, 1), gate: make(chan struct{})}
	c, _ := newTestCapturer(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() {
		_, _, err := c.Credentials(ctx, false)
		gone <- err
	}()
	<-f.started
	stays := make(chan string, 1)
	go func() {
		cookie, _, _ := c.Credentials(t.Context(), false)
		stays <- cookie
	}()
	waitUntil(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.inflight.waiters == 2
	})
	cancel()
	<-gone
	close(f.gate)
	if got := <-stays; got != "n=1" {
		t.Errorf("got cookie %q, want n=1 from the one capture", got)
	}
	if got := f.stopped.Load(); got != 0 {
		t.Errorf("got %d stopped captures, want 0", got)
	}
}

func TestCapturerCloseStopsTheCapture(t *testing.T) {
	f := &fakeCapture{started: make(chan struct{}, 1), gate: make(chan struct{})}
	c, _ := newTestCapturer(t, f)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Credentials(t.Context(), false)
		done <- err
	}()
	<-f.started
	c.Close() // returns only when the capture has ended
	if got := f.stopped.Load(); got != 1 {
		t.Errorf("got %d stopped captures, want 1", got)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("got error %v, want ErrClosed", err)
	}
	if _, _, err := c.Credentials(t.Context(), false); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got error %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no browser", Options{URL: "https://x"}, "no browser set"},
		{"no URL", Options{Browser: Auto}, "not an http(s) URL"},
		{"ftp URL", Options{Browser: Auto, URL: "ftp://x"}, "not an http(s) URL"},
		{"socks5 proxy with password", Options{Browser: Auto, URL: "https://x", Proxy: "socks5://u:secret-pw@proxy:1080"}, "cannot log in to a SOCKS5 proxy"},
		{"proxy scheme", Options{Browser: Auto, URL: "https://x", Proxy: "ftp://proxy:21"}, `scheme "ftp"`},
		{"negative timeout", Options{Browser: Auto, URL: "https://x", Timeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if err == nil {
				c.Close()
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("got error %q, want one containing %q and no password", err, tt.want)
			}
		})
	}
}

func TestProxyServer(t *testing.T) {
	tests := []struct {
		in, server, user, password string
	}{
		{"", "", "", ""},
		{"http://proxy:3128", "http://proxy:3128", "", ""},
		{"socks5h://127.0.0.1:1080", "socks5://127.0.0.1:1080", "", ""},
		{"HTTPS://proxy:8443/", "https://proxy:8443", "", ""},
		{"http://ann:p%40ss@proxy:3128", "http://proxy:3128", "ann", "p@ss"},
	}
	for _, tt := range tests {
		server, user, password, err := proxyServer(tt.in)
		if err != nil || server != tt.server || user != tt.user || password != tt.password {
			t.Errorf("proxyServer(%q): got (%q, %q, %q, %v), want (%q, %q, %q, nil)", tt.in, server, user, password, err, tt.server, tt.user, tt.password)
		}
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if _, err := Find(Auto); !errors.Is(err, ErrNoBrowser) {
		t.Fatalf("empty PATH: got %v, want ErrNoBrowser", err)
	}
	if _, err := Find(dir + "/nothing"); !errors.Is(err, ErrNoBrowser) {
		t.Fatalf("missing path: got %v, want ErrNoBrowser", err)
	}
	fake := dir + "/google-chrome"
	if err := writeExecutable(fake); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(Auto); err != nil || got != fake {
		t.Errorf("got (%q, %v), want (%q, nil)", got, err, fake)
	}
	if got, err := Find(fake); err != nil || got != fake {
		t.Errorf("got (%q, %v), want (%q, nil)", got, err, fake)
	}
}

// waitUntil polls cond until it holds, failing the test if that takes
// unreasonably long (a guard against a hang, not a timing assertion).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("gave up waiting for a condition")
		case <-tick.C:
		}
	}
}

func writeExecutable(path string) error {
	return os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755)
}

// Options.Captured learns each capture's cookies and User-Agent before the capture's log line
// and before any caller gets them: a log redactor that learns them there sees every line after.
func TestCapturerTellsCapturedFirst(t *testing.T) {
	f := &fakeCapture{}
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	c := newCapturer(f.capture, time.Hour, slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if strings.Contains(string(p), "captured cookies") {
			note("log")
		}
		return len(p), nil
	}), nil)))
	c.captured = func(cookie, ua string) { note("captured " + cookie + " " + ua) }
	defer c.Close()
	mustCookie(t, c, false, "n=1")
	note("caller")
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"captured n=1 UA", "log", "caller"}; !slices.Equal(order, want) {
		t.Errorf("got %q, want %q", order, want)
	}
}
