package inbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"aurabot/history"
	"aurabot/history/inbox"
)

// pending returns the journaled reply of entry seq, as a restart reads it.
func pending(t *testing.T, in *inbox.Inbox, seq int64) inbox.Reply {
	t.Helper()
	u, err := in.Get(t.Context(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return u.Reply
}

// A streaming reply's text is journaled as it grows, only its new ends written; whatever the
// order of growing, rewritten and final records, and across a reopening of the store, the
// journal gives back the last text recorded.
func TestRecordTextGrowing(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bot.db")
	s, err := history.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	in := s.Inbox()
	seq := save(t, in, inbox.Incoming{ID: 1, Payload: []byte(`{}`)})[0].Seq
	raw, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	deltas := func() (n int) {
		if err := raw.GetContext(ctx, &n, `SELECT count(*) FROM inbox_shown WHERE seq = ?`, seq); err != nil {
			t.Fatal(err)
		}
		return n
	}
	record := func(r inbox.Reply) {
		t.Helper()
		if err := in.RecordText(ctx, seq, r); err != nil {
			t.Fatal(err)
		}
		if got := pending(t, in, seq); got.Text != r.Text && !got.Final {
			t.Fatalf("after recording %q: journal has %q", r.Text, got.Text)
		}
	}

	record(inbox.Reply{Text: "Héllo"})
	record(inbox.Reply{Text: "Héllo, wor"})
	record(inbox.Reply{Text: "Héllo, world"})
	if n := deltas(); n != 2 {
		t.Errorf("two texts that extend the first: %d rows of new ends, want 2", n)
	}
	record(inbox.Reply{Text: "Héllo, world"}) // the same again: written whole
	record(inbox.Reply{Text: "💭 Thinking… 2 s\nHéllo, world"})
	if n := deltas(); n != 0 {
		t.Errorf("a text that changed before its end: %d rows of new ends left, want 0", n)
	}
	record(inbox.Reply{Text: "💭 Thinking… 2 s\nHéllo, world and more"})

	// The store is reopened (a restart): the text is read back whole, and the first record
	// writes the whole text again.
	s.Close()
	if s, err = history.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	in = s.Inbox()
	if got := pending(t, in, seq); got.Text != "💭 Thinking… 2 s\nHéllo, world and more" || got.Final {
		t.Fatalf("after a restart: got %+v", got)
	}
	record(inbox.Reply{Text: "💭 Thinking… 2 s\nHéllo, world and more!"})
	if n := deltas(); n != 0 {
		t.Errorf("first record after a restart: %d rows of new ends, want the whole text written", n)
	}
	record(inbox.Reply{Text: "💭 Thinking… 2 s\nHéllo, world and more!!"})

	final := inbox.Reply{Text: "Hello, world and more!!", Final: true, Complete: true}
	record(final)
	record(inbox.Reply{Text: "Hello, world and more!!! not final"}) // refused: a final record stays
	if got := pending(t, in, seq); got.Text != final.Text || !got.Final || !got.Complete || deltas() != 0 {
		t.Errorf("final record: got %+v with %d rows of new ends, want %+v and none", got, deltas(), final)
	}
	if err := in.Finish(ctx, seq); err != nil {
		t.Fatal(err)
	}
}

// A failed write leaves the journal as it was and the next record whole.
func TestRecordTextAfterAFailedWrite(t *testing.T) {
	ctx := t.Context()
	in, _ := openInbox(t)
	seq := save(t, in, inbox.Incoming{ID: 1, Payload: []byte(`{}`)})[0].Seq
	if err := in.RecordText(ctx, seq, inbox.Reply{Text: "one"}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := in.RecordText(cancelled, seq, inbox.Reply{Text: "one two"}); err == nil {
		t.Fatal("a record with a cancelled context: got no error")
	}
	if err := in.RecordText(ctx, seq, inbox.Reply{Text: "one two three"}); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, in, seq); got.Text != "one two three" {
		t.Errorf("got %q, want the last text", got.Text)
	}
}

// BenchmarkRecordLongAnswer journals a 64 KB answer as it streams in 128 edits (512 bytes
// each), as the bot does before every edit, and reports the bytes written per edit.
//
//	go test -run '^$' -bench RecordLongAnswer -benchtime 3x ./history/inbox/
func BenchmarkRecordLongAnswer(b *testing.B) {
	ctx := b.Context()
	s, err := history.Open(ctx, filepath.Join(b.TempDir(), "bot.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	in := s.Inbox()
	answer := strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 1200)[:64<<10]
	const edits = 128
	before := writtenBytes(b)
	b.ResetTimer()
	for i := range b.N {
		seq := save(b, in, inbox.Incoming{ID: int64(i + 1), Payload: []byte(`{"update_id":` + strconv.Itoa(i+1) + `}`)})[0].Seq
		for e := 1; e <= edits; e++ {
			if err := in.RecordText(ctx, seq, inbox.Reply{Text: answer[:len(answer)*e/edits]}); err != nil {
				b.Fatal(err)
			}
		}
		if err := in.Finish(ctx, seq); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(writtenBytes(b)-before)/float64(b.N*edits), "B-written/edit")
}

// writtenBytes is what the process has written to files and sockets so far (/proc/self/io).
func writtenBytes(b *testing.B) int64 {
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, l := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}
