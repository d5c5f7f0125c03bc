package conversation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// No one user can swamp the bot: each may have at most maxWaiting messages waiting in a
// conversation (the one being answered not counted), and, with USER_MESSAGES_PER_MINUTE, send at
// most that many a minute. The users named in ALLOWED_USERS, the bot's owners, are not bounded. A message past either bound is not answered and costs no model call;
// the user is told once (not once per message): for the queue, until nothing of theirs waits
// there any more; for the rate, until a message of theirs is let through again.

// maxWaiting is the most messages (and commands) of one user that may wait in a conversation's
// queue, and the most notices for them.
const maxWaiting = 3

// maxRateUsers bounds the users whose message rate is remembered: past it, those whose bucket
// is full again (quiet for a minute) are forgotten.
const maxRateUsers = 10000

// recoveredKey marks the context of updates handed on again after a restart: they were accepted
// before it, and are not bounded again.
type recoveredKey struct{}

// recovered is ctx for updates left from before a restart.
func recovered(ctx context.Context) context.Context {
	return context.WithValue(ctx, recoveredKey{}, true)
}

func isRecovered(ctx context.Context) bool {
	v, _ := ctx.Value(recoveredKey{}).(bool)
	return v
}

// rates is a token bucket per user: a minute's worth of messages, refilled at perMinute.
type rates struct {
	perMinute int

	mu    sync.Mutex
	users map[int64]*userRate
}

type userRate struct {
	lim  *rate.Limiter
	told bool // refused since they were last let through
}

func newRates(perMinute int) *rates {
	return &rates{perMinute: perMinute, users: map[int64]*userRate{}}
}

// allow takes one message of user from its bucket at now. When it is empty, ok is false, and
// tell reports whether this is the first refusal since the user was last let through.
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
	for id, u := range r.users {
		if u.lim.TokensAt(now) >= float64(r.perMinute) {
			delete(r.users, id)
		}
	}
	for id := range r.users { // still full: forget some at random (they start with a full bucket)
		if len(r.users) < maxRateUsers/2 {
			break
		}
		delete(r.users, id)
	}
}

// size is how many users are remembered.
func (r *rates) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.users)
}

// overRate reports whether the sender of r has sent more than USER_MESSAGES_PER_MINUTE, and
// then takes care of the update: the first time, a notice; after that, nothing. Users named in
// ALLOWED_USERS, anonymous administrators and updates from before a restart are not bounded.
func (h *Handler) overRate(ctx context.Context, r req) (over, taken bool) {
	if r.anonAdmin || h.named(r.from) || isRecovered(ctx) {
		return false, false
	}
	ok, tell := h.rates.allow(r.from, time.Now())
	if ok {
		return false, false
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "rate")
	if !tell {
		return true, false
	}
	return true, h.tell(ctx, r, fmt.Sprintf("You are writing faster than this bot allows (%d messages a minute), so I skipped this message. Please wait a little and send it again.", h.cfg.UserMessagesPerMinute))
}

// admit queues fn in conversation r.k after what is already queued there, unless the sender
// (other than a user named in ALLOWED_USERS) already has maxWaiting messages waiting there: then the update is taken care of without a
// model call (the first time, with a notice). waited reports whether the job had to wait behind
// others; taken is false when the caller must finish the update itself.
func (h *Handler) admit(ctx context.Context, r req, isReply bool, fn func(ctx context.Context, r req) result) (waited, taken bool) {
	j := h.job(r, isReply, fn)
	if isRecovered(ctx) || h.named(r.from) {
		// Accepted before a restart, or the bot's owners' (a long text Telegram split into
		// several messages must not lose its end).
		return h.queue.submit(ctx, r.k, j), true
	}
	waited, ok, first := h.queue.submitCapped(ctx, r.k, j)
	if ok {
		return waited, true
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "queue")
	if !first {
		return false, false
	}
	return false, h.tell(ctx, r, fmt.Sprintf("I still have %d of your messages to answer here, so I skipped this one. Send it again once I have answered them.", maxWaiting))
}
