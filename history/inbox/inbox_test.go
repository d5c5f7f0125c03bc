package inbox_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"aurabot/history"
	"aurabot/history/inbox"
)

// openInbox opens a store's inbox, and a connection of the test's own to its database.
func openInbox(t *testing.T) (*inbox.Inbox, *sqlx.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bot.db")
	s, err := history.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s.Inbox(), db
}

// age moves the inbox's clock: every entry looks d older.
func age(t *testing.T, db *sqlx.DB, d time.Duration) error {
	_, err := db.ExecContext(t.Context(), `UPDATE inbox SET received_at = received_at - ?, done_at = done_at - ?`, d.Milliseconds(), d.Milliseconds())
	return err
}

func save(t testing.TB, in *inbox.Inbox, us ...inbox.Incoming) []inbox.Update {
	t.Helper()
	fresh, err := in.Save(t.Context(), us)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

// An update is kept once, exactly as it arrived; its reply's journal (the parts with their
// floors, what they carried and their unknown tries, ids, removals, the text and whether it is
// final) is what Pending returns after a crash.
func TestJournalRoundTrip(t *testing.T) {
	ctx := t.Context()
	in, _ := openInbox(t)
	raw := []byte(`{"update_id":5, "message":{"unknown_field":true}}`)
	fresh := save(t, in, inbox.Incoming{ID: 5, Payload: raw}, inbox.Incoming{ID: 6, Payload: []byte(`{}`)})
	if len(fresh) != 2 || fresh[0].ID != 5 || fresh[1].ID != 6 || fresh[0].Seq == fresh[1].Seq {
		t.Fatalf("save: got %+v", fresh)
	}
	if again := save(t, in, inbox.Incoming{ID: 5, Payload: raw}); len(again) != 0 {
		t.Fatalf("a redelivered update: got fresh %+v, want none", again)
	}
	seq := fresh[0].Seq
	var lostID int64
	steps := []func() error{
		func() error { return in.RecordText(ctx, seq, inbox.Reply{Text: "partial"}) },
		func() error {
			return in.RecordSending(ctx, seq, 0, inbox.Part{ChatID: 777, Floor: 10, Sent: []byte(`a`)})
		},
		func() error { _, err := in.RecordSent(ctx, seq, 0, 11, nil); return err },
		func() error {
			return in.RecordSending(ctx, seq, 1, inbox.Part{ChatID: 777, Floor: 11, Sent: []byte(`b`)})
		},
		func() error {
			return in.RecordSending(ctx, seq, 2, inbox.Part{ChatID: 777, Floor: 12, Sent: []byte(`c`)})
		},
		func() error {
			// Sent again after one send with no answer: the search is recorded with the id.
			if err := in.RecordSending(ctx, seq, 2, inbox.Part{ChatID: 777, Floor: 12, Sent: []byte(`c`), Tries: 1}); err != nil {
				return err
			}
			var err error
			lostID, err = in.RecordSent(ctx, seq, 2, 15, &inbox.Lost{ChatID: 777, Floor: 12, Ceiling: 15, Sent: []byte(`c`), Copies: 1})
			return err
		},
		func() error { return in.RecordRemoved(ctx, seq, 1) }, // message 1 went away: message 2 becomes 1
		func() error {
			return in.RecordText(ctx, seq, inbox.Reply{Text: "whole answer", Final: true, Notice: "note", Complete: true})
		},
		func() error { return in.RecordText(ctx, seq, inbox.Reply{Text: "stale"}) }, // never replaces a final record
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	pending, err := in.Pending(ctx)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending: got %d, %v", len(pending), err)
	}
	if string(pending[0].Payload) != string(raw) {
		t.Errorf("payload: got %s, want the bytes as received %s", pending[0].Payload, raw)
	}
	r := pending[0].Reply
	want := []inbox.Part{{ChatID: 777, ID: 11, Floor: 10, Sent: []byte(`a`)}, {ChatID: 777, ID: 15, Floor: 12, Sent: []byte(`c`)}}
	if !slices.EqualFunc(r.Parts, want, func(a, b inbox.Part) bool {
		return a.ChatID == b.ChatID && a.ID == b.ID && a.Floor == b.Floor && string(a.Sent) == string(b.Sent) && a.Tries == b.Tries
	}) || r.Text != "whole answer" || !r.Final || r.Notice != "note" || !r.Complete {
		t.Errorf("journal: got %+v", r)
	}
	lost, err := in.LostSends(ctx)
	if err != nil || len(lost) != 1 || lost[0].ID != lostID || lost[0].Floor != 12 || lost[0].Ceiling != 15 ||
		lost[0].Lo != 13 || lost[0].Hi != 14 || lost[0].Copies != 1 {
		t.Fatalf("lost sends: got %+v, %v", lost, err)
	}
	if err := in.Searched(ctx, lostID, 14, 14, 1); err != nil {
		t.Fatal(err)
	}
	if lost, _ := in.LostSends(ctx); len(lost) != 1 || lost[0].Lo != 14 {
		t.Errorf("after progress: got %+v", lost)
	}
	if err := in.SearchDone(ctx, lostID); err != nil {
		t.Fatal(err)
	}
	if lost, _ := in.LostSends(ctx); len(lost) != 0 {
		t.Errorf("after the search: got %+v, want none", lost)
	}
	known, err := in.KnownMessages(ctx)
	if err != nil || !slices.Equal(known[777], []int64{11, 15}) {
		t.Errorf("known messages: got %v, %v", known, err)
	}
	if err := in.Finish(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if pending, _ := in.Pending(ctx); len(pending) != 1 || pending[0].ID != 6 {
		t.Errorf("after finishing 5: got %+v, want 6 alone", pending)
	}
	if known, _ := in.KnownMessages(ctx); len(known[777]) != 2 {
		t.Errorf("a finished reply's messages are forgotten too early: %v", known)
	}
	if got, err := in.Get(ctx, seq); err != nil || got.ID != 5 || len(got.Reply.Parts) != 2 {
		t.Errorf("get: got %+v, %v", got, err)
	}
}

// Telegram numbers updates afresh after a quiet week: an update whose id equals one seen long
// ago is a new update, kept and handled; within a day the same id is a redelivery, kept once.
func TestUpdateIDsRepeatAfterTheRedeliveryWindow(t *testing.T) {
	ctx := t.Context()
	in, db := openInbox(t)
	first := save(t, in, inbox.Incoming{ID: 1000, Payload: []byte(`{"update_id":1000}`)})
	if len(first) != 1 {
		t.Fatal("not saved")
	}
	if err := in.Finish(ctx, first[0].Seq); err != nil {
		t.Fatal(err)
	}
	// A week passes.
	if err := age(t, db, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	again := save(t, in, inbox.Incoming{ID: 1000, Payload: []byte(`{"update_id":1000,"new":1}`)})
	if len(again) != 1 || again[0].Seq == first[0].Seq {
		t.Fatalf("an update numbered like one a week old: got %+v, want a new entry", again)
	}
	if dup := save(t, in, inbox.Incoming{ID: 1000, Payload: []byte(`{}`)}); len(dup) != 0 {
		t.Errorf("the same update again within the day: got %+v, want none", dup)
	}
	pending, _ := in.Pending(ctx)
	if len(pending) != 1 || pending[0].Seq != again[0].Seq {
		t.Errorf("pending: got %+v, want the new update", pending)
	}
}

// Handled entries older than the cut are forgotten; pending ones never are.
func TestPrune(t *testing.T) {
	ctx := t.Context()
	in, db := openInbox(t)
	old := save(t, in, inbox.Incoming{ID: 1, Payload: []byte(`{}`)}, inbox.Incoming{ID: 2, Payload: []byte(`{}`)})
	if err := in.Finish(ctx, old[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := age(t, db, 3*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	recent := save(t, in, inbox.Incoming{ID: 3, Payload: []byte(`{}`)})
	if err := in.Finish(ctx, recent[0].Seq); err != nil {
		t.Fatal(err)
	}
	n, err := in.Prune(ctx, time.Now().Add(-inbox.Keep))
	if err != nil || n != 1 {
		t.Fatalf("prune: got %d, %v, want 1", n, err)
	}
	pending, _ := in.Pending(ctx)
	if len(pending) != 1 || pending[0].ID != 2 {
		t.Errorf("pending after pruning: got %+v, want update 2", pending)
	}
	if _, err := in.Get(ctx, recent[0].Seq); err != nil {
		t.Errorf("a recent entry was pruned: %v", err)
	}
}

// Attempts are counted per entry, across calls (and restarts).
func TestAttempts(t *testing.T) {
	ctx := t.Context()
	in, _ := openInbox(t)
	e := save(t, in, inbox.Incoming{ID: 9, Payload: []byte(`{}`)})[0]
	for want := 1; want <= 3; want++ {
		if n, err := in.Attempt(ctx, e.Seq); err != nil || n != want {
			t.Fatalf("attempt: got %d, %v, want %d", n, err, want)
		}
	}
	if p, _ := in.Pending(ctx); p[0].Attempts != 3 {
		t.Errorf("pending attempts: got %d, want 3", p[0].Attempts)
	}
}

// An update that cannot be decoded is kept raw, once, and never pending.
func TestUndecodableIsKeptAndSkipped(t *testing.T) {
	ctx := t.Context()
	in, db := openInbox(t)
	u := inbox.Incoming{ID: 42, Payload: []byte(`{"update_id":42,"x":1}`)}
	if fresh, err := in.SaveUndecodable(ctx, u); err != nil || !fresh {
		t.Fatalf("got %v, %v", fresh, err)
	}
	if fresh, err := in.SaveUndecodable(ctx, u); err != nil || fresh {
		t.Errorf("again: got fresh %v, %v, want it kept once", fresh, err)
	}
	if pending, _ := in.Pending(ctx); len(pending) != 0 {
		t.Errorf("pending: got %+v, want none", pending)
	}
	var kept []string
	err := db.SelectContext(ctx, &kept, `SELECT payload FROM inbox WHERE undecodable = 1 ORDER BY seq`)
	if err != nil || len(kept) != 1 || kept[0] != `{"update_id":42,"x":1}` {
		t.Errorf("kept: got %q, %v", kept, err)
	}
}

// A cancelled write is not storage trouble.
func TestCancelledWriteIsNotStorageTrouble(t *testing.T) {
	in, _ := openInbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := in.RecordText(ctx, 1, inbox.Reply{Text: "x"})
	if err == nil {
		t.Skip("the driver did not fail a write on a cancelled context")
	}
	if history.StorageTrouble(err) {
		t.Errorf("got storage trouble for a cancelled write: %v", err)
	}
}
