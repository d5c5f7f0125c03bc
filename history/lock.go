//go:build unix

package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/cenkalti/backoff/v5"
)

// Lock makes sure one instance at a time runs on the database at dbPath: it takes an exclusive
// flock on dbPath + ".lock" (created 0600) and writes who holds it ("pid 1234 since ..."). If
// another process holds it, Lock calls waiting (if not nil) once with that line and waits until
// the lock is free or ctx ends: in a rolling deploy the new instance waits for the old one.
//
// The kernel drops the lock when the process dies: a crash leaves no stale lock. release may be
// called more than once. The file stays: removing it would let two processes lock two files of
// one name. The lock is per open file: a second Lock waits even within one process.
func Lock(ctx context.Context, dbPath string, waiting func(holder string)) (release func() error, err error) {
	if dbPath == "" {
		return nil, errors.New("history: lock: empty path")
	}
	path, err := filepath.Abs(dbPath + ".lock")
	if err != nil {
		return nil, fmt.Errorf("history: lock %s: %w", dbPath, err)
	}
	f, err := lockFile(ctx, path, waiting)
	if err != nil {
		return nil, fmt.Errorf("history: lock %s: %w", path, err)
	}
	return sync.OnceValue(func() error {
		// The line is cleared while the lock is held: once it is free, the line is the next
		// holder's.
		if err := errors.Join(f.Truncate(0), syscall.Flock(int(f.Fd()), syscall.LOCK_UN), f.Close()); err != nil {
			return fmt.Errorf("history: unlock %s: %w", path, err)
		}
		return nil
	}), nil
}

// lockPoll bounds the pause between two tries of a lock held by another process.
const lockPoll = 250 * time.Millisecond

// lockFile opens the lock file at path, takes the lock and writes the holder line. Closing the
// file, its last descriptor, drops the lock.
func lockFile(ctx context.Context, path string, waiting func(string)) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create folder: %w", err)
	}
	f, err := openFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	// A blocking flock cannot be interrupted when ctx ends: it is tried without blocking, with
	// pauses in between.
	_, err = backoff.Retry(ctx, func() (bool, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return false, backoff.Permanent(err)
		}
		return true, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, Multiplier: 2, MaxInterval: lockPoll}),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(error, time.Duration) {
			if waiting != nil {
				waiting(readHolder(f))
				waiting = nil
			}
		}))
	if err == nil {
		if err = f.Truncate(0); err == nil {
			_, err = f.WriteAt(fmt.Appendf(nil, "pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339)), 0)
		}
		if err != nil {
			err = fmt.Errorf("write holder: %w", err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// holderMax bounds how much of the lock file is read as the holder line.
const holderMax = 200

// readHolder returns the lock file's first line, bounded and printable: it goes in a log line.
func readHolder(f *os.File) string {
	b := make([]byte, holderMax)
	n, _ := f.ReadAt(b, 0)
	line, _, _ := bytes.Cut(b[:n], []byte("\n"))
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(string(bytes.TrimSpace(line)), "?"))
}
