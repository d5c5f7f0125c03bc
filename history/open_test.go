package history

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jmoiron/sqlx"
)

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "bot")
	path := filepath.Join(dir, "history.sqlite")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "hi"})

	for _, tc := range []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Dir(dir), 0o700 | fs.ModeDir},
		{dir, 0o700 | fs.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600}, // SQLite gives these the database file's mode
		{path + "-shm", 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("%s: got mode %v, want %v", filepath.Base(tc.path), got, tc.want)
		}
	}
}

func TestOpenKeepsDataAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	k := Key{ChatID: 3}
	for i, content := range []string{"first", "second", "third"} {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: content})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := contents(mustTurns(t, s, k)), []string{"first", "second", "third"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	var versions []int64
	if err := s.r.SelectContext(t.Context(), &versions, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
		t.Fatal(err)
	}
	if len(versions) == 0 || versions[0] != 1 || len(slices.Compact(slices.Clone(versions))) != len(versions) {
		t.Errorf("got applied versions %v, want each once from 1", versions)
	}
}

// Characters that mean something in a URI stay part of the file name.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	path := filepath.Join(dir, "my history?.sqlite")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "hi"})
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "my history?.sqlite") {
			t.Errorf("got stray file %q in the folder", e.Name())
		}
	}
}

func TestOpenRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open(t.Context(), "data/h.sqlite")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	if _, err := os.Stat("data/h.sqlite"); err != nil {
		t.Errorf("got %v, want the file created relative to the working folder", err)
	}
}

// Each bad start fails with a message naming the path and leaves what is on
// disk as it was.
func TestOpenFailsClearly(t *testing.T) {
	t.Run("not a SQLite database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "h.sqlite")
		for _, content := range []string{
			"BOT_TOKEN=123:abc\nAURA_URL=http://localhost\n",
			"SQLite", // a truncated header
			strings.Repeat("\x00", 4096),
		} {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			wantOpenError(t, path, options{}, "not a SQLite database")
			if got, _ := os.ReadFile(path); !bytes.Equal(got, []byte(content)) {
				t.Errorf("file changed: got %q, want %q", got, content)
			}
			assertNoSidecars(t, path)
		}
	})

	t.Run("another program's database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "h.sqlite")
		db := rawDB(t, path)
		if _, err := db.ExecContext(t.Context(), `CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		wantOpenError(t, path, options{}, "not made by this program")
		db = rawDB(t, path)
		defer db.Close()
		var tables []string
		if err := db.SelectContext(t.Context(), &tables, `SELECT name FROM sqlite_schema ORDER BY name`); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(tables, []string{"users"}) {
			t.Errorf("got tables %q, want only %q", tables, "users")
		}
	})

	t.Run("folder cannot be created", func(t *testing.T) {
		// A regular file where a folder should be stops root as well.
		blocker := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(blocker, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(blocker, "bot", "h.sqlite")
		wantOpenError(t, path, options{}, "create folder")
		if got, _ := os.ReadFile(blocker); string(got) != "keep" {
			t.Errorf("blocking file changed: got %q", got)
		}
	})

	t.Run("path is a folder", func(t *testing.T) {
		path := t.TempDir()
		wantOpenError(t, path, options{}, "is a folder, not a regular file")
	})

	t.Run("read-only database", func(t *testing.T) {
		// Root may write any file, so permissions cannot make one read-only
		// for this test. SQLite, given a file it cannot write, opens it
		// read-only without a word (and root can make that happen only
		// with a read-only mount or chattr, neither of which a test should
		// need). mode=ro puts SQLite in that same state; what is tested is
		// that Open notices and refuses instead of failing at the first
		// message a user sends.
		path := filepath.Join(t.TempDir(), "h.sqlite")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "keep"})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		wantOpenError(t, path, options{readOnly: true}, "read-only")
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("database file changed")
		}
	})

	t.Run("read-only file", func(t *testing.T) {
		// Not writable for the user the bot runs as. Tests run as root, for
		// whom permissions do not apply, so the Open runs in a copy of this
		// test binary started as nobody.
		dir := t.TempDir()
		path := filepath.Join(dir, "h.sqlite")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "keep"})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		msg := openAsNobody(t, path)
		if !strings.HasPrefix(msg, "history: open "+path+": ") || !strings.Contains(msg, "not writable") {
			t.Errorf("got error %q, want it to name the path and say it is not writable", msg)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("database file changed")
		}
	})

	t.Run("read-only folder", func(t *testing.T) {
		// The file may be written but its folder may not, so SQLite cannot
		// create the -wal and -shm files next to it.
		dir := t.TempDir()
		path := filepath.Join(dir, "h.sqlite")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "keep"})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		before, _ := os.ReadFile(path)
		msg := openAsNobody(t, path)
		if !strings.HasPrefix(msg, "history: open "+path+": ") || !strings.Contains(msg, "folder is not writable") {
			t.Errorf("got error %q, want it to name the path and say the folder is not writable", msg)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("database file changed")
		}
	})

	t.Run("empty path", func(t *testing.T) {
		if _, err := Open(t.Context(), ""); err == nil {
			t.Errorf("got nil error, want one")
		}
	})
}

func wantOpenError(t *testing.T, path string, opt options, want string) {
	t.Helper()
	s, err := open(t.Context(), path, opt)
	if err == nil {
		s.Close()
		t.Fatalf("open(%s): got nil error, want one containing %q", path, want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "history: open "+path+": ") {
		t.Errorf("got error %q, want it to start with %q", msg, "history: open "+path+": ")
	}
	if !strings.Contains(msg, want) {
		t.Errorf("got error %q, want it to contain %q", msg, want)
	}
}

func assertNoSidecars(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("got %s created, want nothing", filepath.Base(path+suffix))
		}
	}
}

// openAsNobody opens path in a child process running as an unprivileged
// user and returns the error message it got. As root, the child runs as
// nobody, and the test binary and the folders down to path are made
// readable (not writable) to it first; otherwise the child simply runs as
// the current user, to whom permissions already apply.
func openAsNobody(t *testing.T, path string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestOpenHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HISTORY_HELPER_OPEN="+path)
	if os.Geteuid() == 0 {
		// Copy the binary where nobody can run it, and open the way to path.
		bin := filepath.Join(filepath.Dir(path), "history.test")
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(path); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil { // read and enter, not write
				t.Fatal(err)
			}
		}
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot start a process as another user: %v", err)
	}
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	_, msg, ok := strings.Cut(string(out), "OPEN ERROR: ")
	if !ok {
		t.Fatalf("helper process printed no error:\n%s", out)
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

// TestOpenHelperProcess is the child of openAsNobody, not a test of its own.
func TestOpenHelperProcess(t *testing.T) {
	path := os.Getenv("HISTORY_HELPER_OPEN")
	if path == "" {
		t.Skip("helper process for openAsNobody")
	}
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		fmt.Println("OPEN ERROR: <nil>")
		return
	}
	fmt.Println("OPEN ERROR: " + err.Error())
}

// The pragmas come from the DSN, so every connection of both pools has them,
// not just the first one opened.
func TestPragmasOnEveryConnection(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	check := func(t *testing.T, db *sqlx.DB, n int, want map[string]string) {
		t.Helper()
		var conns []*sql.Conn
		for range n { // hold n at once, so they are n distinct connections
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for pragma, w := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatalf("PRAGMA %s: %v", pragma, err)
				}
				if got != w {
					t.Errorf("connection %d: got %s = %s, want %s", i, pragma, got, w)
				}
			}
			c.Close()
		}
	}
	common := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": busyTimeoutMS}
	t.Run("writer", func(t *testing.T) {
		want := maps.Clone(common)
		want["synchronous"] = "2" // FULL
		want["secure_delete"] = "1"
		want["query_only"] = "0"
		check(t, s.w, 1, want)
	})
	t.Run("readers", func(t *testing.T) {
		want := maps.Clone(common)
		want["query_only"] = "1"
		check(t, s.r, 4, want)
	})
	t.Run("foreign keys enforced", func(t *testing.T) {
		_, err := s.w.ExecContext(ctx, `INSERT INTO turns (conversation_id, role, content, created_at) VALUES (12345, 'user', 'x', 0)`)
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("got error %v, want a FOREIGN KEY constraint failure", err)
		}
	})
}
