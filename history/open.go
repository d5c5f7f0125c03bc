package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"aurabot/migrations"
)

var sqliteHeader = []byte("SQLite format 3\x00")

// busyTimeoutMS bounds how long a connection waits for a lock held by another process (within
// this process, writers queue on the single writer connection instead; see Store).
const busyTimeoutMS = "10000"

// options are the knobs tests need that callers do not. readOnly opens the file with mode=ro,
// as SQLite does when it cannot write the file: tests run as root, which can write any file.
type options struct{ readOnly bool }

// Open opens the store in the SQLite file at path, creating the folder (0700) and the file (0600)
// if missing, and applies pending migrations. It fails, naming the path and changing nothing, if
// the file is not a SQLite database or cannot be written.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, options{})
}

func open(ctx context.Context, path string, opt options) (*Store, error) {
	if path == "" {
		return nil, errors.New("history: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("history: open %s: %w", abs, err)
	}
	// Two processes opening the same new file at once can meet SQLITE_BUSY without the busy
	// handler being asked (SQLite does not wait while it switches a file to WAL). Connecting and
	// migrating are safe to repeat, so a busy open is tried again for a while.
	s, err := backoff.Retry(ctx, func() (*Store, error) {
		s, err := connect(ctx, abs, opt)
		if err == nil {
			if err = migrate(ctx, s.w, migrations.FS); err != nil {
				s.Close()
			}
		}
		var se *sqlite.Error
		if err != nil && !(errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY) {
			return nil, backoff.Permanent(err)
		}
		return s, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 10 * time.Millisecond, Multiplier: 2, MaxInterval: 500 * time.Millisecond}),
		backoff.WithMaxElapsedTime(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", abs, explain(err))
	}
	s.countInBackground()
	return s, nil
}

// prepareFile creates the folder and the file with private permissions, and refuses a file that
// is not a database or cannot be written, before SQLite would create it 0644 (its -wal and -shm
// too) or silently open it read-only.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create folder: %w", err)
	}
	// O_RDWR without O_TRUNC: fails on a read-only file or file system for anyone but root,
	// and never changes an existing file.
	f, err := openFile(path, os.O_RDWR|os.O_CREATE)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("file is not writable: %w", err)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return checkHeader(f, true)
}

// checkHeader refuses a file that is not a SQLite database; emptyOK lets an empty one through.
func checkHeader(f *os.File, emptyOK bool) error {
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && emptyOK && errors.Is(err, io.EOF):
		return nil
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("read header: %w", err)
	case !bytes.Equal(head[:n], sqliteHeader):
		return errors.New("not a SQLite database (left unchanged)")
	}
	return nil
}

// openFile opens the regular file at path (see openRegular) after a look that names what open(2)
// would refuse less clearly (a socket). Its errors leave the path to the caller.
func openFile(path string, flag int) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil {
		if err := notRegular(fi); err != nil {
			return nil, err
		}
	}
	f, err := openRegular(path, flag)
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	return f, err
}

// openRegular opens path (creating it 0600 if flag says so) and refuses anything but a regular
// file: opening a named pipe would block until someone writes to it, which left the bot deaf to
// SIGTERM. O_NONBLOCK closes the gap in which one could take the file's place after a look.
func openRegular(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = notRegular(fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func notRegular(fi fs.FileInfo) error {
	m := fi.Mode()
	what := "a " + m.Type().String() + " file"
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		what = "a folder"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("is %s, not a regular file", what)
}

// connect opens the writer and reader pools and checks the file can be written.
// synchronous=FULL makes a commit survive power loss (NORMAL may lose the last ones): losing what
// a user said is the worst failure this store can have. secure_delete makes /reset really remove
// the content. mmap_size halves the time Request takes to gather turns over a large file.
func connect(ctx context.Context, path string, opt options) (*Store, error) {
	pool := func(n int, q url.Values, pragmas ...string) (*sqlx.DB, error) {
		q["_pragma"] = append([]string{"busy_timeout(" + busyTimeoutMS + ")", "foreign_keys(1)",
			"journal_mode(WAL)", "mmap_size(1073741824)"}, pragmas...)
		if opt.readOnly {
			q.Set("mode", "ro")
		}
		db, err := sqlx.Open("sqlite", dsn(path, q))
		if err == nil {
			db.SetMaxOpenConns(n)
			db.SetMaxIdleConns(n) // and never closed for being idle or old (the default)
		}
		return db, err
	}
	w, err := pool(1, url.Values{"_txlock": {"immediate"}}, "synchronous(FULL)", "secure_delete(1)")
	if err != nil {
		return nil, err
	}
	// The writer connects first: its journal_mode pragma switches a new file to WAL before any
	// reader looks at it.
	if err := checkWritable(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	// query_only: a write by mistake through a reader fails loudly instead of competing with
	// the writer for the lock.
	r, err := pool(max(4, runtime.GOMAXPROCS(0)), url.Values{}, "query_only(1)")
	if err == nil {
		if err = r.PingContext(ctx); err != nil {
			r.Close()
		}
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	return &Store{w: w, r: r}, nil
}

// checkWritable connects w and makes sure SQLite can write the file, which it does not say.
func checkWritable(ctx context.Context, w *sqlx.DB) error {
	conn, err := w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		ro, ok := dc.(interface{ IsReadOnly(string) (bool, error) })
		if !ok {
			return fmt.Errorf("driver %T cannot report read-only", dc)
		}
		readOnly, err := ro.IsReadOnly("main")
		if err == nil && readOnly {
			err = errReadOnly
		}
		return err
	})
	if err != nil {
		return err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

var errReadOnly = errors.New("database is read-only")

// explain turns the SQLite errors a bad file produces at open into words.
func explain(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	if se.Code() == sqlite3.SQLITE_READONLY_DIRECTORY {
		return fmt.Errorf("%w: the folder is not writable, and SQLite keeps its -wal and -shm files there: %w", errReadOnly, err)
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w: %w", errReadOnly, err)
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("not a SQLite database (left unchanged): %w", err)
	case sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("cannot open the database file: %w", err)
	}
	return err
}

// dsn builds a file: URI, escaping the path so that a '?', '#' or '%' in it stays in the path.
func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}
