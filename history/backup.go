package history

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path while the store, and any other
// process on the same file, goes on using it. It uses VACUUM INTO on a read connection: the copy
// is one snapshot (the WAL's committed content included), compacted, and writers are not held
// up, as WAL lets them commit while a reader holds its snapshot.
//
// Backup refuses to overwrite: path must not exist. The copy is created 0600, like the
// database, and synced to disk before Backup returns.
func (s *Store) Backup(ctx context.Context, path string) error {
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
	if err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(abs)
		return fmt.Errorf("history: backup: %w", err)
	}
	if err := s.vacuumInto(ctx, abs); err != nil {
		os.Remove(abs)
		return fmt.Errorf("history: backup to %s: %w", abs, err)
	}
	if err := syncToDisk(abs); err != nil {
		return fmt.Errorf("history: backup to %s: %w", abs, err)
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

// syncToDisk flushes a file and its folder entry to disk.
func syncToDisk(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// BackupFile copies the database at dbPath to path (see Store.Backup), for the binary's -backup
// flag. A missing dbPath is an error: Open would create an empty database, and a backup of
// nothing is a mistake in the path.
func BackupFile(ctx context.Context, dbPath, path string) error {
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("history: backup: %w", err)
	}
	s, err := Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Backup(ctx, path)
}
