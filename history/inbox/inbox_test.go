package inbox_test

import (
	"path/filepath"
	"slices"
	"testing"

	"aurabot/history"
	"aurabot/history/inbox"
)

func openInbox(t *testing.T) *inbox.Inbox {
	t.Helper()
	s, err := history.Open(t.Context(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Inbox()
}

// An update is kept once; its reply's journal (sends with unknown outcomes, ids, removals, the
// text and whether it is final) is what Pending returns after a crash.
func TestJournalRoundTrip(t *testing.T) {
	ctx := t.Context()
	in := openInbox(t)
	fresh, err := in.Save(ctx, []inbox.Update{{ID: 5, Payload: []byte(`{"update_id":5}`)}, {ID: 6, Payload: []byte(`{}`)}})
	if err != nil || !slices.Equal(fresh, []int64{5, 6}) {
		t.Fatalf("save: got %v, %v", fresh, err)
	}
	if fresh, _ := in.Save(ctx, []inbox.Update{{ID: 5, Payload: []byte(`{}`)}}); len(fresh) != 0 {
		t.Fatalf("a redelivered update: got fresh %v, want none", fresh)
	}
	steps := []error{
		in.RecordText(ctx, 5, "partial", false, "", false),
		in.RecordSending(ctx, 5, 777, 0, 10),
		in.RecordSent(ctx, 5, 0, 11),
		in.RecordSending(ctx, 5, 777, 1, 11),
		in.RecordSending(ctx, 5, 777, 2, 12),
		in.RecordSent(ctx, 5, 2, 13),
		in.RecordRemoved(ctx, 5, 1), // message 1 went away: message 2 becomes 1
		in.RecordText(ctx, 5, "whole answer", true, "note", false),
		in.RecordText(ctx, 5, "stale", false, "", false), // never replaces a final record
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	pending, err := in.Pending(ctx)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending: got %d, %v", len(pending), err)
	}
	r := pending[0].Reply
	if !slices.Equal(r.MessageIDs, []int64{11, 13}) || r.Floor != 12 || r.Text != "whole answer" || !r.Final || r.Notice != "note" {
		t.Errorf("journal: got %+v", r)
	}
	known, err := in.KnownMessages(ctx)
	if err != nil || !slices.Equal(known[777], []int64{11, 13}) {
		t.Errorf("known messages: got %v, %v", known, err)
	}
	if err := in.Finish(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if pending, _ := in.Pending(ctx); len(pending) != 1 || pending[0].ID != 6 {
		t.Errorf("after finishing 5: got %+v, want 6 alone", pending)
	}
	if known, _ := in.KnownMessages(ctx); len(known[777]) != 2 {
		t.Errorf("a finished reply's messages are forgotten too early: %v", known)
	}
}

// An update that cannot be decoded is kept raw, never pending, and counts for the offset.
func TestUndecodableIsKeptAndSkipped(t *testing.T) {
	ctx := t.Context()
	in := openInbox(t)
	if err := in.SaveUndecodable(ctx, 42, []byte(`{"update_id":42,"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if last, _ := in.LastUpdateID(ctx); last != 42 {
		t.Errorf("last update id: got %d, want 42", last)
	}
	if pending, _ := in.Pending(ctx); len(pending) != 0 {
		t.Errorf("pending: got %+v, want none", pending)
	}
	kept, err := in.Undecodable(ctx)
	if err != nil || len(kept) != 1 || string(kept[0].Payload) != `{"update_id":42,"x":1}` {
		t.Errorf("kept: got %+v, %v", kept, err)
	}
}
