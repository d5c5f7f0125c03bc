package browser

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkServer is a chatbot-ui server behind a browser check, as such sites
// run: its page sets a cookie from a script after a delay, the cookie is
// bound to the User-Agent that loaded the page, and /api/chat answers only
// a request with that cookie and that User-Agent (403 with an HTML page
// otherwise).
type checkServer struct {
	*httptest.Server
	key      []byte
	pages    atomic.Int32 // page loads
	refusals atomic.Int32 // /api/chat requests refused
}

const checkCookie = "aura_check"

func newCheckServer(t testing.TB, delay time.Duration) *checkServer {
	s := &checkServer{key: []byte("test key " + t.Name())}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.pages.Add(1)
		token := s.token(r.UserAgent())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// A plain cookie at once, the check's cookie later, by script.
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "plain", Path: "/"})
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>
<script>setTimeout(function () { document.cookie = %q; }, %d);</script></body></html>`,
			checkCookie+"="+token+"; path=/", delay.Milliseconds())
	})
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	mux.HandleFunc("POST /api/chat", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c, err := r.Cookie(checkCookie)
		if err != nil || !hmac.Equal([]byte(c.Value), []byte(s.token(r.UserAgent()))) {
			s.refusals.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Checking your browser...</body></html>")
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "Hello from behind the check.")
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// token is the check cookie's value for a User-Agent.
func (s *checkServer) token(ua string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(ua))
	return hex.EncodeToString(m.Sum(nil))
}

// needBrowser returns the browser binary, or skips the test when there is
// none.
func needBrowser(t *testing.T) string {
	t.Helper()
	bin, err := Find(Auto)
	if err != nil {
		t.Skipf("SKIP: no Chromium-family browser installed, so the real capture is not tested (%v); .ci/run installs Debian's chromium", err)
	}
	return bin
}

// The processes a test starts are found by their TMPDIR: Chromium inherits
// nothing of the bot's environment, but every capture gives it a TMPDIR of
// its own inside the bot's temporary folder, and its children inherit that.
// A test gives itself a unique temporary folder (its mark), so a scan of
// /proc finds its browser's processes even after they were reparented.

// watchLeaks gives the test a unique temporary folder, and checks at the
// end of the test that no process of its browser is left and that the
// folder is empty (no profile left). It returns the mark for marked.
func watchLeaks(t testing.TB) string {
	t.Helper()
	// Not t.TempDir(): its long name would make Chromium's socket path too
	// long.
	tmp, err := os.MkdirTemp("", "abt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() { checkNoLeaks(t, tmp, tmp) })
	return tmp
}

// checkNoLeaks fails the test if a process with the mark is alive or tmp
// holds anything.
func checkNoLeaks(t testing.TB, mark, tmp string) {
	t.Helper()
	if pids := marked(mark); len(pids) > 0 {
		t.Errorf("got browser processes %v left behind, want none", pids)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatalf("read the temporary folder: %v", err)
	}
	for _, e := range entries {
		t.Errorf("got %s left in the temporary folder, want no profile left", filepath.Join(tmp, e.Name()))
	}
}

// marked returns the live processes (not zombies) whose TMPDIR is inside
// the folder mark, other than this one and except.
func marked(mark string, except ...int) []int {
	want := []byte("TMPDIR=" + mark + "/")
	dirs, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() || slices.Contains(except, pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if processState(pid) == "Z" {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// processState returns the state letter of /proc/PID/status ("R", "S",
// "Z", ...), or "" if the process is gone.
func processState(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "State:"); ok {
			return strings.Fields(v)[0]
		}
	}
	return ""
}

// TestLeakCheckSeesMarkedProcesses makes sure the leak check would see a
// process left behind.
func TestLeakCheckSeesMarkedProcesses(t *testing.T) {
	mark := t.TempDir()
	cmd := exec.Command("sleep", "60")
	cmd.Env = []string{"TMPDIR=" + mark + "/aurabot-1"}
	if err := cmd.Start(); err != nil {
		t.Skipf("SKIP: cannot start sleep: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Polled: right after the start, /proc may not show the new program's
	// environment yet.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(marked(mark), cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("got marked processes %v, want %d among them", marked(mark), cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
