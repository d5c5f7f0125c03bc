package pace

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// The pacer's tests assert lower bounds only: no call is let go before its chat's interval,
// penalty or global slot. Upper bounds would depend on the machine's load. Grant times come from
// the pacer itself (onGrant), so the bounds hold exactly.

// grants records when the pacer let each call go, per chat.
type grants struct {
	mu sync.Mutex
	at map[int64][]time.Time
}

func record(p *Pacer) *grants {
	g := &grants{at: map[int64][]time.Time{}}
	p.onGrant = func(id int64, at time.Time) {
		g.mu.Lock()
		g.at[id] = append(g.at[id], at)
		g.mu.Unlock()
	}
	return g
}

func (g *grants) of(id int64) []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.at[id])
}

func (g *grants) all() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []time.Time
	for _, ts := range g.at {
		out = append(out, ts...)
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

func mustWait(t *testing.T, p *Pacer, id int64) {
	t.Helper()
	if err := p.Wait(context.Background(), id); err != nil {
		t.Fatalf("wait(%d): %v", id, err)
	}
}

// checkSpacing fails for every two calls of a chat closer than min.
func checkSpacing(t *testing.T, ts []time.Time, min time.Duration) {
	t.Helper()
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < min {
			t.Errorf("call %d came %v after call %d, want at least %v", i, gap, i-1, min)
		}
	}
}

func TestPacerSpacesCallsInAChat(t *testing.T) {
	const private, group = 20 * time.Millisecond, 60 * time.Millisecond
	tests := []struct {
		name string
		id   int64
		want time.Duration
		idle bool // the chat was quiet for a long time before the calls
	}{
		{"private", 42, private, false},
		{"group is slower", -42, group, false},
		{"private after idle: no burst", 43, private, true},
		{"group after idle: no burst", -43, group, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := New(private, group, 1000)
			g := record(p)
			if tt.idle {
				p.mu.Lock()
				p.chat(tt.id, time.Now()).last = time.Now().Add(-100 * tt.want)
				p.mu.Unlock()
			}
			for range 4 {
				mustWait(t, p, tt.id)
			}
			ts := g.of(tt.id)
			if len(ts) != 4 {
				t.Fatalf("grants: got %d, want 4", len(ts))
			}
			checkSpacing(t, ts, tt.want)
		})
	}
}

// Calls of one chat from several goroutines (a reply and a notice, topics of a group) are spaced
// like the calls of one.
func TestPacerSpacesConcurrentCallsInAChat(t *testing.T) {
	const interval = 15 * time.Millisecond
	p := New(interval, interval, 1000)
	g := record(p)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { mustWait(t, p, 7) })
	}
	wg.Wait()
	ts := g.of(7)
	if len(ts) != 5 {
		t.Fatalf("grants: got %d, want 5", len(ts))
	}
	checkSpacing(t, ts, interval)
}

// Many chats at once share the global rate: after the burst, calls go no faster than the rate,
// and every chat is served.
func TestPacerSharesGlobalRate(t *testing.T) {
	const (
		rate  = 200.0
		burst = 100 // newPacer allows half a second's worth at once
		chats = 20
		each  = 10
	)
	p := New(time.Millisecond, time.Millisecond, rate)
	if got := p.global.Burst(); got != burst {
		t.Fatalf("global burst: got %d, want %d", got, burst)
	}
	g := record(p)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range chats {
		wg.Go(func() {
			for range each {
				mustWait(t, p, int64(c+1))
			}
		})
	}
	wg.Wait()
	ts := g.all()
	if len(ts) != chats*each {
		t.Fatalf("grants: got %d, want %d", len(ts), chats*each)
	}
	// Call n (from 1) comes no sooner than the time the rate needs for the n-burst calls after
	// the burst. (A window between two later calls has no exact bound: a call may go out a
	// little after its slot, closer to the next one.)
	for i, at := range ts {
		n := i + 1
		if min := time.Duration(float64(n-burst) / rate * float64(time.Second)); at.Sub(start) < min-time.Microsecond {
			t.Fatalf("call %d came %v after the start, want at least %v at %v/s with a burst of %d", n, at.Sub(start), min, rate, burst)
		}
	}
	for c := range chats {
		if n := len(g.of(int64(c + 1))); n != each {
			t.Errorf("chat %d: got %d calls, want %d", c+1, n, each)
		}
	}
}

// A 429 holds the chat until retry_after has passed; other chats go on.
func TestPacerWaitsOutTooMany(t *testing.T) {
	const penalty = 80 * time.Millisecond
	p := New(time.Millisecond, time.Millisecond, 1000)
	g := record(p)
	mustWait(t, p, 1)
	hit := time.Now()
	p.TooMany(1, penalty)
	if !p.deadline(1).After(hit.Add(penalty - time.Nanosecond)) {
		t.Errorf("deadline: got %v after the 429, want at least %v", p.deadline(1).Sub(hit), penalty)
	}
	if p.Penalized(2) {
		t.Error("penalized(2): got true, want false: only chat 1 got a 429")
	}
	mustWait(t, p, 2)
	mustWait(t, p, 1)
	if got := g.of(1)[1]; got.Sub(hit) < penalty {
		t.Errorf("chat 1 called %v after its 429, want at least %v", got.Sub(hit), penalty)
	}
}

// A 429 that comes while a call waits, for its chat's interval or for the global slot, holds
// that call too. The penalty outlasts the wait, so the call must wait longer than it meant to.
func TestPacerPenaltyWhileWaiting(t *testing.T) {
	const penalty = 150 * time.Millisecond
	t.Run("for the interval", func(t *testing.T) {
		p := New(50*time.Millisecond, time.Second, 1000)
		g := record(p)
		mustWait(t, p, 1)
		done := make(chan error)
		go func() { done <- p.Wait(context.Background(), 1) }()
		waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.chats[1].waiters == 1 })
		hit := time.Now()
		p.TooMany(1, penalty)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		checkNotIn(t, g.of(1)[1], hit, penalty)
	})
	t.Run("for the global slot", func(t *testing.T) {
		const rate = 20.0
		p := New(time.Millisecond, time.Millisecond, rate)
		g := record(p)
		t0 := time.Now()
		p.global.ReserveN(t0, p.global.Burst()) // the burst is spent: the next slot is 50ms away
		done := make(chan error)
		go func() { done <- p.Wait(context.Background(), 1) }()
		// The call has reserved its slot once the limiter holds one token less than the refill
		// since t0 accounts for.
		waitFor(t, func() bool {
			now := time.Now()
			return p.global.TokensAt(now) < rate*now.Sub(t0).Seconds()-0.5
		})
		hit := time.Now()
		p.TooMany(1, penalty)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		checkNotIn(t, g.of(1)[0], hit, penalty)
	})
}

// checkNotIn fails if a call went out in the retry_after window that began at hit.
func checkNotIn(t *testing.T, at, hit time.Time, penalty time.Duration) {
	t.Helper()
	if !at.Before(hit) && at.Sub(hit) < penalty {
		t.Errorf("called %v after a 429 with retry_after %v", at.Sub(hit), penalty)
	}
}

// 429s in several chats at once mean the bot's global limit: every chat waits.
func TestPacerGlobalDeadline(t *testing.T) {
	const penalty = 50 * time.Millisecond
	tests := []struct {
		name   string
		chats  []int64
		global bool
	}{
		{"three chats", []int64{1, 2, 3}, true},
		{"two chats", []int64{1, 2}, false},
		{"one chat three times", []int64{1, 1, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(time.Millisecond, time.Millisecond, 1000)
			g := record(p)
			var hit time.Time
			for _, id := range tt.chats {
				hit = time.Now()
				p.TooMany(id, penalty)
			}
			d := p.deadline(9)
			if !tt.global {
				if !d.IsZero() {
					t.Fatalf("chat 9's deadline: got %v from now, want none", time.Until(d))
				}
				return
			}
			if d.Sub(hit) < penalty {
				t.Fatalf("chat 9's deadline: got %v after the last 429, want at least %v", d.Sub(hit), penalty)
			}
			mustWait(t, p, 9)
			if got := g.of(9)[0]; got.Sub(hit) < penalty {
				t.Errorf("chat 9 called %v after the global 429, want at least %v", got.Sub(hit), penalty)
			}
		})
	}
}

// After a 429 a chat's interval doubles, and it shrinks back to the base with successful calls.
func TestPacerIntervalGrowsAndRecovers(t *testing.T) {
	const base = 20 * time.Millisecond
	p := New(base, time.Second, 1000)
	g := record(p)
	interval := func() time.Duration { p.mu.Lock(); defer p.mu.Unlock(); return p.chats[5].interval }

	mustWait(t, p, 5)
	p.TooMany(5, time.Millisecond)
	if got := interval(); got != 2*base {
		t.Fatalf("interval after a 429: got %v, want %v", got, 2*base)
	}
	mustWait(t, p, 5)
	if ts := g.of(5); ts[1].Sub(ts[0]) < 2*base {
		t.Errorf("call after the 429 came %v after the one before, want at least %v", ts[1].Sub(ts[0]), 2*base)
	}
	p.TooMany(5, time.Millisecond)
	if got := interval(); got != 4*base {
		t.Fatalf("interval after two 429s: got %v, want %v", got, 4*base)
	}

	last := interval()
	for range 100 {
		p.OK(5)
		got := interval()
		if got > last || got < base {
			t.Fatalf("interval while recovering: got %v after %v, want it to shrink towards %v", got, last, base)
		}
		last = got
	}
	if last != base {
		t.Errorf("interval after 100 successes: got %v, want %v", last, base)
	}
	p.TooMany(5, time.Millisecond)
	for range 10 {
		p.TooMany(5, time.Millisecond)
	}
	if got := interval(); got != maxInterval {
		t.Errorf("interval after many 429s: got %v, want the cap %v", got, maxInterval)
	}
}

// The pacer forgets quiet chats, so its memory is bounded by the chats of the last minutes;
// it keeps those with a penalty pending or a call waiting.
func TestPacerSweepBoundsMemory(t *testing.T) {
	p := New(time.Millisecond, time.Millisecond, 1000)
	for id := range int64(1000) {
		p.OK(id + 1)
	}
	p.TooMany(-1, time.Hour)

	// A call waits in chat 2000: its turn is taken.
	p.mu.Lock()
	busy := p.chat(2000, time.Now())
	p.mu.Unlock()
	busy.turn <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Wait(ctx, 2000) }()
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return busy.waiters == 1 })

	// Nothing is forgotten while recent.
	p.mu.Lock()
	p.sweep(time.Now())
	n := len(p.chats)
	p.mu.Unlock()
	if n != 1002 {
		t.Fatalf("chats after an early sweep: got %d, want 1002", n)
	}

	// Much later the next call sweeps.
	p.mu.Lock()
	for _, c := range p.chats {
		c.lastUse = c.lastUse.Add(-forgetAfter - time.Minute)
	}
	p.nextSweep = time.Time{}
	p.mu.Unlock()
	p.OK(3000)
	p.mu.Lock()
	var left []int64
	for id := range p.chats {
		left = append(left, id)
	}
	p.mu.Unlock()
	slices.Sort(left)
	if want := []int64{-1, 2000, 3000}; !slices.Equal(left, want) {
		t.Errorf("chats after the sweep: got %v, want %v (penalized, waiting, new)", left, want)
	}

	// Asking about a chat does not make the pacer remember it.
	p.Penalized(4000)
	p.deadline(4001)
	p.mu.Lock()
	_, a := p.chats[4000]
	_, b := p.chats[4001]
	p.mu.Unlock()
	if a || b {
		t.Error("penalized and deadline added chats to the map, want them to only look")
	}

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("wait after cancel: got %v, want context.Canceled", err)
	}
}

// A cancelled wait gives up its turn: the chat's next call is not stuck behind it.
func TestPacerWaitCancelled(t *testing.T) {
	p := New(time.Hour, time.Hour, 1000)
	mustWait(t, p, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Wait(ctx, 1) }() // waits an hour for the interval
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.chats[1].waiters == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: got %v, want context.Canceled", err)
	}
	p.mu.Lock()
	p.chats[1].last = time.Time{} // as if the hour had passed
	p.mu.Unlock()
	mustWait(t, p, 1)
}

// waitFor polls cond, for states of the pacer that nothing signals.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A draft update waits out a chat's penalty and takes a global slot, but not the chat's interval.
func TestPacerUnpacedWaitsOutPenalty(t *testing.T) {
	p := New(time.Hour, time.Hour, 1000)
	ctx := t.Context()
	if err := p.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.WaitUnpaced(ctx, 1); err != nil { // no hour-long interval for drafts
		t.Fatal(err)
	}
	p.TooMany(1, 80*time.Millisecond)
	if err := p.WaitUnpaced(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < 80*time.Millisecond {
		t.Errorf("waitUnpaced returned %v after a 80ms penalty, want after it", got)
	}
}
