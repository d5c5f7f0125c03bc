package browser

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"aurabot/aura"
)

// testConfig is a capture of the page at rawURL, with a short settle time.
func testConfig(t *testing.T, rawURL string, timeout time.Duration) captureConfig {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return captureConfig{
		browser:    Auto,
		url:        rawURL,
		host:       u.Hostname(),
		timeout:    timeout,
		settle:     time.Second,
		poll:       100 * time.Millisecond,
		closeGrace: 5 * time.Second,
		log:        slog.New(slog.DiscardHandler),
		sandbox:    newSandboxCheck(),
	}
}

func TestCaptureAndReplyThroughTheCheck(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv := newCheckServer(t, 500*time.Millisecond)

	creds, err := New(Options{Browser: Auto, URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	// Before: the bare client is refused.
	bare, err := aura.New(aura.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	for _, err := range bare.Chat(t.Context(), "", []aura.Message{{Role: aura.RoleUser, Content: "hi"}}) {
		var se *aura.StatusError
		if err != nil && (!errors.As(err, &se) || se.StatusCode != http.StatusForbidden) {
			t.Fatalf("bare client: got %v, want a 403", err)
		}
	}

	c, err := aura.New(aura.Config{BaseURL: srv.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var reply strings.Builder
	for ch, err := range c.Chat(t.Context(), "", []aura.Message{{Role: aura.RoleUser, Content: "hi"}}) {
		if err != nil {
			t.Fatalf("got error %v, want the reply", err)
		}
		reply.WriteString(ch.Text)
	}
	if got, want := reply.String(), "Hello from behind the check."; got != want {
		t.Errorf("got reply %q, want %q", got, want)
	}
	if got := srv.pages.Load(); got != 1 {
		t.Errorf("got %d page loads, want 1", got)
	}

	cookie, ua, err := creds.Credentials(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cookie, checkCookie+"=") || !strings.Contains(cookie, "session=plain") {
		t.Errorf("got cookies %q, want %s and session", cookie, checkCookie)
	}
	if strings.Contains(ua, "Headless") || !strings.Contains(ua, "Chrome/") {
		t.Errorf("got User-Agent %q, want a desktop Chrome one", ua)
	}
}

func TestCaptureWaitsForTheCookiesToSettle(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	// The cookie comes well after the load event, but within the settle
	// time of the previous change.
	srv := newCheckServer(t, 700*time.Millisecond)
	goroutines := runtime.NumGoroutine()
	res, err := capture(t.Context(), testConfig(t, srv.URL, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing of the browser stays in the bot: its goroutines end with it.
	srv.CloseClientConnections()
	waitUntil(t, func() bool { return runtime.NumGoroutine() <= goroutines })
	if !res.settled || res.cookies != 2 || !strings.Contains(res.cookie, checkCookie+"=") {
		t.Errorf("got %d cookies (settled %v), want the check's cookie and session, settled", res.cookies, res.settled)
	}
}

func TestCaptureTakesChangingCookiesAtTheTimeout(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!DOCTYPE html><html><body><script>
var n = 0; setInterval(function () { document.cookie = "tick=" + (n++) + "; path=/"; }, 50);
</script></body></html>`))
	}))
	defer srv.Close()
	res, err := capture(t.Context(), testConfig(t, srv.URL, 10*time.Second)) // room for a slow start on a loaded machine
	if err != nil {
		t.Fatalf("got error %v, want the last cookies", err)
	}
	if res.settled || !strings.HasPrefix(res.cookie, "tick=") {
		t.Errorf("got cookie %q (settled %v), want a tick cookie, not settled", res.cookie, res.settled)
	}
}

// hangingServer accepts the page request and never answers it. The
// channel is closed at the first request: the browser is up and loading.
func hangingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	requested := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(requested) })
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, requested
}

func TestCaptureTimeoutLeavesNothing(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv, _ := hangingServer(t)
	_, err := capture(t.Context(), testConfig(t, srv.URL, 3*time.Second))
	if err == nil || !strings.Contains(err.Error(), "did not load within 3s") {
		t.Fatalf("got error %v, want one saying the page did not load in time", err)
	}
}

func TestCaptureCancelledMidwayLeavesNothing(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv, requested := hangingServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := capture(ctx, testConfig(t, srv.URL, time.Minute))
		done <- err
	}()
	waitFor(t, requested, "the browser to request the page")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gave up waiting for the cancelled capture to return")
	}
}

func TestCaptureCrashedBrowser(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	cfg := testConfig(t, "http://127.0.0.1:1", 10*time.Second)
	cfg.browser = "false" // exits at once, like a browser that crashes on start
	_, err := capture(t.Context(), cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "browser: start false") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got error %q, want one line about the start", err)
	}
}

func TestCaptureWithoutBrowser(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := capture(t.Context(), testConfig(t, "http://127.0.0.1:1", time.Second))
	if !errors.Is(err, ErrNoBrowser) {
		t.Fatalf("got error %v, want ErrNoBrowser", err)
	}
}

// sigtermURLEnv tells the test binary, run again as a child, to be a bot
// that captures from this URL until SIGTERM.
const sigtermURLEnv = "AURABOT_BROWSER_SIGTERM_URL"

func TestSIGTERMDuringCaptureLeavesNothing(t *testing.T) {
	if pageURL := os.Getenv(sigtermURLEnv); pageURL != "" {
		// The child: main's shutdown in miniature.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		c, err := New(Options{Browser: Auto, URL: pageURL})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Credentials(ctx, false)
		c.Close()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("child: got %v, want context.Canceled", err)
		}
		return
	}
	needBrowser(t)
	mark := watchLeaks(t)
	srv, requested := hangingServer(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGTERMDuringCaptureLeavesNothing$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), sigtermURLEnv+"="+srv.URL)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor(t, requested, "the browser to request the page")
	if n := len(marked(mark, cmd.Process.Pid)); n < 2 {
		t.Fatalf("got %d browser processes, want the browser and its children", n)
	}
	t.Logf("%d browser processes before SIGTERM", len(marked(mark, cmd.Process.Pid)))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("child: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("gave up waiting for the child to exit after SIGTERM\n%s", out.String())
	}
}

// waitFor waits for ch to close, failing the test if that does not happen
// within a generous bound (a guard against a hang, not a timing assertion).
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("gave up waiting for %s", what)
	}
}

func TestCaptureBrowserCrashLeavesNothing(t *testing.T) {
	needBrowser(t)
	mark := watchLeaks(t)
	srv, requested := hangingServer(t)
	done := make(chan error, 1)
	go func() {
		_, err := capture(t.Context(), testConfig(t, srv.URL, time.Minute))
		done <- err
	}()
	waitFor(t, requested, "the browser to request the page")
	// The browser's main process is the marked child of this one.
	killed := 0
	for _, pid := range marked(mark) {
		if parentOf(pid) == os.Getpid() {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d browser main processes, want 1", killed)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "browser process exited") || errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want the crash, not matching context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gave up waiting for the capture to return after the crash")
	}
}

// parentOf returns the parent process id of pid, or 0.
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}
