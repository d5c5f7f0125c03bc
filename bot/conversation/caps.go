package conversation

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"aurabot/aura"
	"aurabot/history"
)

// Usage and caps.
//
// Every request to the model is counted for the user whose message it answers (or whose
// conversation it summarises), in their chat, on the UTC day: the tokens in and out that the
// model server reported (usage, in openai mode with stream_options.include_usage), or else the
// bot's own count (the window's estimate of the request, cl100k_base tokens of the answer). A
// request that failed before the server answered anything is not counted.
//
// With USER_DAILY_TOKENS or USER_MONTHLY_TOKENS, a user whose tokens (in and out, summaries
// included, over every chat) reach the cap gets no model request until the day (or month)
// ends, UTC. They are told so once per chat until then, with when it resets; later messages
// there are not answered. The cap applies to everyone, the users named in ALLOWED_USERS too
// (a family or a team is all in ALLOWED_USERS). A request that starts under the cap is not
// cut: the cap may be passed by one request.

// maxCapNotices bounds the users remembered as told about their cap.
const maxCapNotices = 10000

// capNotice is one user told in one chat, until their cap resets.
type capNotice struct {
	user, chat int64
	until      time.Time
}

// capNotices remembers who was told they are past a cap.
type capNotices struct {
	mu   sync.Mutex
	told map[capNotice]bool
}

// first reports whether n is news: the user has not been told in that chat for that period.
func (c *capNotices) first(n capNotice, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.told[n] {
		return false
	}
	if len(c.told) >= maxCapNotices {
		for k := range c.told {
			if !k.until.After(now) || len(c.told) >= maxCapNotices {
				delete(c.told, k) // over, or forgotten to make room (told again at worst)
			}
		}
	}
	c.told[n] = true
	return true
}

// capState is a cap a user has reached.
type capState struct {
	limit   int64
	monthly bool
	until   time.Time // when it resets
}

// overCap reports whether user has reached a cap, and which (the monthly one first: it resets
// later). A store that cannot tell caps nobody.
func (h *Handler) overCap(ctx context.Context, user int64) (capState, bool) {
	daily, monthly := h.cfg.UserDailyTokens, h.cfg.UserMonthlyTokens
	if daily <= 0 && monthly <= 0 {
		return capState{}, false
	}
	now := time.Now().UTC()
	u, err := h.deps.Store.UsageOf(ctx, user, now)
	if err != nil {
		h.deps.Log.Warn("could not read a user's usage; not capping them", "user_id", user, "err", err)
		return capState{}, false
	}
	switch {
	case monthly > 0 && u.Month.Total() >= monthly:
		return capState{limit: monthly, monthly: true, until: nextMonth(now)}, true
	case daily > 0 && u.Day.Total() >= daily:
		return capState{limit: daily, until: nextDay(now)}, true
	}
	return capState{}, false
}

func nextDay(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

func nextMonth(now time.Time) time.Time {
	y, m, _ := now.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}

// atCap takes care of r when its sender has reached a cap: the first time in the chat until
// the cap resets, a notice that says when; after that, nothing (the update is finished). ok
// is false when the sender is under every cap.
func (h *Handler) atCap(ctx context.Context, r req) (res result, ok bool) {
	st, over := h.overCap(ctx, r.from)
	if !over {
		return done, false
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "cap")
	now := time.Now()
	if !h.capped.first(capNotice{user: r.from, chat: r.k.ChatID, until: st.until}, now) {
		return done, true
	}
	return h.notify(ctx, r, capNoticeText(st, now)), true
}

// capNoticeText tells a user they reached a cap, and when it resets.
func capNoticeText(st capState, now time.Time) string {
	in := until(st.until.Sub(now))
	if st.monthly {
		return fmt.Sprintf("You have used the %s tokens this bot allows you each month, so I can't ask the model for you until the month ends: "+
			"your allowance resets on %s at 00:00 UTC (in %s). /usage shows your figures.",
			thousands(st.limit), st.until.Format("2 January"), in)
	}
	return fmt.Sprintf("You have used the %s tokens this bot allows you each day, so I can't ask the model for you until the day ends: "+
		"your allowance resets at midnight UTC (in %s). /usage shows your figures.", thousands(st.limit), in)
}

// until says how long d is, roughly: "3 h 12 min", "45 min", "12 days".
func until(d time.Duration) string {
	d = max(d, time.Minute)
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d.Hours()/24)) + " days"
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}

// thousands writes n with commas between thousands: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// countUsage counts a request for r's sender in r's chat: used when the server sent it, else
// estimate tokens in and the answer's text's tokens out; nothing when the server answered
// nothing (answered false) and sent no count. A failed write is logged: the answer stands.
func (h *Handler) countUsage(ctx context.Context, r req, kind history.UsageKind, used *aura.Usage, estimate int, text string, answered bool) {
	u := history.Usage{User: r.from, Chat: r.k.ChatID, Name: r.name, Kind: kind}
	switch {
	case used != nil:
		u.In, u.Out = used.PromptTokens, used.CompletionTokens
	case answered:
		u.In, u.Out = estimate, history.CountTokens(text)
	default:
		return
	}
	if err := h.deps.Store.AddUsage(context.WithoutCancel(ctx), u); err != nil {
		h.deps.Log.Warn("could not count a request's tokens", "user_id", r.from, "chat_id", r.k.ChatID, "err", err)
	}
}
