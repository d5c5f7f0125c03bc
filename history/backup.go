package history

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
)

// BackupFile writes a consistent copy of the database at dbPath to path (-backup), while a bot
// may be running on it: VACUUM INTO makes it one snapshot, and WAL lets writers go on.
//
// It only reads dbPath: read-only, never migrated (a newer binary must not upgrade the schema
// under an older bot), never created; anything but an SQLite database in a regular file is
// refused with one error that says why. path must not exist: the copy is created 0600 and synced.
func BackupFile(ctx context.Context, dbPath, path string) error {
	src, err := filepath.Abs(dbPath)
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("history: backup of %s: %w", src, err) }
	// Looked at before SQLite opens it: a named pipe would block the open.
	f, err := openFile(src, os.O_RDONLY)
	if err == nil {
		err = errors.Join(checkHeader(f, false), f.Close())
	}
	if err != nil {
		return fail(err)
	}
	db, err := sqlx.Open("sqlite", dsn(src, url.Values{"mode": {"ro"}, "_pragma": {"busy_timeout(" + busyTimeoutMS + ")"}}))
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

	dst, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	// Creating the file first claims the name atomically (O_EXCL) with private permissions;
	// VACUUM INTO accepts an empty file as its target.
	f, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("history: backup: %s already exists; refusing to overwrite it", dst)
	}
	if err == nil {
		if err = f.Close(); err != nil {
			os.Remove(dst)
		}
	}
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("history: backup to %s: %w", dst, err)
	}
	// The copy and its folder entry go to disk.
	for _, p := range []string{dst, filepath.Dir(dst)} {
		if f, err = os.Open(p); err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
		if err != nil {
			return fmt.Errorf("history: backup to %s: %w", dst, err)
		}
	}
	return nil
}
