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

// Lock makes sure one instance at a time runs on the database at dbPath. It
// takes an exclusive flock on dbPath + ".lock" (created 0600 if missing),
// and writes into it one line saying who holds it: "pid 1234 since
// 2026-11-29T09:00:00Z".
//
// If another process holds the lock, Lock calls waiting once with that
// line ("" if the holder has not written it yet) and waits until the lock
// is free or ctx ends, whichever comes first: in a rolling deploy the new
// instance starts, waits for the old one to exit, then takes over. waiting
// may be nil.
//
// The lock belongs to the open file, so the kernel drops it when the
// process dies, however it dies: a crash leaves no stale lock to clean up.
// release unlocks it (after clearing the holder line) and may be called
// more than once. The lock file itself stays: removing it would let two
// processes lock two different files of the same name.
//
// The lock is per open file, not per process: a second Lock on the same
// path waits even within one process.
func Lock(ctx context.Context, dbPath string, waiting func(holder string)) (release func() error, err error) {
	if dbPath == "" {
		return nil, errors.New("history: lock: empty path")
	}
	path, err := filepath.Abs(dbPath + ".lock")
	if err != nil {
		return nil, fmt.Errorf("history: lock %s: %w", dbPath, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("history: lock %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history: lock %s: create folder: %w", path, err)
	}
	f, err := openFile(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("history: lock %s: %w", path, err)
	}
	if err := acquire(ctx, f, waiting); err != nil {
		f.Close()
		return nil, fmt.Errorf("history: lock %s: %w", path, err)
	}
	line := fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err := writeHolder(f, line); err != nil {
		f.Close() // closing the last descriptor drops the lock
		return nil, fmt.Errorf("history: lock %s: write holder: %w", path, err)
	}
	return sync.OnceValue(func() error {
		// Clear the line while still holding the lock: once it is free,
		// the line in the file is the next holder's.
		terr := f.Truncate(0)
		uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		cerr := f.Close()
		if err := errors.Join(terr, uerr, cerr); err != nil {
			return fmt.Errorf("history: unlock %s: %w", path, err)
		}
		return nil
	}), nil
}

// lockPoll bounds the pause between two tries of a lock held by another
// process. A blocking flock cannot be interrupted when ctx ends, so Lock
// tries without blocking and waits in between.
const lockPoll = 250 * time.Millisecond

func acquire(ctx context.Context, f *os.File, waiting func(string)) error {
	fd := int(f.Fd())
	told := false
	wait := &backoff.ExponentialBackOff{InitialInterval: 5 * time.Millisecond, Multiplier: 2, MaxInterval: lockPoll}
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		if !told {
			told = true
			if waiting != nil {
				waiting(readHolder(f))
			}
		}
		t := time.NewTimer(wait.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// holderMax bounds how much of the lock file is read as the holder line.
const holderMax = 200

// readHolder returns the first line of the lock file, bounded, with
// anything unprintable replaced: it ends up in a log line.
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

func writeHolder(f *os.File, line string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(line), 0)
	return err
}
