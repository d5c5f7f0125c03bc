// Package sqldb is what the conversation store and its inbox share about writing to SQLite:
// how a write transaction runs, and how a full or failing disk is told from other errors.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrFull and ErrFailing are history.ErrStorageFull and history.ErrStorageFailing.
var (
	ErrFull    = errors.New("history: cannot write: the storage is full")
	ErrFailing = errors.New("history: cannot write: the disk is failing")
)

// Classify wraps err with ErrFull or ErrFailing when SQLite reports the storage full
// (SQLITE_FULL) or failing (SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_NOTADB). A write cut short by
// its context (a stop, a shutdown) is neither: it is left as it is.
func Classify(err error) error {
	var se interface{ Code() int } // *sqlite.Error
	if err == nil || errors.Is(err, ErrFull) || errors.Is(err, ErrFailing) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", ErrFull, err)
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrFailing, err)
	}
	return err
}

// Fail is the error of a failed write: "what: err", classified; nil when err is.
func Fail(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, Classify(err))
}

// Write runs fn in a transaction on db and commits it; its error is Fail(what, ...).
func Write(ctx context.Context, db *sqlx.DB, what string, fn func(*sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return Fail(what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return Fail(what, err)
	}
	return Fail(what, tx.Commit())
}

// Exec runs one write statement on db; its error is Fail(what, ...).
func Exec(ctx context.Context, db sqlx.ExecerContext, what, query string, args ...any) (sql.Result, error) {
	res, err := db.ExecContext(ctx, query, args...)
	return res, Fail(what, err)
}
