package pace

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when the test moves it, so the pacer's tests can
// say to the nanosecond when a call was let go, and take no time doing so.
//
// It lives in a _test file: no other package reads time through pace.Clock (the bot's own
// retries sleep on the wall clock), so an exported fake would have no user.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []*sleeper
	changed  chan struct{} // closed, and replaced, each time a goroutine starts or stops sleeping
}

type sleeper struct {
	until time.Time
	wake  chan struct{}
}

var _ Clock = (*fakeClock)(nil)

// epoch is where fake time starts: any fixed time will do, away from the zero time that stands
// for "never" in the pacer.
var epoch = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock {
	return &fakeClock{now: epoch, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep blocks until the fake time reaches t or ctx ends. Like SleepUntil, it returns at once,
// with ctx's error if any, when t is not in the future.
func (c *fakeClock) Sleep(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if !t.After(c.now) || ctx.Err() != nil {
		c.mu.Unlock()
		return ctx.Err()
	}
	s := &sleeper{until: t, wake: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.notifyLocked()
	c.mu.Unlock()

	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		if i := slices.Index(c.sleepers, s); i >= 0 {
			c.sleepers = slices.Delete(c.sleepers, i, i+1)
			c.notifyLocked()
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the time on by d and wakes the goroutines whose time has come. They are no
// longer counted as sleeping when Advance returns.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked(c.now.Add(d))
}

// AdvanceToNext moves the time to the earliest wake-up and returns it; false if nobody sleeps.
func (c *fakeClock) AdvanceToNext() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sleepers) == 0 {
		return time.Time{}, false
	}
	next := c.sleepers[0].until
	for _, s := range c.sleepers[1:] {
		if s.until.Before(next) {
			next = s.until
		}
	}
	c.advanceLocked(next)
	return next, true
}

func (c *fakeClock) advanceLocked(to time.Time) {
	if to.Before(c.now) {
		panic("fakeClock: time cannot go back")
	}
	c.now = to
	n := len(c.sleepers)
	c.sleepers = slices.DeleteFunc(c.sleepers, func(s *sleeper) bool {
		if s.until.After(to) {
			return false
		}
		close(s.wake)
		return true
	})
	if len(c.sleepers) != n {
		c.notifyLocked()
	}
}

// sleeping returns how many goroutines sleep now, and a channel closed when that changes.
func (c *fakeClock) sleeping() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleepers), c.changed
}

// settleTimeout bounds, in real time, a wait for goroutines that should be a few scheduler
// turns away from sleeping; it only turns a hang (a pacer that never sleeps or never returns)
// into a failure, and never decides a result.
const settleTimeout = 10 * time.Second

// BlockUntil waits until exactly n goroutines sleep on the clock.
func (c *fakeClock) BlockUntil(t *testing.T, n int) {
	t.Helper()
	timeout := time.NewTimer(settleTimeout)
	defer timeout.Stop()
	for {
		got, changed := c.sleeping()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("goroutines sleeping on the fake clock: got %d, want %d", got, n)
		}
	}
}

// flight is a set of goroutines calling the pacer, for which the test drives the fake clock: it
// moves time only when none of them can go on without it.
type flight struct {
	t      *testing.T
	clk    *fakeClock
	asleep int           // how many of them sleep at once when none can go on
	live   int           // started and not yet returned
	exited chan struct{} // one value per goroutine that returned
}

// fly runs each of fs in a goroutine of its own. asleep is how many of them sleep on the clock
// at once when all are stuck: len(fs) for calls in different chats, 1 for calls in one chat
// (the others wait for their turn, not for the clock).
func fly(t *testing.T, clk *fakeClock, asleep int, fs ...func()) *flight {
	f := &flight{t: t, clk: clk, asleep: asleep, live: len(fs), exited: make(chan struct{}, len(fs))}
	for _, fn := range fs {
		go func() {
			defer func() { f.exited <- struct{}{} }()
			fn()
		}()
	}
	return f
}

// settle waits until every goroutine of the flight that has not returned is stuck, and reports
// whether any has not returned.
func (f *flight) settle() bool {
	f.t.Helper()
	timeout := time.NewTimer(settleTimeout)
	defer timeout.Stop()
	for {
		n, changed := f.clk.sleeping()
		if n > f.asleep {
			f.t.Fatalf("goroutines sleeping on the fake clock: got %d, want at most %d", n, f.asleep)
		}
		if n == min(f.asleep, f.live) {
			return f.live > 0
		}
		select {
		case <-changed:
		case <-f.exited:
			f.live--
		case <-timeout.C:
			f.t.Fatalf("goroutines sleeping on the fake clock: got %d, want %d of %d still calling", n, min(f.asleep, f.live), f.live)
		}
	}
}

// land moves the clock from one wake-up to the next until every goroutine has returned.
func (f *flight) land() {
	f.t.Helper()
	for steps := 0; f.settle(); steps++ {
		if steps > 100000 {
			f.t.Fatal("the calls did not return after 100000 wake-ups")
		}
		if _, ok := f.clk.AdvanceToNext(); !ok {
			f.t.Fatalf("%d calls are stuck with nobody sleeping on the clock", f.live)
		}
	}
}
