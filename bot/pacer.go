package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacer is the one place that decides when the bot may send or edit a message. It keeps every
// chat under Telegram's flood limits: a minimum interval per chat (one for private chats, a longer
// one for groups), a global rate shared by all chats, and the penalties Telegram hands out.
//
// Waiting is by reservation (golang.org/x/time/rate): callers are served in the order they asked,
// so many chats streaming at once share the global rate fairly.
type pacer struct {
	private, group time.Duration
	global         *rate.Limiter

	mu          sync.Mutex
	chats       map[int64]*chatPace
	globalUntil time.Time
	recent429   []hit // recent 429s, to tell a global limit from a chat's
}

type chatPace struct {
	lim      *rate.Limiter
	base     time.Duration
	interval time.Duration
	until    time.Time // Telegram's retry_after deadline
	lastUse  time.Time
}

type hit struct {
	chat int64
	at   time.Time
}

// Growth after a 429 and the slow way back, per successful call.
const (
	penaltyGrowth = 2.0
	recoverFactor = 0.95
	maxInterval   = 30 * time.Second
	// A 429 in this many distinct chats within globalWindow means the bot-wide limit was hit.
	globalChats  = 3
	globalWindow = time.Second
)

func newPacer(private, group time.Duration, globalRate float64) *pacer {
	return &pacer{
		private: private,
		group:   group,
		global:  rate.NewLimiter(rate.Limit(globalRate), 1),
		chats:   map[int64]*chatPace{},
	}
}

func (p *pacer) chat(id int64, now time.Time) *chatPace {
	c := p.chats[id]
	if c == nil {
		if len(p.chats) >= 4096 {
			p.sweep(now)
		}
		base := p.private
		if id < 0 { // groups, supergroups and channels have negative ids
			base = p.group
		}
		c = &chatPace{lim: rate.NewLimiter(rate.Every(base), 1), base: base, interval: base}
		p.chats[id] = c
	}
	c.lastUse = now
	return c
}

// sweep forgets chats that have been quiet for a while and carry no penalty.
func (p *pacer) sweep(now time.Time) {
	for id, c := range p.chats {
		if now.Sub(c.lastUse) > 5*time.Minute && now.After(c.until) && c.interval == c.base {
			delete(p.chats, id)
		}
	}
}

// deadline returns when chat id may next be called as far as penalties go.
func (p *pacer) deadline(id int64) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chat(id, time.Now())
	if p.globalUntil.After(c.until) {
		return p.globalUntil
	}
	return c.until
}

// wait blocks until the bot may make one call (send or edit) in chat id.
func (p *pacer) wait(ctx context.Context, id int64) error {
	for {
		if err := sleepUntil(ctx, p.deadline(id)); err != nil {
			return err
		}
		p.mu.Lock()
		lim := p.chat(id, time.Now()).lim
		p.mu.Unlock()
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		if err := p.global.Wait(ctx); err != nil {
			return err
		}
		// A penalty may have arrived while this call waited its turn.
		if !time.Now().Before(p.deadline(id)) {
			return nil
		}
	}
}

// ready reports whether a call in chat id could go out now without waiting on a penalty.
func (p *pacer) penalized(id int64) bool {
	return time.Now().Before(p.deadline(id))
}

// tooMany records a 429 for chat id: nothing goes to that chat before retryAfter has passed, and
// its interval grows. 429s in several chats at once set the deadline for the whole bot.
func (p *pacer) tooMany(id int64, retryAfter time.Duration) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chat(id, now)
	if u := now.Add(retryAfter); u.After(c.until) {
		c.until = u
	}
	c.interval = min(time.Duration(float64(c.interval)*penaltyGrowth), maxInterval)
	c.lim.SetLimit(rate.Every(c.interval))

	kept := p.recent429[:0]
	for _, h := range p.recent429 {
		if now.Sub(h.at) < globalWindow && h.chat != id {
			kept = append(kept, h)
		}
	}
	p.recent429 = append(kept, hit{chat: id, at: now})
	if len(p.recent429) >= globalChats {
		if u := now.Add(retryAfter); u.After(p.globalUntil) {
			p.globalUntil = u
		}
	}
}

// ok records a successful call in chat id: a grown interval shrinks back slowly.
func (p *pacer) ok(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chat(id, time.Now())
	if c.interval > c.base {
		c.interval = max(c.base, time.Duration(float64(c.interval)*recoverFactor))
		c.lim.SetLimit(rate.Every(c.interval))
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
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
