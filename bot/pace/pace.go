// Package pace decides when the bot may call Telegram in a chat: it keeps every chat under
// Telegram's flood limits (an interval per chat, a global rate, and the penalties Telegram hands
// out with 429). It knows nothing of messages or replies. Its tests run on testing/synctest's
// fake clock.
package pace

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacer decides when the bot may call Telegram. A call waits for its chat (one at a time, the
// chat's interval after its previous call, never inside a retry_after window), then queues for the
// global rate by reservation: calls go in the order their chats became ready, a fair share each.
type Pacer struct {
	private, group time.Duration
	global         *rate.Limiter

	mu          sync.Mutex
	chats       map[int64]*chatPace
	globalUntil time.Time           // a bot-wide retry_after deadline
	recent429   map[int64]time.Time // each chat's last 429, to tell a global limit from a chat's
	nextSweep   time.Time
}

type chatPace struct {
	turn     chan struct{} // held by the call waiting for its slot: two calls never go back to back
	waiters  int           // calls inside Wait; sweep keeps the chat while > 0
	base     time.Duration // the configured interval
	interval time.Duration // base, or more after a 429
	last     time.Time     // when the chat's last call was let go
	until    time.Time     // Telegram's retry_after deadline
	lastUse  time.Time
}

const (
	// Growth of a chat's interval after a 429, and the slow way back, per successful call.
	penaltyGrowth = 2.0
	recoverFactor = 0.95
	maxInterval   = 30 * time.Second
	// A 429 in this many distinct chats within globalWindow means the bot-wide limit was hit.
	globalChats  = 3
	globalWindow = time.Second
	// A chat quiet for forgetAfter (> maxInterval), no penalty pending, goes at the next sweep.
	forgetAfter = 10 * time.Minute
	sweepEvery  = time.Minute
)

// New returns a Pacer that paces calls at least private (or group, for negative chat ids) apart
// in each chat and globalRate a second over all. Half a second's worth may go at once, so that
// chats starting together show text without delay (20 chats: within about 170 ms, not 630 ms).
func New(private, group time.Duration, globalRate float64) *Pacer {
	burst := max(1, int(math.Ceil(globalRate/2)))
	return &Pacer{
		private:   private,
		group:     group,
		global:    rate.NewLimiter(rate.Limit(globalRate), burst),
		chats:     map[int64]*chatPace{},
		recent429: map[int64]time.Time{},
	}
}

// WithBurst lets n (at least 1) calls of the global rate go at once, instead of New's half second.
func (p *Pacer) WithBurst(n int) *Pacer {
	p.mu.Lock()
	p.global = rate.NewLimiter(p.global.Limit(), max(n, 1)) // full, as a new pacer's is
	p.mu.Unlock()
	return p
}

// chat returns the state of chat id, creating it, and forgets quiet chats. p.mu must be held.
func (p *Pacer) chat(id int64, now time.Time) *chatPace {
	if now.After(p.nextSweep) {
		for id, c := range p.chats {
			if c.waiters == 0 && now.Sub(c.lastUse) > forgetAfter && !now.Before(c.until) {
				delete(p.chats, id)
			}
		}
		p.nextSweep = now.Add(sweepEvery)
	}
	c := p.chats[id]
	if c == nil {
		base := p.private
		if id < 0 { // groups, supergroups and channels have negative ids
			base = p.group
		}
		c = &chatPace{turn: make(chan struct{}, 1), base: base, interval: base}
		p.chats[id] = c
	}
	c.lastUse = now
	return c
}

// deadline is when chat id may next be called as far as penalties go.
func (p *Pacer) deadline(id int64) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deadlineLocked(p.chats[id])
}

func (p *Pacer) deadlineLocked(c *chatPace) time.Time {
	if c == nil || p.globalUntil.After(c.until) {
		return p.globalUntil
	}
	return c.until
}

// nextLocked is when c's next call may go: after its interval and any penalty.
func (p *Pacer) nextLocked(c *chatPace) time.Time {
	at := p.deadlineLocked(c)
	if next := c.last.Add(c.interval); next.After(at) {
		return next
	}
	return at
}

// Wait blocks until the bot may make one call (send or edit) in chat id. The call is expected
// right away: the chat's interval counts from the moment Wait returns.
func (p *Pacer) Wait(ctx context.Context, id int64) error {
	p.mu.Lock()
	c := p.chat(id, time.Now())
	c.waiters++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		c.waiters--
		c.lastUse = time.Now()
		p.mu.Unlock()
	}()

	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.turn }()

	for {
		p.mu.Lock()
		at := p.nextLocked(c)
		p.mu.Unlock()
		if err := SleepUntil(ctx, at); err != nil {
			return err
		}
		if p.Penalized(id) { // a penalty arrived while this call slept
			continue
		}
		if err := p.waitGlobal(ctx); err != nil {
			return err
		}
		p.mu.Lock()
		now := time.Now()
		if now.Before(p.deadlineLocked(c)) {
			// A penalty arrived while this call queued: honour it; the global slot is lost.
			p.mu.Unlock()
			continue
		}
		c.last = now
		p.mu.Unlock()
		return nil
	}
}

// WaitIdle is Wait for calls that wait behind every other (a search): one goes only when no call
// of the chat waits and the global rate has half its burst to spare; it checks every interval.
func (p *Pacer) WaitIdle(ctx context.Context, id int64) error {
	for {
		p.mu.Lock()
		now := time.Now()
		c := p.chat(id, now)
		at := p.nextLocked(c)
		busy := c.waiters > 0 || p.global.TokensAt(now) < float64(p.global.Burst())/2
		if busy && at.Before(now.Add(c.base)) {
			at = now.Add(c.base)
		}
		p.mu.Unlock()
		if !busy && !at.After(now) {
			return p.Wait(ctx, id)
		}
		if err := SleepUntil(ctx, at); err != nil {
			return err
		}
	}
}

// WaitUnpaced blocks until a call outside the chat's interval (a draft update) may go in chat id:
// after any penalty (also one that arrived while it queued), in turn for the global rate.
func (p *Pacer) WaitUnpaced(ctx context.Context, id int64) error {
	for {
		if err := SleepUntil(ctx, p.deadline(id)); err != nil {
			return err
		}
		if err := p.waitGlobal(ctx); err != nil {
			return err
		}
		if !p.Penalized(id) {
			return nil
		}
	}
}

// waitGlobal takes the next slot of the global rate and waits for it. The clock is read under
// p.mu: rate.Limiter resets its clock to each caller's reading, and readings out of order would
// each hand out a little extra. A cancelled wait gives its slot back to the calls behind it.
func (p *Pacer) waitGlobal(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	r := p.global.ReserveN(now, 1)
	p.mu.Unlock()
	if err := SleepUntil(ctx, now.Add(r.DelayFrom(now))); err != nil {
		p.mu.Lock()
		r.CancelAt(time.Now())
		p.mu.Unlock()
		return err
	}
	return nil
}

// Penalized reports whether a call in chat id would have to wait on a penalty now.
func (p *Pacer) Penalized(id int64) bool {
	return time.Now().Before(p.deadline(id))
}

// TooMany records a 429 for chat id: nothing goes to that chat before retryAfter has passed, and
// its interval grows. 429s in several chats at once set the deadline for the whole bot.
func (p *Pacer) TooMany(id int64, retryAfter time.Duration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chat(id, now)
	until := now.Add(retryAfter)
	if until.After(c.until) {
		c.until = until
	}
	c.interval = min(time.Duration(float64(c.interval)*penaltyGrowth), maxInterval)

	p.recent429[id] = now
	for chat, at := range p.recent429 {
		if now.Sub(at) >= globalWindow {
			delete(p.recent429, chat)
		}
	}
	if len(p.recent429) >= globalChats && until.After(p.globalUntil) {
		p.globalUntil = until
	}
}

// OK records a call in chat id answered without a 429: a grown interval shrinks back slowly.
func (p *Pacer) OK(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chat(id, time.Now())
	if c.interval > c.base {
		c.interval = max(c.base, time.Duration(float64(c.interval)*recoverFactor))
	}
}

// SleepUntil waits until t, or returns ctx's error if ctx ends first.
func SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
