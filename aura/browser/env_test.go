package browser

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The browser starts with none of the bot's secrets: read from /proc while a capture runs, the
// environment and the command line of every one of its processes hold no secret and nothing
// else of the bot's environment, but do hold what Chromium needs (PATH, the proxy variables).
func TestBrowserGetsNoSecret(t *testing.T) {
	needBrowser(t)
	mark := watchLeaks(t)
	secrets := map[string]string{
		"TELEGRAM_TOKEN": "123456789:AAH-env-test-telegram-token",
		"AURA_KEY":       "env-test-aura-key-0123456789",
		"AURA_COOKIES":   "sid=env-test-aura-cookie-0123456789",
		"TRANSCRIBE_KEY": "env-test-transcribe-key-0123456789",
		"WEBHOOK_SECRET": "env-test-webhook-secret-0123456789",
		"METRICS_TOKEN":  "env-test-metrics-token-0123456789",
		// Not a secret, but nothing of the bot's environment is the browser's business.
		"AURABOT_ANYTHING_ELSE": "env-test-inherited-0123456789",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("NO_PROXY", "env-test.invalid")

	srv, requested := hangingServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := capture(ctx, testConfig(t, srv.URL, time.Minute))
		done <- err
	}()
	waitFor(t, requested, "the browser to request the page")

	pids := marked(mark)
	if len(pids) < 2 {
		t.Fatalf("got %d browser processes, want the browser and its children", len(pids))
	}
	sawPath, sawProxy := false, false
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		env, errEnv := os.ReadFile(filepath.Join(dir, "environ"))
		cmdline, errCmd := os.ReadFile(filepath.Join(dir, "cmdline"))
		if errEnv != nil || errCmd != nil {
			continue // ended meanwhile
		}
		for name, value := range secrets {
			if bytes.Contains(env, []byte(value)) || bytes.Contains(env, []byte(name+"=")) {
				t.Errorf("process %d: got %s in its environment, want none of the bot's", pid, name)
			}
			if bytes.Contains(cmdline, []byte(value)) {
				t.Errorf("process %d: got %s on its command line", pid, name)
			}
		}
		for v := range bytes.SplitSeq(env, []byte{0}) {
			sawPath = sawPath || bytes.HasPrefix(v, []byte("PATH="))
			sawProxy = sawProxy || string(v) == "NO_PROXY=env-test.invalid"
		}
	}
	if !sawPath || !sawProxy {
		t.Errorf("got PATH %v, NO_PROXY %v in the browser's environment, want both passed on", sawPath, sawProxy)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("gave up waiting for the cancelled capture to return")
	}
}

// The rule: no sandbox as root or without user namespaces, else the sandbox.
func TestDecideSandbox(t *testing.T) {
	noNS := errors.New("operation not permitted")
	tests := []struct {
		name  string
		euid  int
		probe error
		ok    bool
		why   string
	}{
		{"root", 0, nil, false, "root"},
		{"user without user namespaces", 1000, noNS, false, "user namespace"},
		{"user with user namespaces", 1000, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := decideSandbox(tt.euid, func() error { return tt.probe })
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("got %v %q, want %v and a reason naming %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

// Where the sandbox cannot be used, the log says so once, not at every capture; where it can,
// it says nothing.
func TestSandboxDecidedAndLoggedOnce(t *testing.T) {
	for _, can := range []bool{false, true} {
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return buf.Write(p)
		}), nil))
		probes := 0
		s := &sandboxCheck{euid: 1000, probe: func(string) error {
			probes++
			if can {
				return nil
			}
			return errors.New("denied")
		}}
		for range 3 {
			if got := s.allowed(t.Context(), "chromium", log); got != can {
				t.Fatalf("can %v: allowed = %v", can, got)
			}
		}
		lines := strings.Count(buf.String(), "without its sandbox")
		if want := map[bool]int{false: 1, true: 0}[can]; probes != 1 || lines != want {
			t.Errorf("can %v: got %d probes and %d log lines, want 1 probe and %d lines", can, probes, lines, want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// As root (here, in CI's container) the browser starts with --no-sandbox, and the log says why.
func TestCaptureWithoutSandboxSaysSo(t *testing.T) {
	needBrowser(t)
	if os.Geteuid() != 0 {
		t.Skip("SKIP: not root: the browser may use its sandbox here")
	}
	watchLeaks(t)
	srv := newCheckServer(t, 0)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	c, err := New(Options{Browser: Auto, URL: srv.URL, Logger: log, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, refresh := range []bool{false, true} {
		c.minGap = 0
		if _, _, err := c.Credentials(t.Context(), refresh); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(buf.String(), "without its sandbox: the bot runs as root"); n != 1 {
		t.Errorf("got %d lines about the sandbox in %q, want 1 for two captures", n, buf.String())
	}
}
