//go:build unix

package history

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

var holderLine = regexp.MustCompile(`^pid (\d+) since (\S+)$`)

// checkHolder checks a holder line names this process and a time.
func checkHolder(t *testing.T, line string, pid int) {
	t.Helper()
	m := holderLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("got holder %q, want \"pid N since RFC3339\"", line)
	}
	if got, _ := strconv.Atoi(m[1]); got != pid {
		t.Errorf("got pid %d, want %d", got, pid)
	}
	if _, err := time.Parse(time.RFC3339, m[2]); err != nil {
		t.Errorf("got time %q: %v", m[2], err)
	}
}

type lockResult struct {
	release func() error
	err     error
}

func lockAsync(ctx context.Context, path string, waiting func(string)) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		r, err := Lock(ctx, path, waiting)
		ch <- lockResult{r, err}
	}()
	return ch
}

// A second Lock on the same path (another open file, so it conflicts even
// in one process) reports the holder once, waits, and gets the lock when
// the first is released.
func TestLockWaitsForHolder(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "bot.sqlite")
	release1, err := Lock(ctx, db, func(h string) { t.Errorf("first Lock waited for %q", h) })
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(db + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	checkHolder(t, string(b[:len(b)-1]), os.Getpid())
	if fi, err := os.Stat(db + ".lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: got %v, %v; want mode 0600", fi, err)
	}

	var calls atomic.Int32
	holders := make(chan string, 10)
	second := lockAsync(ctx, db, func(h string) { calls.Add(1); holders <- h })
	select {
	case h := <-holders:
		checkHolder(t, h, os.Getpid())
	case r := <-second:
		t.Fatalf("second Lock returned (%v) while the first holds it", r.err)
	}
	if err := release1(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := release1(); err != nil {
		t.Errorf("second release: got %v, want nil", err)
	}
	r := <-second
	if r.err != nil {
		t.Fatalf("second Lock: %v", r.err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("waiting called %d times, want once", n)
	}
	b, err = os.ReadFile(db + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	checkHolder(t, string(b[:len(b)-1]), os.Getpid())
	if err := r.release(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(db + ".lock"); len(b) != 0 {
		t.Errorf("after release: got %q in the lock file, want it empty", b)
	}
}

// Cancelling the context ends the wait with the context's error.
func TestLockCancel(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.sqlite")
	release, err := Lock(t.Context(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	waiting := make(chan string, 1)
	second := lockAsync(ctx, db, func(h string) { waiting <- h })
	select {
	case <-waiting:
	case r := <-second:
		t.Fatalf("second Lock returned (%v) while the first holds it", r.err)
	}
	cancel()
	r := <-second
	if !errors.Is(r.err, context.Canceled) || r.release != nil {
		t.Errorf("got (%v, release %v), want context.Canceled and no release", r.err, r.release != nil)
	}

	// An expired context is honoured even when the lock is free.
	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := Lock(done, filepath.Join(t.TempDir(), "free.sqlite"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context, free lock: got %v, want context.Canceled", err)
	}
}

func TestLockRefuses(t *testing.T) {
	if _, err := Lock(t.Context(), "", nil); err == nil {
		t.Error("empty path: got nil error, want one")
	}
	db := filepath.Join(t.TempDir(), "bot.sqlite")
	if err := os.Mkdir(db+".lock", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(t.Context(), db, nil); err == nil || !regexp.MustCompile(`is a folder, not a regular file`).MatchString(err.Error()) {
		t.Errorf("lock path is a folder: got %v, want a clear error", err)
	}
}

// The lock dies with the process that holds it: a holder killed with
// SIGKILL, which runs no cleanup, leaves the lock free.
func TestLockDiesWithHolder(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bot.sqlite")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestLockHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HISTORY_HELPER_LOCK="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The child holds the lock until its stdin closes: it is killed first,
	// and cannot outlive this test.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// The child prints LOCKED once it holds the lock.
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "LOCKED" {
	}
	if sc.Text() != "LOCKED" {
		t.Fatalf("child did not take the lock: %v", sc.Err())
	}

	holders := make(chan string, 1)
	second := lockAsync(t.Context(), db, func(h string) { holders <- h })
	select {
	case h := <-holders:
		checkHolder(t, h, cmd.Process.Pid)
	case r := <-second:
		t.Fatalf("Lock returned (%v) while the child holds it", r.err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil {
		t.Fatalf("Lock after the holder died: %v", r.err)
	}
	r.release()
}

// TestLockHelperProcess is the child of TestLockDiesWithHolder, not a test
// of its own: it takes the lock and holds it until it is killed (or its
// stdin closes).
func TestLockHelperProcess(t *testing.T) {
	db := os.Getenv("HISTORY_HELPER_LOCK")
	if db == "" {
		t.Skip("helper process for TestLockDiesWithHolder")
	}
	if _, err := Lock(context.Background(), db, nil); err != nil {
		fmt.Println("LOCK ERROR: " + err.Error())
		os.Exit(1)
	}
	fmt.Println("LOCKED")
	io.Copy(io.Discard, os.Stdin)
}
