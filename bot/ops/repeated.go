package ops

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Repeated logs an event that may come in floods (a request with a wrong secret, a message from
// a stranger) at most once an interval, with a count, so that nobody can fill the log by
// repeating it. The first event is written at once ("count=1"); the events that follow within
// the interval are counted and written as one line, with the attributes of the latest of them,
// when the interval has passed (or at Close). It is safe for concurrent use.
type Repeated struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration
	now   func() time.Time
	// after schedules f in d; time.AfterFunc, or a test's.
	after func(d time.Duration, f func()) (stop func() bool)

	mu      sync.Mutex
	last    time.Time // when a line was last written; zero before the first
	pending int       // events since then, not written yet
	attrs   []any     // the latest pending event's attributes
	stop    func() bool
}

// NewRepeated returns a limiter that writes msg at level to log (nil: nowhere) at most once
// every interval.
func NewRepeated(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Repeated {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Repeated{
		log: log, level: level, msg: msg, every: every, now: time.Now,
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
	}
}

// Log notes one event with attrs (key-value pairs, as slog takes them).
func (r *Repeated) Log(attrs ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.last.IsZero() || now.Sub(r.last) >= r.every {
		// A pending count whose flush has not run yet goes in this line.
		if r.stop != nil {
			r.stop()
			r.stop = nil
		}
		n := r.pending + 1
		r.pending, r.attrs = 0, nil
		r.write(now, n, attrs)
		return
	}
	r.pending++
	r.attrs = slices.Clone(attrs)
	if r.stop == nil {
		r.stop = r.after(r.last.Add(r.every).Sub(now), r.flush)
	}
}

// flush writes the pending count, if any.
func (r *Repeated) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stop = nil
	if r.pending == 0 {
		return
	}
	n, attrs := r.pending, r.attrs
	r.pending, r.attrs = 0, nil
	r.write(r.now(), n, attrs)
}

// Close writes what is pending. Events after it start afresh.
func (r *Repeated) Close() {
	r.mu.Lock()
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	r.mu.Unlock()
	r.flush()
}

// write writes one line for the n events since the last line. r.mu is held.
func (r *Repeated) write(now time.Time, n int, attrs []any) {
	r.last = now
	args := append([]any{"count", n}, attrs...)
	r.log.Log(context.Background(), r.level, r.msg, args...)
}
