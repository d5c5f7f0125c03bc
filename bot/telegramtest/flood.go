package telegramtest

import (
	"math"
	"strconv"
	"time"
)

// Limits are Telegram-like flood limits. Each limit is a token bucket: Rate calls per second on
// average with Burst calls at once. A call that counts (see Counts) takes a token from its chat's
// bucket and from the global one; a counted call without a chat_id (answerCallbackQuery) takes
// only a global token.
type Limits struct {
	PrivateRate, PrivateBurst float64 // per private chat (positive chat id); Telegram: about 1/s
	GroupRate, GroupBurst     float64 // per group (negative chat id); Telegram: about 20/min
	GlobalRate, GlobalBurst   float64 // whole bot; Telegram: about 30/s
	// Penalty is added to a chat's retry_after for every call made inside its penalty window,
	// as Telegram escalates for bots that ignore retry_after.
	Penalty time.Duration
	// Counts says which methods count against the limits. Nil means CountedByDefault.
	Counts func(method string) bool
}

// CountedByDefault says whether a method counts against the flood limits when Limits.Counts is
// nil. Telegram does not publish which calls it counts, so this is conservative: every call
// counts (sends, edits, deletes, drafts, reactions, chat actions, callback answers and any method
// the fake does not know) except the bot-level calls that target no chat: getMe, getUpdates,
// getFile, the webhook and the command-menu calls.
func CountedByDefault(method string) bool {
	switch method {
	case "getMe", "getUpdates", "getFile", "logOut", "close",
		"setWebhook", "deleteWebhook", "getWebhookInfo",
		"setMyCommands", "getMyCommands", "deleteMyCommands":
		return false
	}
	return true
}

// TelegramLimits are the limits Telegram is documented and observed to apply.
var TelegramLimits = Limits{
	PrivateRate: 1, PrivateBurst: 3,
	GroupRate: 20.0 / 60, GroupBurst: 3,
	GlobalRate: 30, GlobalBurst: 30,
	Penalty: 5 * time.Second,
}

// SetLimits turns flood limits on (nil turns them off).
func (s *Server) SetLimits(l *Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l == nil {
		s.limits = nil
		return
	}
	s.limits = &flood{l: *l, chats: map[int64]*bucket{}, until: map[int64]time.Time{}}
}

// TooManyRequests counts the 429 answers the server has given.
func (s *Server) TooManyRequests() int {
	n := 0
	for _, v := range s.TooManyRequestsBy() {
		n += v
	}
	return n
}

// TooManyRequestsBy counts the 429 answers the server has given, by method.
func (s *Server) TooManyRequestsBy() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.calls {
		if c.Status == 429 {
			out[c.Method]++
		}
	}
	return out
}

// CallCounts counts the calls the server has recorded, by method, whatever their answer.
// getUpdates is not recorded; file downloads are recorded as "file".
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.calls {
		out[c.Method]++
	}
	return out
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket and takes a token; when there is none it returns how long until there is.
func (b *bucket) take(now time.Time, rate, burst float64) time.Duration {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

type flood struct {
	l      Limits
	global bucket
	chats  map[int64]*bucket
	until  map[int64]time.Time
}

// counts says whether a method counts against the limits.
func (f *flood) counts(method string) bool {
	if f.l.Counts != nil {
		return f.l.Counts(method)
	}
	return CountedByDefault(method)
}

// check takes a token for a call in chatID (0 for a call that targets no chat, which only takes
// a global token) or answers 429.
func (f *flood) check(chatID int64, now time.Time) *Fault {
	if chatID == 0 {
		if wait := f.global.take(now, f.l.GlobalRate, f.l.GlobalBurst); wait > 0 {
			return retry(wait)
		}
		return nil
	}
	if u, ok := f.until[chatID]; ok && now.Before(u) {
		// A call inside the window: Telegram answers 429 again and extends the penalty.
		u = u.Add(f.l.Penalty)
		f.until[chatID] = u
		return retry(u.Sub(now))
	}
	b := f.chats[chatID]
	if b == nil {
		b = &bucket{}
		f.chats[chatID] = b
	}
	rate, burst := f.l.PrivateRate, f.l.PrivateBurst
	if chatID < 0 {
		rate, burst = f.l.GroupRate, f.l.GroupBurst
	}
	if wait := b.take(now, rate, burst); wait > 0 {
		f.until[chatID] = now.Add(roundUp(wait))
		return retry(wait)
	}
	if wait := f.global.take(now, f.l.GlobalRate, f.l.GlobalBurst); wait > 0 {
		b.tokens++ // the chat's call did not happen
		return retry(wait)
	}
	return nil
}

func roundUp(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

func retry(d time.Duration) *Fault {
	n := max(1, int(math.Ceil(d.Seconds())))
	return &Fault{Code: 429, Description: "Too Many Requests: retry after " + strconv.Itoa(n), RetryAfter: n}
}
