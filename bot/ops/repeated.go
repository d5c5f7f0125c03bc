package ops

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Repeated logs an event that may come in floods (a wrong secret, a stranger's message) at most
// once an interval, with a count. The first is written at once ("count=1"); those that follow
// within the interval are written as one line, with the latest one's attributes, when it has
// passed (or at Close). It is safe for concurrent use.
type Repeated struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration
	now   func() time.Time
	after func(d time.Duration, f func()) (stop func() bool) // time.AfterFunc, or a test's

	mu      sync.Mutex
	last    time.Time // when a line was last written; zero before the first
	pending int       // events not written yet
	attrs   []any     // the latest pending event's attributes
	stop    func() bool
}

// NewRepeated returns a limiter that writes msg at level to log (nil: nowhere) at most once
// every interval.
func NewRepeated(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Repeated {
	return &Repeated{
		log: cmp.Or(log, slog.New(slog.DiscardHandler)), level: level, msg: msg, every: every, now: time.Now,
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
	}
}

// Log notes one event with attrs (key-value pairs, as slog takes them).
func (r *Repeated) Log(attrs ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending++
	r.attrs = slices.Clone(attrs)
	if now := r.now(); r.last.IsZero() || now.Sub(r.last) >= r.every {
		r.write(now)
	} else if r.stop == nil {
		r.stop = r.after(r.last.Add(r.every).Sub(now), r.flush)
	}
}

func (r *Repeated) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(r.now())
}

// Close writes what is pending. Events after it start afresh.
func (r *Repeated) Close() { r.flush() }

// write writes one line for the events pending, if any, and cancels the flush scheduled for
// them. r.mu is held.
func (r *Repeated) write(now time.Time) {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	if r.pending == 0 {
		return
	}
	r.last = now
	r.log.Log(context.Background(), r.level, r.msg, append([]any{"count", r.pending}, r.attrs...)...)
	r.pending, r.attrs = 0, nil
}
