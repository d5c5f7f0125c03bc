package history

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// schemaVersions reads the migration log of the file at path without
// changing the file (the query runs on a read-only connection).
func schemaVersions(t *testing.T, path string) []int64 {
	t.Helper()
	db, err := openReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return appliedVersions(t, db)
}

// sidecars lists the files next to path that SQLite makes (-wal, -shm, -journal).
func sidecars(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			out = append(out, filepath.Base(path+suffix))
		}
	}
	return out
}

// A newer binary backing up the database of an older bot must leave its
// schema alone: the source is only read.
func TestBackupFileLeavesOldSchemaAlone(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	src := filepath.Join(dir, "old.sqlite")
	db := rawDB(t, src)
	if err := migrate(ctx, db, onlyMigrations(t, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO conversations (id, chat_id, created_at) VALUES (1, 5, 0);
		INSERT INTO turns (conversation_id, role, content, created_at) VALUES (1, 'user', 'keep me', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "copy.sqlite")
	if err := BackupFile(ctx, src, dst); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	if got := schemaVersions(t, src); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("source schema after the backup: got versions %v, want [1 2]", got)
	}
	if after, err := os.ReadFile(src); err != nil || string(after) != string(before) {
		t.Errorf("source file changed by the backup (%v)", err)
	}
	// A reader of a WAL database takes its read lock in the -shm file, so
	// SQLite makes the -wal and -shm of a database nobody has open, empty,
	// with the database file's permissions. They are not the database.
	main, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sidecars(t, src) {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode() != main.Mode() {
			t.Errorf("%s: got %v, %v; want %v like the database", name, fi.Mode(), err, main.Mode())
		}
	}
	if got := schemaVersions(t, dst); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("copy: got versions %v, want [1 2]", got)
	}
	// The copy is a database of that release, which this one can open and upgrade.
	s, err := Open(ctx, dst)
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer s.Close()
	if got := contents(mustTurns(t, s, Key{ChatID: 5})); !slices.Equal(got, []string{"keep me"}) {
		t.Errorf("turns in the copy: got %q, want [keep me]", got)
	}
}

// A backup of a running bot's database sees what the bot committed, WAL
// included, and switches nothing.
func TestBackupFileOfOpenStore(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	src := filepath.Join(dir, "live.sqlite")
	s, err := Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "in the WAL"})
	dst := filepath.Join(dir, "copy.sqlite")
	if err := BackupFile(ctx, src, dst); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	c, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := contents(mustTurns(t, c, Key{ChatID: 1})); !slices.Equal(got, []string{"in the WAL"}) {
		t.Errorf("got %q, want [in the WAL]", got)
	}
}

func TestBackupFileRefuses(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte("SQLite? no, a shopping list"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.sqlite")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.sqlite")
	if err := os.WriteFile(damaged, append([]byte("SQLite format 3\x00"), make([]byte, 200)...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"missing", filepath.Join(dir, "nope.sqlite"), "no such file or directory"},
		{"not a database", notDB, "not a SQLite database"},
		{"empty file", empty, "not a SQLite database"},
		{"damaged past the header", damaged, "not a SQLite database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy.sqlite")
			err := BackupFile(t.Context(), tc.src, dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.src) {
				t.Fatalf("got %v, want an error naming %s and saying %q", err, tc.src, tc.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("got a multi-line error %q, want one line", err)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("copy: got %v, want no file", err)
			}
			if got := sidecars(t, tc.src); len(got) != 0 {
				t.Errorf("got %v next to the source, want nothing created", got)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.sqlite")); !os.IsNotExist(err) {
		t.Errorf("missing source: got %v, want it still missing", err)
	}
}

func openReadOnly(path string) (*sqlx.DB, error) {
	return sqlx.Open("sqlite", dsn(path, url.Values{"mode": {"ro"}}))
}
