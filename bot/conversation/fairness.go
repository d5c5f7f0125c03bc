package conversation

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"
	"golang.org/x/time/rate"
)

// How work gets into a conversation's queues, and why no one user can swamp the bot: each may
// have maxWaiting messages waiting in a conversation, and send USER_MESSAGES_PER_MINUTE (not
// owners, nor updates from before a restart). Past a bound the user is told once, no model call.

const maxWaiting = 3 // per user, conversation and lane

type recoveredKey struct{}

// recovered marks ctx for updates from before a restart.
func recovered(ctx context.Context) context.Context {
	return context.WithValue(ctx, recoveredKey{}, true)
}

func isRecovered(ctx context.Context) bool { return ctx.Value(recoveredKey{}) != nil }

// job is fn as a job of r's conversation, under the runner.
func (h *Handler) job(r req, isReply bool, fn func(ctx context.Context, r req) result) job {
	return job{reply: isReply, user: r.from, run: func(ctx context.Context) { h.run(ctx, r, fn) }}
}

// tell answers r's message with a short notice (see queueNotice).
func (h *Handler) tell(ctx context.Context, r req, text string) bool {
	return h.queueNotice(ctx, r, func(ctx context.Context, r req) result { return h.notify(ctx, r, text) })
}

// queueNotice queues fn, which sends a notice, in the conversation's notice lane.
func (h *Handler) queueNotice(ctx context.Context, r req, fn func(ctx context.Context, r req) result) bool {
	j := h.job(r, false, fn)
	j.notice = true
	if isRecovered(ctx) {
		h.queue.submit(ctx, r.k, j)
		return true
	}
	_, ok, _ := h.queue.submitCapped(ctx, r.k, j)
	return ok
}

// queueReply admits fn as the reply to m, with the 👀 reaction when it waits behind another
// for longer than a second: a message sent as the reply before it ends is answered at once,
// without a reaction call.
func (h *Handler) queueReply(ctx context.Context, r req, m *models.Message, fn func(ctx context.Context, r req) result) bool {
	started := make(chan struct{})
	var once sync.Once
	waited, taken := h.admit(ctx, r, true, func(ctx context.Context, r req) result {
		once.Do(func() { close(started) })
		return fn(ctx, r)
	})
	if waited {
		h.side.react(ctx, r.t.ChatID, m.ID, "👀", started)
	}
	return taken
}

// admit queues fn in r's conversation unless the sender has maxWaiting messages waiting there
// (then, once, a notice). waited: it waits behind others; taken: a job owns the update.
func (h *Handler) admit(ctx context.Context, r req, isReply bool, fn func(ctx context.Context, r req) result) (waited, taken bool) {
	j := h.job(r, isReply, fn)
	if isRecovered(ctx) || h.named(r.from) {
		return h.queue.submit(ctx, r.k, j), true // an owner's long text that Telegram split keeps its end
	}
	waited, ok, first := h.queue.submitCapped(ctx, r.k, j)
	if ok {
		return waited, true
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "queue")
	return false, first && h.tell(ctx, r, fmt.Sprintf("I still have %d of your messages to answer here, so I skipped this one. Send it again once I have answered them.", maxWaiting))
}

// overRate reports whether r's sender is over USER_MESSAGES_PER_MINUTE (then, once, a notice).
func (h *Handler) overRate(ctx context.Context, r req) (over, taken bool) {
	if r.anonAdmin || h.named(r.from) || isRecovered(ctx) {
		return false, false
	}
	ok, tell := h.rates.allow(r.from, time.Now())
	if ok {
		return false, false
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "rate")
	return true, tell && h.tell(ctx, r, fmt.Sprintf("You are writing faster than this bot allows (%d messages a minute), so I skipped this message. Please wait a little and send it again.", h.cfg.UserMessagesPerMinute))
}

const maxRateUsers = 10000 // past it, the quiet ones are forgotten

// rates is a token bucket per user: a minute's worth of messages, refilled at perMinute.
type rates struct {
	perMinute int
	mu        sync.Mutex
	users     map[int64]*userRate
}

type userRate struct {
	lim  *rate.Limiter
	told bool // refused since they were last let through
}

func newRates(perMinute int) *rates {
	return &rates{perMinute: perMinute, users: map[int64]*userRate{}}
}

// allow takes a message from user's bucket; tell reports the first refusal since the last pass.
func (r *rates) allow(user int64, now time.Time) (ok, tell bool) {
	if r.perMinute <= 0 {
		return true, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[user]
	if u == nil {
		r.prune(now)
		u = &userRate{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(r.perMinute)), r.perMinute)}
		r.users[user] = u
	}
	if u.lim.AllowN(now, 1) {
		u.told = false
		return true, false
	}
	tell = !u.told
	u.told = true
	return false, tell
}

// prune makes room for one more user. r.mu is held.
func (r *rates) prune(now time.Time) {
	if len(r.users) < maxRateUsers {
		return
	}
	maps.DeleteFunc(r.users, func(_ int64, u *userRate) bool { return u.lim.TokensAt(now) >= float64(r.perMinute) })
	for id := range r.users { // still full: forget some at random (they start with a full bucket)
		if len(r.users) < maxRateUsers/2 {
			break
		}
		delete(r.users, id)
	}
}

const (
	maxRemembered = 10000 // keys once remembers: past it the oldest are forgotten (told again)
	forever       = time.Duration(math.MaxInt64)
)

// once tells each key (a chat, a user) something at most once every period.
type once[K comparable] struct {
	every time.Duration
	max   int
	mu    sync.Mutex
	last  map[K]time.Time
	order []K // in the order they were first told
}

func newOnce[K comparable](every time.Duration) *once[K] {
	return &once[K]{every: every, max: maxRemembered, last: map[K]time.Time{}}
}

// due reports whether key should be told now, and notes that it is.
func (o *once[K]) due(key K, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	last, seen := o.last[key]
	switch {
	case seen && now.Sub(last) < o.every:
		return false
	case !seen:
		for len(o.order) >= o.max {
			delete(o.last, o.order[0])
			o.order = o.order[1:]
		}
		o.order = append(o.order, key)
	}
	o.last[key] = now
	return true
}
