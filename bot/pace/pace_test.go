package pace

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The pacer's tests run in synctest bubbles: time moves only when every goroutine of the test
// waits, and then straight to the next wake-up. So each test says exactly when each call is let
// go, as an offset from the bubble's start, and takes no real time.

// epoch is where the clock of a synctest bubble starts.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// recorder is a pacer that records when it let each call go, per chat, as offsets from epoch.
type recorder struct {
	*Pacer
	mu sync.Mutex
	at map[int64][]time.Duration
}

func newPacer(private, group time.Duration, globalRate float64) *recorder {
	return record(New(private, group, globalRate))
}

func record(p *Pacer) *recorder { return &recorder{Pacer: p, at: map[int64][]time.Duration{}} }

// add records a call of chat id let go now: time stands still until the caller waits again.
func (r *recorder) add(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[id] = append(r.at[id], time.Since(epoch))
}

func (r *recorder) of(id int64) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at[id])
}

func (r *recorder) all() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, ts := range r.at {
		out = append(out, ts...)
	}
	slices.Sort(out)
	return out
}

// checkGrants fails unless chat id's calls were let go exactly at want.
func checkGrants(t *testing.T, r *recorder, id int64, want ...time.Duration) {
	t.Helper()
	if got := r.of(id); !slices.Equal(got, want) {
		t.Errorf("chat %d let go at %v, want %v", id, got, want)
	}
}

// calls returns a function that makes n calls in chat id, one after the other.
func calls(t *testing.T, r *recorder, id int64, n int) func() {
	return func() {
		for range n {
			if err := r.Wait(context.Background(), id); err != nil {
				t.Errorf("wait(%d): %v", id, err)
				return
			}
			r.add(id)
		}
	}
}

// start runs each of fs in a goroutine of its own, returns once all of them wait, and returns
// a function that waits for them to return.
func start(fs ...func()) (wait func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(f)
	}
	synctest.Wait()
	return wg.Wait
}

// run runs each of fs in a goroutine of its own and returns when all have returned.
func run(fs ...func()) { start(fs...)() }

// spendBurst takes every call the global rate allows at once, so that the next waits a slot.
func spendBurst(p *Pacer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.global.ReserveN(time.Now(), p.global.Burst())
}

// waiters returns how many calls are in Wait for chat id.
func waiters(p *Pacer, id int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.chats[id]; c != nil {
		return c.waiters
	}
	return 0
}

func interval(p *Pacer, id int64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.chats[id].interval
}

// Calls in a chat go a chat interval apart, longer in a group than in a private chat; a chat
// that was quiet for long gets no burst for it.
func TestPacerSpacesCallsInAChat(t *testing.T) {
	const private, group = 20 * time.Millisecond, 60 * time.Millisecond
	tests := []struct {
		name     string
		id       int64
		interval time.Duration
		idle     bool // the chat made a call long before, then was quiet
	}{
		{"private", 42, private, false},
		{"group is slower", -42, group, false},
		{"private after idle: no burst", 43, private, true},
		{"group after idle: no burst", -43, group, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				r := newPacer(private, group, 1000)
				var begin time.Duration
				var want []time.Duration
				if tt.idle {
					run(calls(t, r, tt.id, 1))
					begin = 100 * tt.interval
					time.Sleep(begin)
					want = append(want, 0)
				}
				run(calls(t, r, tt.id, 4))
				for i := range 4 {
					want = append(want, begin+time.Duration(i)*tt.interval)
				}
				checkGrants(t, r, tt.id, want...)
			})
		})
	}
}

// Calls of one chat from several goroutines (a reply and a notice, topics of a group) are spaced
// like the calls of one.
func TestPacerSpacesConcurrentCallsInAChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 15 * time.Millisecond
		r := newPacer(interval, interval, 1000)
		run(calls(t, r, 7, 1))
		var fs []func()
		for range 5 {
			fs = append(fs, calls(t, r, 7, 1))
		}
		// Time stands still until all five are in the pacer: one sleeps for the interval, the
		// others wait for their turn.
		wait := start(fs...)
		if n := waiters(r.Pacer, 7); n != 5 {
			t.Fatalf("calls in the pacer: got %d, want 5", n)
		}
		wait()
		checkGrants(t, r, 7, 0, interval, 2*interval, 3*interval, 4*interval, 5*interval)
	})
}

// Many chats at once share the global rate: the burst goes at once, then one call a slot, in the
// order the chats became ready, so every chat gets an equal share.
func TestPacerSharesGlobalRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			rate     = 200.0
			slot     = 5 * time.Millisecond // 1/rate
			burst    = 100                  // New allows half a second's worth at once
			chats    = 20
			each     = 10
			interval = time.Millisecond
		)
		r := newPacer(interval, interval, rate)
		if got := r.global.Burst(); got != burst {
			t.Fatalf("global burst: got %d, want %d", got, burst)
		}
		var fs []func()
		for c := range chats {
			fs = append(fs, calls(t, r, int64(c+1), each))
		}
		run(fs...)

		// The burst holds five rounds of the twenty chats, one round a chat interval; the burst
		// is then spent but for the 0.2 calls the rate gave back each millisecond, which make one
		// slot at 5ms. From then on one call goes each slot. (rate.Limiter counts calls in float64
		// and truncates its delays to the nanosecond, so a slot can come a nanosecond early: times
		// are compared to the microsecond.)
		ts := r.all()
		if len(ts) != chats*each {
			t.Fatalf("grants: got %d, want %d", len(ts), chats*each)
		}
		for i, at := range ts {
			want := time.Duration(i/chats) * interval
			if i >= burst {
				want = time.Duration(i-burst+1) * slot
			}
			if at.Round(time.Microsecond) != want {
				t.Fatalf("call %d of all went at %v, want %v", i+1, at, want)
			}
		}
		// Once the rate binds, each chat's next call queues behind the nineteen others: its calls
		// are a round of slots apart.
		for c := range chats {
			got := r.of(int64(c + 1))
			if len(got) != each {
				t.Fatalf("chat %d: got %d calls, want %d", c+1, len(got), each)
			}
			for i := 1; i < burst/chats; i++ {
				if gap := got[i] - got[i-1]; gap != interval {
					t.Errorf("chat %d: calls %d and %d are %v apart, want %v (the burst)", c+1, i-1, i, gap, interval)
				}
			}
			for i := burst/chats + 1; i < each; i++ {
				if gap := (got[i] - got[i-1]).Round(time.Microsecond); gap != chats*slot {
					t.Errorf("chat %d: calls %d and %d are %v apart, want %v (a round)", c+1, i-1, i, gap, chats*slot)
				}
			}
		}
	})
}

// checkStart fails unless the first calls of chats that start together go at once for the burst,
// then one a slot of rate.
func checkStart(t *testing.T, r *recorder, chats, burst int, rate float64) []time.Duration {
	t.Helper()
	var fs []func()
	for c := range chats {
		fs = append(fs, calls(t, r, int64(c+1), 1))
	}
	run(fs...)
	ts := r.all()
	if len(ts) != chats {
		t.Fatalf("grants: got %d, want %d", len(ts), chats)
	}
	for i, at := range ts {
		var want time.Duration
		if i >= burst {
			want = time.Duration(float64(i-burst+1) / rate * float64(time.Second))
		}
		if at.Round(time.Microsecond) != want.Round(time.Microsecond) {
			t.Errorf("chat %d of %d let go at %v, want %v", i+1, chats, at, want)
		}
	}
	return ts
}

// Chats that start together show their first text at once: the burst (half a second's worth)
// lets the first calls go without waiting, as New's comment promises for 20 chats at the bot's
// default 30 calls a second: the last within 170ms, where a burst of one would take 630ms.
func TestPacerBurstLetsChatsStartTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := checkStart(t, newPacer(time.Second, time.Second, 30), 20, 15, 30)
		if last := ts[len(ts)-1]; last > 170*time.Millisecond {
			t.Errorf("last first call went at %v, want within 170ms", last)
		}
	})
}

// WithBurst sets another burst: the bot's 24 let 30 chats start within 200 ms.
func TestPacerWithBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := record(New(time.Second, time.Second, 30).WithBurst(24))
		if got := r.global.Burst(); got != 24 {
			t.Fatalf("global burst: got %d, want %d", got, 24)
		}
		checkStart(t, r, 30, 24, 30)
	})
}

// A 429 holds the chat until retry_after has passed; other chats go on.
func TestPacerWaitsOutTooMany(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const penalty = 80 * time.Millisecond
		r := newPacer(time.Millisecond, time.Millisecond, 1000)
		run(calls(t, r, 1, 1))
		time.Sleep(10 * time.Millisecond)
		r.TooMany(1, penalty)
		if got, want := r.deadline(1), epoch.Add(10*time.Millisecond+penalty); !got.Equal(want) {
			t.Errorf("deadline: got %v after the 429, want %v", time.Until(got), penalty)
		}
		if !r.Penalized(1) {
			t.Error("penalized(1): got false, want true")
		}
		if r.Penalized(2) {
			t.Error("penalized(2): got true, want false: only chat 1 got a 429")
		}
		run(calls(t, r, 1, 1), calls(t, r, 2, 1))
		checkGrants(t, r, 1, 0, 10*time.Millisecond+penalty)
		checkGrants(t, r, 2, 10*time.Millisecond)
		if r.Penalized(1) {
			t.Error("penalized(1) after retry_after: got true, want false")
		}
	})
}

// A 429 that comes while a call waits, for its chat's interval or for the global slot, holds
// that call too. The penalty outlasts the wait, so the call must wait longer than it meant to.
func TestPacerPenaltyWhileWaiting(t *testing.T) {
	const (
		hit     = 10 * time.Millisecond
		penalty = 150 * time.Millisecond
	)
	t.Run("for the interval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(50*time.Millisecond, time.Second, 1000)
			run(calls(t, r, 1, 1))
			wait := start(calls(t, r, 1, 1)) // the call sleeps until 50ms
			time.Sleep(hit)
			r.TooMany(1, penalty)
			wait()
			checkGrants(t, r, 1, 0, hit+penalty)
		})
	})
	t.Run("for the global slot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Millisecond, time.Millisecond, 20)
			spendBurst(r.Pacer)
			wait := start(calls(t, r, 1, 1)) // the call sleeps for the next slot, at 50ms
			time.Sleep(hit)
			r.TooMany(1, penalty)
			wait()
			checkGrants(t, r, 1, hit+penalty)
		})
	})
	// A call that wakes from its interval into a penalty goes back to sleep without queueing
	// for the global rate: chat 2, ready before chat 1's penalty ends, takes the next slot.
	t.Run("not queued for the global rate", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const ms = time.Millisecond
			r := newPacer(250*ms, time.Second, 1) // one call a second, a burst of one
			run(calls(t, r, 1, 1))
			wait := start(
				calls(t, r, 1, 1), // wakes at 250ms into the penalty, to 750ms
				func() { // ready at 500ms
					time.Sleep(500 * ms)
					calls(t, r, 2, 1)()
				})
			r.TooMany(1, 750*ms)
			wait()
			checkGrants(t, r, 1, 0, 2*time.Second)
			checkGrants(t, r, 2, time.Second)
		})
	})
}

// 429s in several chats within a second mean the bot's global limit: every chat waits.
func TestPacerGlobalDeadline(t *testing.T) {
	const penalty = 50 * time.Millisecond
	tests := []struct {
		name   string
		chats  []int64
		apart  time.Duration // between two 429s
		global bool
	}{
		{"three chats", []int64{1, 2, 3}, 0, true},
		{"three chats within a second", []int64{1, 2, 3}, 400 * time.Millisecond, true},
		{"three chats over a second", []int64{1, 2, 3}, 500 * time.Millisecond, false},
		{"two chats", []int64{1, 2}, 0, false},
		{"one chat three times", []int64{1, 1, 1}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newPacer(time.Millisecond, time.Millisecond, 1000)
				for i, id := range tt.chats {
					if i > 0 {
						time.Sleep(tt.apart)
					}
					r.TooMany(id, penalty)
				}
				want := time.Since(epoch)
				if tt.global {
					want += penalty
				}
				if d := r.deadline(9); !tt.global && !d.IsZero() {
					t.Errorf("chat 9's deadline: got %v after the last 429, want none", time.Until(d))
				} else if tt.global && !d.Equal(epoch.Add(want)) {
					t.Errorf("chat 9's deadline: got %v after the last 429, want %v", time.Until(d), penalty)
				}
				run(calls(t, r, 9, 1))
				checkGrants(t, r, 9, want)
			})
		})
	}
}

// After a 429 a chat's interval doubles, up to a cap, and shrinks back to the base with
// successful calls.
func TestPacerIntervalGrowsAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			base    = 20 * time.Millisecond
			penalty = time.Millisecond
		)
		r := newPacer(base, time.Second, 1000)

		run(calls(t, r, 5, 1))
		r.TooMany(5, penalty)
		if got := interval(r.Pacer, 5); got != 2*base {
			t.Fatalf("interval after a 429: got %v, want %v", got, 2*base)
		}
		run(calls(t, r, 5, 1))
		checkGrants(t, r, 5, 0, 2*base)
		r.TooMany(5, penalty)
		if got := interval(r.Pacer, 5); got != 4*base {
			t.Fatalf("interval after two 429s: got %v, want %v", got, 4*base)
		}

		r.OK(5)
		if got, want := interval(r.Pacer, 5), time.Duration(float64(4*base)*recoverFactor); got != want {
			t.Fatalf("interval after a success: got %v, want %v", got, want)
		}
		last := interval(r.Pacer, 5)
		for range 100 {
			r.OK(5)
			got := interval(r.Pacer, 5)
			if got > last || got < base {
				t.Fatalf("interval while recovering: got %v after %v, want it to shrink towards %v", got, last, base)
			}
			last = got
		}
		if last != base {
			t.Fatalf("interval after 100 successes: got %v, want %v", last, base)
		}
		run(calls(t, r, 5, 2))
		checkGrants(t, r, 5, 0, 2*base, 3*base, 4*base)

		for range 11 {
			r.TooMany(5, penalty)
		}
		if got := interval(r.Pacer, 5); got != maxInterval {
			t.Fatalf("interval after many 429s: got %v, want the cap %v", got, maxInterval)
		}
		run(calls(t, r, 5, 1))
		checkGrants(t, r, 5, 0, 2*base, 3*base, 4*base, 4*base+maxInterval)
	})
}

func chatIDs(p *Pacer) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []int64
	for id := range p.chats {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// The pacer forgets quiet chats, so its memory is bounded by the chats of the last minutes;
// it keeps those with a penalty pending or a call waiting.
func TestPacerSweepBoundsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPacer(time.Hour, time.Hour, 1000)
		p := r.Pacer
		for id := range int64(1000) {
			p.OK(id + 1)
		}
		p.TooMany(-1, time.Hour)

		// A call waits an hour in chat 2000, for its interval.
		run(calls(t, r, 2000, 1))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Wait(ctx, 2000) }()
		synctest.Wait()

		// Nothing is forgotten until it has been quiet for longer than forgetAfter.
		time.Sleep(forgetAfter)
		p.OK(3000)
		if n := len(chatIDs(p)); n != 1003 {
			t.Fatalf("chats after a sweep at forgetAfter: got %d, want 1003", n)
		}
		// The map is swept once every sweepEvery, not on each call.
		time.Sleep(sweepEvery)
		p.OK(3001)
		if n := len(chatIDs(p)); n != 1004 {
			t.Fatalf("chats a sweepEvery after the last sweep: got %d, want 1004 (no sweep)", n)
		}
		time.Sleep(time.Nanosecond)
		p.OK(3002)
		if got, want := chatIDs(p), []int64{-1, 2000, 3000, 3001, 3002}; !slices.Equal(got, want) {
			t.Errorf("chats after the sweep: got %v, want %v (penalized, waiting, recent)", got, want)
		}

		// Asking about a chat does not make the pacer remember it.
		p.Penalized(4000)
		p.deadline(4001)
		if ids := chatIDs(p); slices.Contains(ids, 4000) || slices.Contains(ids, 4001) {
			t.Errorf("chats: got %v: penalized and deadline added chats to the map, want them to only look", ids)
		}

		// Once the penalty is over and the call gone, those chats are forgotten too.
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("wait after cancel: got %v, want context.Canceled", err)
		}
		time.Sleep(time.Hour)
		p.OK(5000)
		if got, want := chatIDs(p), []int64{5000}; !slices.Equal(got, want) {
			t.Errorf("chats after an hour: got %v, want %v", got, want)
		}
	})
}

// A cancelled call gives up its turn and its global slot: the calls after it are not held back.
func TestPacerWaitCancelled(t *testing.T) {
	// cancelled starts wait, cancels it once it waits, and fails unless it returns cancelled.
	cancelled := func(t *testing.T, wait func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- wait(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("wait: got %v, want context.Canceled", err)
		}
	}
	t.Run("waiting for the interval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 1000)
			run(calls(t, r, 1, 1))
			cancelled(t, func(ctx context.Context) error { return r.Wait(ctx, 1) })
			run(calls(t, r, 1, 1))
			checkGrants(t, r, 1, 0, time.Hour)
		})
	})
	t.Run("waiting for its turn", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 1000)
			run(calls(t, r, 1, 1))
			wait := start(calls(t, r, 1, 1)) // that call has the turn, and sleeps for the interval
			cancelled(t, func(ctx context.Context) error {
				if n := waiters(r.Pacer, 1); n != 1 {
					t.Errorf("calls in the pacer before: got %d, want 1", n)
				}
				return r.Wait(ctx, 1)
			})
			wait()
			run(calls(t, r, 1, 1))
			checkGrants(t, r, 1, 0, time.Hour, 2*time.Hour)
		})
	})
	for _, unpaced := range []bool{false, true} {
		name := "waiting for the global slot"
		if unpaced {
			name = "unpaced, waiting for the global slot"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newPacer(time.Millisecond, time.Millisecond, 20)
				spendBurst(r.Pacer)
				cancelled(t, func(ctx context.Context) error { // for the slot at 50ms
					if unpaced {
						return r.WaitUnpaced(ctx, 1)
					}
					return r.Wait(ctx, 1)
				})
				run(calls(t, r, 2, 1))
				checkGrants(t, r, 2, 50*time.Millisecond)
			})
		})
	}
}

// A draft update waits out a chat's penalty and takes a global slot, but not the chat's interval.
func TestPacerUnpaced(t *testing.T) {
	const (
		hit     = 10 * time.Millisecond
		penalty = 150 * time.Millisecond
	)
	// unpaced makes a draft update in chat 1, with during run once it waits, and returns when
	// it went, from epoch.
	unpaced := func(t *testing.T, r *recorder, during func()) time.Duration {
		var at time.Duration
		wait := start(func() {
			if err := r.WaitUnpaced(context.Background(), 1); err != nil {
				t.Errorf("waitUnpaced: %v", err)
			}
			at = time.Since(epoch)
		})
		if during != nil {
			during()
		}
		wait()
		return at
	}
	penalize := func(r *recorder) func() {
		return func() {
			time.Sleep(hit)
			r.TooMany(1, penalty)
		}
	}

	t.Run("no interval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 1000)
			run(calls(t, r, 1, 1))
			if got := unpaced(t, r, nil); got != 0 {
				t.Errorf("draft went at %v, want 0: the chat's interval does not hold it", got)
			}
		})
	})
	t.Run("waits out a penalty", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 1000)
			penalize(r)()
			if got := unpaced(t, r, nil); got != hit+penalty {
				t.Errorf("draft went at %v, want %v", got, hit+penalty)
			}
		})
	})
	t.Run("takes a global slot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 20)
			spendBurst(r.Pacer)
			if got := unpaced(t, r, nil); got != 50*time.Millisecond {
				t.Errorf("draft went at %v, want 50ms", got)
			}
			run(calls(t, r, 2, 1))
			checkGrants(t, r, 2, 100*time.Millisecond)
		})
	})
	t.Run("penalty while it queues", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newPacer(time.Hour, time.Hour, 20)
			spendBurst(r.Pacer)
			if got := unpaced(t, r, penalize(r)); got != hit+penalty {
				t.Errorf("draft went at %v, want %v", got, hit+penalty)
			}
		})
	})
}

// A call that waits idle (looking for a lost message) goes only when no other call of its chat
// waits: behind every call that came before it or while it waited.
func TestWaitIdleGoesBehindOtherCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPacer(time.Second, time.Second, 1000)
		run(calls(t, r, 42, 1))             // at 0: the chat's interval runs from here
		others := start(calls(t, r, 42, 2)) // the first of the two waits for its slot, at 1s
		var idleAt time.Duration
		idle := start(func() {
			if err := r.WaitIdle(context.Background(), 42); err != nil {
				t.Errorf("WaitIdle: %v", err)
			}
			r.add(42)
			idleAt = time.Since(epoch)
		})
		others()
		idle()
		checkGrants(t, r, 42, 0, time.Second, 2*time.Second, 3*time.Second)
		if idleAt != 3*time.Second {
			t.Errorf("the idle call went at %v, want 3s, after the others", idleAt)
		}
	})
}
