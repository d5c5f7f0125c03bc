package ops

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A flood is one line at once and one with the count of the rest.
func TestRepeatedFloodIsTwoLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	r := NewRepeated(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn, "refused", time.Minute)
	r.now = func() time.Time { return now }
	var scheduled []time.Duration
	var due func()
	r.after = func(d time.Duration, f func()) func() bool {
		scheduled = append(scheduled, d)
		due = f
		return func() bool { return true }
	}
	for i := range 100 {
		now = now.Add(10 * time.Millisecond)
		r.Log("remote", i)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "count=1") || !strings.Contains(lines[0], "remote=0") {
		t.Fatalf("got %q, want one line for the first event", lines)
	}
	if len(scheduled) != 1 || scheduled[0] != time.Minute-10*time.Millisecond {
		t.Fatalf("flushes scheduled: got %v, want one at the end of the minute", scheduled)
	}
	now = now.Add(time.Minute)
	due()
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "count=99") || !strings.Contains(lines[1], "remote=99") {
		t.Fatalf("got %q, want a second line counting the other 99", lines)
	}
	// Quiet for a minute: the next one is written at once.
	now = now.Add(2 * time.Minute)
	r.Log("remote", "again")
	r.Close()
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "count=1") {
		t.Fatalf("got %q, want a third line for the event after the quiet spell, and nothing at Close", lines)
	}
}

// Close writes the count still pending.
func TestRepeatedCloseFlushes(t *testing.T) {
	var buf bytes.Buffer
	r := NewRepeated(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelInfo, "refused", time.Hour)
	for range 5 {
		r.Log()
	}
	r.Close()
	r.Close()
	if got := buf.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, "count=4") {
		t.Fatalf("got %q, want two lines, the second with count=4", got)
	}
}
