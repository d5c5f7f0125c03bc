package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	sqlite3 "modernc.org/sqlite/lib"

	"aurabot/history/internal/sqldb"
)

func TestCheckWrite(t *testing.T) {
	s := openTest(t)
	for range 3 {
		if err := s.CheckWrite(t.Context()); err != nil {
			t.Fatalf("CheckWrite: %v", err)
		}
	}
	var rows int
	if err := s.r.GetContext(t.Context(), &rows, `SELECT count(*) FROM write_checks`); err != nil || rows != 0 {
		t.Errorf("write_checks after the checks: got %d rows (%v), want 0", rows, err)
	}
}

// A full disk, simulated with max_page_count: writes fail with
// ErrStorageFull and store nothing; once there is room again they succeed,
// and every turn stored before is still there.
func TestStorageFull(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	k := Key{ChatID: 9}
	var stored []string
	appendOne := func(i int) error {
		c := fmt.Sprintf("turn %d %s", i, strings.Repeat("x", 1000))
		_, _, err := s.Append(ctx, k, Turn{Role: RoleUser, Content: c, MessageID: int64(i + 1)})
		if err == nil {
			stored = append(stored, c)
		}
		return err
	}
	for i := range 3 {
		if err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.maxPageCount(ctx, 1); err != nil { // as low as it goes: the pages in use
		t.Fatal(err)
	}
	var full error
	i := 3
	for ; i < 1000 && full == nil; i++ {
		full = appendOne(i)
	}
	if !errors.Is(full, ErrStorageFull) {
		t.Fatalf("Append on a full database: got %v, want ErrStorageFull", full)
	}
	if !strings.HasPrefix(full.Error(), "history: append: ") {
		t.Errorf("got %q, want it to start with %q", full, "history: append: ")
	}
	if err := s.CheckWrite(ctx); !errors.Is(err, ErrStorageFull) {
		t.Errorf("CheckWrite on a full database: got %v, want ErrStorageFull", err)
	}
	if err := s.SetSystemPrompt(ctx, k, strings.Repeat("p", 50000)); !errors.Is(err, ErrStorageFull) {
		t.Errorf("SetSystemPrompt on a full database: got %v, want ErrStorageFull", err)
	}
	if got := contents(mustTurns(t, s, k)); !slices.Equal(got, stored) {
		t.Fatalf("while full: got %d turns, want the %d stored", len(got), len(stored))
	}

	if _, err := s.maxPageCount(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWrite(ctx); err != nil {
		t.Errorf("CheckWrite with room again: %v", err)
	}
	for j := i; j < i+3; j++ {
		if err := appendOne(j); err != nil {
			t.Fatalf("Append with room again: %v", err)
		}
	}
	if got := contents(mustTurns(t, s, k)); !slices.Equal(got, stored) {
		t.Errorf("after freeing: got %d turns, want the %d stored", len(got), len(stored))
	}
}

func TestWriteFailedLeavesOtherErrors(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "q"})
	// A constraint failure is a bug, not a full disk.
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO turns (conversation_id, role, content, created_at) VALUES (1, 'nobody', '', 0)`)
	if err == nil {
		t.Fatal("got nil error for a bad role, want one")
	}
	if errors.Is(sqldb.Classify(err), ErrStorageFull) {
		t.Errorf("got ErrStorageFull for %v, want it left alone", err)
	}
	if sqldb.Classify(nil) != nil {
		t.Error("sqldb.Classify(nil) is not nil")
	}
}

// codedError is an error with an SQLite result code, as *sqlite.Error has.
type codedError int

func (e codedError) Error() string { return "sqlite error " + strconv.Itoa(int(e)) }
func (e codedError) Code() int     { return int(e) }

// A full disk and a failing one are told apart, and a write cut short by its context is
// neither: a /stop is never reported as storage trouble.
func TestWriteFailedClasses(t *testing.T) {
	for _, c := range []struct {
		name          string
		err           error
		full, failing bool
	}{
		{"full", codedError(sqlite3.SQLITE_FULL), true, false},
		{"I/O error", codedError(sqlite3.SQLITE_IOERR), false, true},
		{"short read", codedError(sqlite3.SQLITE_IOERR_SHORT_READ), false, true},
		{"corrupt", codedError(sqlite3.SQLITE_CORRUPT), false, true},
		{"constraint", codedError(sqlite3.SQLITE_CONSTRAINT), false, false},
		{"cancelled", fmt.Errorf("interrupted: %w", context.Canceled), false, false},
		{"cancelled while full", errors.Join(context.Canceled, codedError(sqlite3.SQLITE_FULL)), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := sqldb.Classify(c.err)
			if full := errors.Is(got, ErrStorageFull); full != c.full {
				t.Errorf("full: got %v, want %v (%v)", full, c.full, got)
			}
			if failing := errors.Is(got, ErrStorageFailing); failing != c.failing {
				t.Errorf("failing: got %v, want %v (%v)", failing, c.failing, got)
			}
			if StorageTrouble(got) != (c.full || c.failing) {
				t.Errorf("StorageTrouble: got %v", StorageTrouble(got))
			}
		})
	}
}
