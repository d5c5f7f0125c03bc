package browser

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// asUserEnv tells the test binary, run again as an unprivileged user, to be that user's side of
// TestCaptureSandboxedAsAUser.
const asUserEnv = "AURABOT_BROWSER_AS_USER"

// Not root, where user namespaces are allowed: Chromium runs in its sandbox (no --no-sandbox on
// any of its processes' command lines, nothing said in the log) and the capture works. Run as
// root, the test runs itself again as the user nobody (65534).
func TestCaptureSandboxedAsAUser(t *testing.T) {
	bin := needBrowser(t)
	if os.Getenv(asUserEnv) != "" || os.Geteuid() != 0 {
		if err := userNamespaces(bin); err != nil {
			t.Skipf("SKIP: this system lets no user create a user namespace, so Chromium cannot be sandboxed here: %v", err)
		}
		sandboxedCapture(t)
		return
	}
	dir, err := os.MkdirTemp("", "abs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "browser.test")
	if err := os.WriteFile(test, self, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, test, "-test.run=^TestCaptureSandboxedAsAUser$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, asUserEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("as the user nobody: %v\n%s", err, out)
	case bytes.Contains(out, []byte("SKIP:")):
		t.Skipf("as the user nobody: %s", out)
	}
	t.Logf("as the user nobody:\n%s", out)
}

// sandboxedCapture is the unprivileged side of TestCaptureSandboxedAsAUser.
func sandboxedCapture(t *testing.T) {
	mark := watchLeaks(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	check := newSandboxCheck()

	// While the browser runs: none of its processes was told --no-sandbox.
	srv, requested := hangingServer(t)
	cfg := testConfig(t, srv.URL, time.Minute)
	cfg.log, cfg.sandbox = log, check
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := capture(ctx, cfg)
		done <- err
	}()
	waitFor(t, requested, "the browser to request the page")
	pids := marked(mark)
	if len(pids) < 2 {
		t.Fatalf("got %d browser processes, want the browser and its children", len(pids))
	}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("--no-sandbox")) {
			t.Errorf("process %d runs with --no-sandbox: %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	cancel()
	<-done

	// And a capture through the check works in the sandbox.
	page := newCheckServer(t, 200*time.Millisecond)
	cfg = testConfig(t, page.URL, time.Minute)
	cfg.log, cfg.sandbox = log, check
	res, err := capture(t.Context(), cfg)
	if err != nil {
		t.Fatalf("sandboxed capture: %v", err)
	}
	if !strings.Contains(res.cookie, checkCookie+"=") {
		t.Errorf("got cookies %q, want the check's", res.cookie)
	}
	mu.Lock()
	defer mu.Unlock()
	if !check.ok || strings.Contains(buf.String(), "without its sandbox") {
		t.Errorf("sandbox used: %v; log %q; want it used, and nothing said", check.ok, buf.String())
	}
}
