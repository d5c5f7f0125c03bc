package history

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
)

// Backup writes a consistent copy of the database to path while the store, and any other
// process on the same file, goes on using it. It uses VACUUM INTO on a read connection: the copy
// is one snapshot (the WAL's committed content included), compacted, and writers are not held
// up, as WAL lets them commit while a reader holds its snapshot.
//
// Backup refuses to overwrite: path must not exist. The copy is created 0600, like the
// database, and synced to disk before Backup returns.
func (s *Store) Backup(ctx context.Context, path string) error {
	return backupTo(ctx, path, s.vacuumInto)
}

// backupTo claims path and fills it with vacuum; see Store.Backup.
func backupTo(ctx context.Context, path string, vacuum func(ctx context.Context, path string) error) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	// Creating the file first claims the name atomically (O_EXCL) with private permissions;
	// VACUUM INTO accepts an empty file as its target.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("history: backup: %s already exists; refusing to overwrite it", abs)
	}
	if err == nil {
		if err = f.Close(); err != nil {
			os.Remove(abs)
		}
	}
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	if err := vacuum(ctx, abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("history: backup to %s: %w", abs, err)
	}
	// Flush the copy and its folder entry to disk.
	for _, p := range []string{abs, filepath.Dir(abs)} {
		if f, err = os.Open(p); err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
		if err != nil {
			return fmt.Errorf("history: backup to %s: %w", abs, err)
		}
	}
	return nil
}

// vacuumInto runs VACUUM INTO on a reader connection. Readers are query_only, so that a write by
// mistake fails, and SQLite counts VACUUM INTO as a write though it only writes the new file:
// the pragma is lifted for this one statement on this one connection, and a connection whose
// pragma could not be put back is discarded rather than returned to the pool.
func (s *Store) vacuumInto(ctx context.Context, path string) error {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", path)
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA query_only = 1"); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// BackupFile copies the database at dbPath to path (see Store.Backup), for the binary's -backup
// flag, while a bot may be running on it. It only reads dbPath: it opens it read-only (SQLite's
// mode=ro), never migrates it (a newer binary must not upgrade the schema under an older bot
// that is running), never switches its journal mode, and never creates it. dbPath must be an
// existing SQLite database in a regular file; anything else is refused with one error that says
// why.
func BackupFile(ctx context.Context, dbPath, path string) error {
	abs, err := filepath.Abs(dbPath)
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("history: backup of %s: %w", abs, err) }
	// Looked at before SQLite opens it: a named pipe would block the open.
	f, err := openFile(abs, os.O_RDONLY)
	if err == nil {
		err = errors.Join(checkHeader(f, false), f.Close())
	}
	if err != nil {
		return fail(err)
	}
	db, err := sqlx.Open("sqlite", dsn(abs, url.Values{"mode": {"ro"}, "_pragma": {"busy_timeout(" + busyTimeoutMS + ")"}}))
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// A file with the right header can still be damaged past it: read the schema before
	// claiming the target, so that such a file is refused like one that is not a database.
	var tables int
	if err := db.GetContext(ctx, &tables, `SELECT count(*) FROM sqlite_schema`); err != nil {
		return fail(explain(err))
	}
	return backupTo(ctx, path, func(ctx context.Context, path string) error {
		_, err := db.ExecContext(ctx, "VACUUM INTO ?", path)
		return err
	})
}
