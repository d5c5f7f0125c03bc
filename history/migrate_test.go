package history

import (
	"context"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/migrations"
)

// onlyMigrations is the subset of the shipped migrations up to and including
// version upTo, as a database made by that release would have had them.
func onlyMigrations(t *testing.T, upTo int64) fstest.MapFS {
	t.Helper()
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	sub := fstest.MapFS{}
	for _, m := range ms {
		if m.version <= upTo {
			sub[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	return sub
}

// rawDB opens path as the store's writer does, without migrating.
func rawDB(t *testing.T, path string) *sqlx.DB {
	t.Helper()
	s, err := connect(t.Context(), path, options{})
	if err != nil {
		t.Fatal(err)
	}
	s.r.Close()
	return s.w
}

func appliedVersions(t *testing.T, db sqlx.QueryerContext) []int64 {
	t.Helper()
	var vs []int64
	if err := sqlx.SelectContext(t.Context(), db, &vs, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
		t.Fatal(err)
	}
	return vs
}

// A database made by the first release (migration 0001 alone), with data in
// it, opens with the current code and keeps every turn and prompt.
func TestUpgradeFromFirstMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.sqlite")
	db := rawDB(t, path)
	if err := migrate(ctx, db, onlyMigrations(t, 1)); err != nil {
		t.Fatalf("migrate to 0001: %v", err)
	}
	at := time.Date(2024, 12, 31, 23, 59, 59, 123_000_000, time.UTC).UnixMilli()
	for _, q := range []string{
		`INSERT INTO conversations (id, chat_id, thread_id, system_prompt, created_at) VALUES
			(1, 100, 0, 'Be brief.', 0), (2, 100, 5, NULL, 0), (3, -200, 0, '', 0)`,
		`INSERT INTO turns (conversation_id, role, content, message_id, created_at) VALUES
			(1, 'user', 'Привет 🙂', 11, ?),
			(1, 'assistant', 'Hello!', 12, ?),
			(1, 'user', 'twice', 13, ?),
			(1, 'user', 'twice', 13, ?),
			(2, 'user', 'in a topic', 11, ?),
			(3, 'assistant', 'orphan answer', 0, ?)`,
	} {
		if _, err := db.ExecContext(ctx, q, at, at, at, at, at, at); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open old database: %v", err)
	}
	defer s.Close()

	ms, _ := loadMigrations(migrations.FS)
	var want []int64
	for _, m := range ms {
		want = append(want, m.version)
	}
	if got := appliedVersions(t, s.r); !slices.Equal(got, want) {
		t.Errorf("got versions %v, want %v", got, want)
	}

	when := time.UnixMilli(at).UTC()
	for _, tc := range []struct {
		k    Key
		want []Turn
	}{
		{Key{ChatID: 100}, []Turn{
			{Role: RoleUser, Content: "Привет 🙂", MessageID: 11},
			{Role: RoleAssistant, Content: "Hello!", MessageID: 12},
			{Role: RoleUser, Content: "twice", MessageID: 13},
			{Role: RoleUser, Content: "twice", MessageID: 0}, // the copy keeps its text, loses the link
		}},
		{Key{ChatID: 100, ThreadID: 5}, []Turn{{Role: RoleUser, Content: "in a topic", MessageID: 11}}},
		{Key{ChatID: -200}, []Turn{{Role: RoleAssistant, Content: "orphan answer"}}},
	} {
		got := mustTurns(t, s, tc.k)
		if len(got) != len(tc.want) {
			t.Fatalf("%v: got %d turns, want %d", tc.k, len(got), len(tc.want))
		}
		for i := range got {
			w := tc.want[i]
			w.ID, w.Status, w.CreatedAt = got[i].ID, StatusDone, when
			if !reflect.DeepEqual(withoutCount(t, got[i]), w) {
				t.Errorf("%v turn %d: got %+v, want %+v", tc.k, i, got[i], w)
			}
		}
	}

	// char_count was backfilled in characters: the window sees 8 + 6 + 5 + 5.
	w, err := s.Window(ctx, Key{ChatID: 100}, Budget{Chars: 24}, "")
	if err != nil || len(w) != 4 {
		t.Errorf("Window(24): got %d turns, %v; want 4, nil", len(w), err)
	}
	w, err = s.Window(ctx, Key{ChatID: 100}, Budget{Chars: 23}, "")
	if err != nil || len(w) != 3 {
		t.Errorf("Window(23): got %d turns, %v; want 3, nil", len(w), err)
	}

	for _, tc := range []struct {
		k      Key
		prompt string
		ok     bool
	}{
		{Key{ChatID: 100}, "Be brief.", true},
		{Key{ChatID: 100, ThreadID: 5}, "", false},
		{Key{ChatID: -200}, "", true},
	} {
		p, ok, err := s.SystemPrompt(ctx, tc.k)
		if err != nil || p != tc.prompt || ok != tc.ok {
			t.Errorf("SystemPrompt(%v): got (%q, %v, %v), want (%q, %v, nil)", tc.k, p, ok, err, tc.prompt, tc.ok)
		}
	}

	// The upgraded database refuses a redelivered message like a new one.
	_, inserted, err := s.Append(ctx, Key{ChatID: 100}, Turn{Role: RoleUser, Content: "twice", MessageID: 13})
	if err != nil || inserted {
		t.Errorf("Append redelivered: got (inserted %v, %v), want (false, nil)", inserted, err)
	}
}

// The runner knows nothing of the shipped files: a later migration, such as
// the update inbox, is picked up by number and applied on top.
func TestMigrateAppliesLaterMigrations(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "h.sqlite")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "kept"})
	s.Close()

	later := onlyMigrations(t, 1<<62)
	later["0098_fake_inbox.sql"] = &fstest.MapFile{Data: []byte(`
		CREATE TABLE update_inbox (update_id INTEGER PRIMARY KEY, body TEXT NOT NULL);
		INSERT INTO update_inbox VALUES (1, 'x');`)}
	later["0099_later.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE update_inbox ADD COLUMN done INTEGER NOT NULL DEFAULT 0;`)}
	later["README.txt"] = &fstest.MapFile{Data: []byte("not a migration")}

	db := rawDB(t, path)
	defer db.Close()
	for range 2 { // the second run is a no-op
		if err := migrate(ctx, db, later); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM update_inbox WHERE done = 0`); err != nil || n != 1 {
		t.Errorf("update_inbox: got %d rows, %v; want 1, nil", n, err)
	}
	if got := appliedVersions(t, db); !slices.Contains(got, 98) || !slices.Contains(got, 99) {
		t.Errorf("got versions %v, want 98 and 99 among them", got)
	}
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM turns`); err != nil || n != 1 {
		t.Errorf("turns: got %d, %v; want 1, nil", n, err)
	}
}

// A migration that fails leaves nothing behind, not even the statements of
// it that succeeded, and is not recorded; the next start tries it again.
func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "h.sqlite")
	db := rawDB(t, path)
	defer db.Close()
	bad := onlyMigrations(t, 1<<62)
	bad["0099_broken.sql"] = &fstest.MapFile{Data: []byte(`
		CREATE TABLE half_done (x INTEGER);
		INSERT INTO no_such_table VALUES (1);`)}
	err := migrate(ctx, db, bad)
	if err == nil || !strings.Contains(err.Error(), "0099_broken.sql") {
		t.Fatalf("got error %v, want one naming 0099_broken.sql", err)
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'`); err != nil || n != 0 {
		t.Errorf("half_done: got %d tables, %v; want 0, nil", n, err)
	}
	if got := appliedVersions(t, db); slices.Contains(got, 99) {
		t.Errorf("got versions %v, want 99 not recorded", got)
	}
	// Earlier migrations in the same run stay applied.
	if got := appliedVersions(t, db); len(got) == 0 || got[0] != 1 {
		t.Errorf("got versions %v, want the good ones applied", got)
	}
}

func TestMigrateRejects(t *testing.T) {
	ok := []byte("SELECT 1;")
	for _, tc := range []struct {
		name  string
		fsys  fs.FS
		setup string
		want  string
	}{
		{"bad name", fstest.MapFS{"0001_first.sql": {Data: ok}, "2-second.sql": {Data: ok}}, "", "2-second.sql"},
		{"same number", fstest.MapFS{"0001_a.sql": {Data: ok}, "001_b.sql": {Data: ok}}, "", "same number"},
		{"zero", fstest.MapFS{"0000_a.sql": {Data: ok}}, "", "bad number"},
		{"database newer than program", fstest.MapFS{"0001_a.sql": {Data: ok}},
			`INSERT INTO schema_migrations VALUES (1, '0001_a.sql', 0), (7, '0007_future.sql', 0)`, "newer than this program"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := rawDB(t, filepath.Join(t.TempDir(), "h.sqlite"))
			defer db.Close()
			if tc.setup != "" {
				if err := migrate(t.Context(), db, fstest.MapFS{}); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(t.Context(), tc.setup); err != nil {
					t.Fatal(err)
				}
			}
			err := migrate(t.Context(), db, tc.fsys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Two processes starting on the same new file at once: each migration is
// applied once.
func TestMigrateConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for range n {
		go func() {
			s, err := Open(context.Background(), path)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	db := rawDB(t, path)
	defer db.Close()
	var dup int
	if err := db.GetContext(t.Context(), &dup, `SELECT count(*) - count(DISTINCT name) FROM schema_migrations`); err != nil || dup != 0 {
		t.Errorf("got %d duplicate migration records, %v; want 0", dup, err)
	}
}

// A database at 0004 may hold an answer stored twice. 0005 deletes a later
// copy identical to the first, unlinks one that differs, and from then on
// the schema keeps an answer once.
func TestUpgradeDeduplicatesAnswers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v4.sqlite")
	db := rawDB(t, path)
	if err := migrate(ctx, db, onlyMigrations(t, 4)); err != nil {
		t.Fatalf("migrate to 0004: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO conversations (id, chat_id, thread_id, created_at) VALUES (1, 100, 0, 0), (2, 200, 0, 0)`,
		`INSERT INTO turns (conversation_id, role, content, message_id, status, char_count, token_count, created_at) VALUES
			(1, 'user', 'q', 10, 'done', 1, 1, 0),
			(1, 'assistant', 'a', 11, 'done', 1, 1, 0),
			(1, 'assistant', 'a', 11, 'done', 1, 1, 0),
			(1, 'assistant', 'a, longer', 11, 'cut', 9, 3, 0),
			(1, 'assistant', 'a', 11, 'done', 1, 1, 0),
			(2, 'assistant', 'a', 11, 'done', 1, 1, 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	type row struct {
		content string
		msg     int64
	}
	var got []row
	for _, tt := range mustTurns(t, s, Key{ChatID: 100}) {
		got = append(got, row{tt.Content, tt.MessageID})
	}
	want := []row{{"q", 10}, {"a", 11}, {"a, longer", 0}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := len(mustTurns(t, s, Key{ChatID: 200})); n != 1 {
		t.Errorf("other conversation: got %d turns, want 1", n)
	}
	if _, inserted, err := s.Append(ctx, Key{ChatID: 100}, Turn{Role: RoleAssistant, Content: "a", MessageID: 11}); err != nil || inserted {
		t.Errorf("Append the answer again: got (inserted %v, %v), want (false, nil)", inserted, err)
	}
}

// An inbox made by 0007 moves into entries of its own: pending updates keep their journal (the
// update's floor on each part, whether a final answer was whole), and an update id that comes
// again much later is a new update.
func TestUpgradeInboxToEntries(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v7.sqlite")
	db := rawDB(t, path)
	if err := migrate(ctx, db, onlyMigrations(t, 7)); err != nil {
		t.Fatalf("migrate to 0007: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO updates (update_id, payload, received_at, shown, final, notice, floor) VALUES
			(5, '{"update_id":5}', 0, 'whole', 1, '', 20),
			(6, '{"update_id":6}', 0, 'cut', 1, '⚠️ Interrupted: the bot restarted.', 30),
			(7, '{"update_id":7}', 0, 'limit', 1, '✂️ The answer reached the model''s output limit.', 0)`,
		`INSERT INTO reply_messages (update_id, idx, chat_id, message_id) VALUES (5, 0, 9, 21), (5, 1, 9, 0), (6, 0, 9, 31)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	pending, err := s.Inbox().Pending(ctx)
	if err != nil || len(pending) != 3 {
		t.Fatalf("pending: got %d, %v", len(pending), err)
	}
	if p := pending[0]; p.Seq != 5 || len(p.Reply.Parts) != 2 || p.Reply.Parts[0].Floor != 20 || p.Reply.Parts[1].ID != 0 || !p.Reply.Complete {
		t.Errorf("update 5: got %+v", p)
	}
	if pending[1].Reply.Complete || !pending[2].Reply.Complete {
		t.Errorf("whole: got %v for an interrupted answer and %v for one at the output limit, want false and true", pending[1].Reply.Complete, pending[2].Reply.Complete)
	}
}
