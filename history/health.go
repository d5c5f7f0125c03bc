package history

import (
	"context"
	"errors"
	"time"

	"aurabot/history/internal/sqldb"
)

// ErrStorageFull is wrapped by the errors of writes that failed because the storage is full
// (SQLITE_FULL), so the caller can tell the user "cannot save right now" rather than report a
// bug. Nothing was stored by such a write; once there is room again, writes succeed and
// nothing stored before is lost.
var ErrStorageFull = sqldb.ErrFull

// ErrStorageFailing is wrapped by the errors of writes that failed because the disk reported
// an I/O error or the file is damaged. Unlike a full disk, waiting may not help: the operator
// must look at the disk.
var ErrStorageFailing = sqldb.ErrFailing

// StorageTrouble reports whether err is a write that failed on the storage itself (full or
// failing), as opposed to a bug or a cancelled context.
func StorageTrouble(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageFailing)
}

// checkBytes is the payload CheckWrite writes: more than a page, so the write needs room to
// grow, as a long turn would.
const checkBytes = 8192

// CheckWrite really writes to the database, for a health check: it stores a row of checkBytes
// bytes, commits (with the fsync of every commit), and deletes it again, proving that a turn
// could be stored now.
func (s *Store) CheckWrite(ctx context.Context) error {
	var id int64
	err := s.w.GetContext(ctx, &id, `INSERT INTO write_checks (payload, checked_at) VALUES (zeroblob(?), ?) RETURNING id`,
		checkBytes, time.Now().UnixMilli())
	if err == nil {
		_, err = s.w.ExecContext(ctx, `DELETE FROM write_checks WHERE id <= ?`, id)
	}
	return sqldb.Fail("history: check write", err)
}
