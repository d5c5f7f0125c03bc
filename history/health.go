package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// ErrStorageFull is wrapped by the errors of writes that failed because the
// storage is full (SQLite's SQLITE_FULL), so the caller can tell the user
// "cannot save right now" rather than report a bug. Nothing was stored by
// such a write; once there is room again, writes succeed and nothing stored
// before is lost.
var ErrStorageFull = errors.New("history: cannot write: the storage is full")

// ErrStorageFailing is wrapped by the errors of writes that failed because the
// disk reported an I/O error or the file is damaged (SQLITE_IOERR,
// SQLITE_CORRUPT, SQLITE_NOTADB). Unlike a full disk, waiting may not help:
// the operator must look at the disk.
var ErrStorageFailing = errors.New("history: cannot write: the disk is failing")

// writeFailed wraps err with ErrStorageFull or ErrStorageFailing when SQLite
// reports the storage full or failing. A write cut short by its context
// (a stop, a shutdown) is neither: it is left as it is.
func writeFailed(err error) error {
	var se interface{ Code() int } // *sqlite.Error
	if err == nil || errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageFailing) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", ErrStorageFull, err)
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrStorageFailing, err)
	}
	return err
}

// StorageTrouble reports whether err is a write that failed on the storage
// itself (full or failing), as opposed to a bug or a cancelled context.
func StorageTrouble(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageFailing)
}

// checkBytes is the payload CheckWrite writes: more than a page (4096
// bytes), so the write needs room to grow, as a long turn would.
const checkBytes = 8192

// CheckWrite really writes to the database, for a health check: it stores
// a row of checkBytes bytes, commits (with the fsync of every commit), and
// deletes it again. A Ping only proves the file can be reached; this proves
// a turn could be stored now. Errors of a full or failing disk wrap
// ErrStorageFull.
func (s *Store) CheckWrite(ctx context.Context) error {
	now := time.Now().UnixMilli()
	var id int64
	err := s.w.GetContext(ctx, &id, `INSERT INTO write_checks (payload, checked_at) VALUES (zeroblob(?), ?) RETURNING id`,
		checkBytes, now)
	if err != nil {
		return fmt.Errorf("history: check write: %w", writeFailed(err))
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM write_checks WHERE id <= ?`, id); err != nil {
		return fmt.Errorf("history: check write: %w", writeFailed(err))
	}
	return nil
}

// maxPageCount sets the most pages the database file may grow to, on the
// writer connection (the setting is per connection), and returns what
// SQLite set: never less than the pages in use. Tests use it to fill the
// database like a full disk, and to free it again.
func (s *Store) maxPageCount(ctx context.Context, n int64) (int64, error) {
	return s.LimitPages(ctx, n)
}

// LimitPages caps the pages the database file may grow to (n <= the pages in use: full now) and
// returns the cap SQLite set. It is for fault tests of the callers (a full disk, and the space
// coming back); a bot never calls it.
func (s *Store) LimitPages(ctx context.Context, n int64) (int64, error) {
	var got int64
	err := s.w.GetContext(ctx, &got, fmt.Sprintf("PRAGMA max_page_count = %d", n))
	return got, err
}
