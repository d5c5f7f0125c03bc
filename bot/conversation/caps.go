package conversation

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"aurabot/aura"
	"aurabot/history"
)

// Usage and caps. Every model request counts for the user whose message needed it, in their
// chat, on the UTC day: the server's count, or else the bot's own. A user (owners too) past
// USER_DAILY_TOKENS or USER_MONTHLY_TOKENS gets no model request until the UTC day (or month)
// ends, and is told so once per chat. A request that starts under the cap is not cut.

type capNotice struct {
	user, chat int64
	until      time.Time
}

// capState is a cap a user has reached, and when it resets.
type capState struct {
	limit   int64
	monthly bool
	until   time.Time
}

// overCap reports whether user has reached a cap, and which (monthly first: it resets later).
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

// atCap takes care of r when its sender has reached a cap: once per chat and cap, a notice.
func (h *Handler) atCap(ctx context.Context, r req) (res result, over bool) {
	st, over := h.overCap(ctx, r.from)
	if !over {
		return done, false
	}
	h.skipped.Log("user_id", r.from, "chat_id", r.k.ChatID, "why", "cap")
	now := time.Now()
	if !h.capped.due(capNotice{user: r.from, chat: r.k.ChatID, until: st.until}, now) {
		return done, true
	}
	return h.notify(ctx, r, capNoticeText(st, now)), true
}

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
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// countUsage counts a request for r's sender: used, else (if answered) estimate and text's tokens.
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

const maxUsageLines = 50 // users /usage all lists

// cmdUsage shows the sender's token usage and caps; "all" shows every user's, to the owners.
func (h *Handler) cmdUsage(ctx context.Context, r req, arg string) result {
	now := time.Now().UTC()
	switch strings.ToLower(arg) {
	case "":
	case "all":
		if !h.named(r.from) {
			return h.notify(ctx, r, "Only the bot's owners (the users named in ALLOWED_USERS) can see everyone's usage. /usage shows yours.")
		}
		all, err := h.deps.Store.UsageAll(ctx, now)
		if err != nil {
			return h.storeFailed(ctx, r, "read the usage", err)
		}
		return h.notify(ctx, r, usageAllText(all, now))
	default:
		return h.notify(ctx, r, "Send /usage for your own figures, or /usage all for everyone's (the bot's owners only).")
	}
	u, err := h.deps.Store.UsageOf(ctx, r.from, now)
	if err != nil {
		return h.storeFailed(ctx, r, "read your usage", err)
	}
	var sb strings.Builder
	sb.WriteString("Your tokens (in + out), over every chat:\n")
	fmt.Fprintf(&sb, "Today (UTC): %s\n", usageLine(u.Day, u.DaySummaries))
	fmt.Fprintf(&sb, "This month: %s\n", usageLine(u.Month, u.MonthSummaries))
	if d := h.cfg.UserDailyTokens; d > 0 {
		fmt.Fprintf(&sb, "\nYou may use %s a day (%s left); it resets at midnight UTC, in %s.", thousands(d), thousands(max(d-u.Day.Total(), 0)), until(nextDay(now).Sub(now)))
	}
	if m := h.cfg.UserMonthlyTokens; m > 0 {
		fmt.Fprintf(&sb, "\nYou may use %s a month (%s left); it resets on %s, in %s.", thousands(m), thousands(max(m-u.Month.Total(), 0)), nextMonth(now).Format("2 January"), until(nextMonth(now).Sub(now)))
	}
	sb.WriteString("\n\nThe figures are the model server's count when it gives one, else the bot's own.")
	return h.notify(ctx, r, sb.String())
}

// usageLine is a period's figures: "1,234 in + 567 out = 1,801 (3 requests; 200 for summaries)".
func usageLine(t, summaries history.Tokens) string {
	s := fmt.Sprintf("%s in + %s out = %s (%s)", thousands(t.In), thousands(t.Out), thousands(t.Total()), plural(t.Requests, "request"))
	if summaries.Requests > 0 {
		s = strings.TrimSuffix(s, ")") + fmt.Sprintf("; %s of them for summaries)", thousands(summaries.Total()))
	}
	return s
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(n) + " " + what + "s"
}

// usageAllText lists every user's figures this month, the most first.
func usageAllText(all []history.UserUsage, now time.Time) string {
	if len(all) == 0 {
		return "Nobody has used the model this month."
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Tokens (in + out) by user, %s (UTC): today / this month\n", now.Format("January 2006"))
	var day, month history.Tokens
	for i, u := range all {
		day.In, day.Out, day.Requests = day.In+u.Day.In, day.Out+u.Day.Out, day.Requests+u.Day.Requests
		month.In, month.Out, month.Requests = month.In+u.Month.In, month.Out+u.Month.Out, month.Requests+u.Month.Requests
		if i >= maxUsageLines {
			continue
		}
		fmt.Fprintf(&sb, "\n%s (%d): %s / %s", cmp.Or(u.Name, "user"), u.User, thousands(u.Day.Total()), thousands(u.Month.Total()))
	}
	if len(all) > maxUsageLines {
		fmt.Fprintf(&sb, "\n… and %d more", len(all)-maxUsageLines)
	}
	fmt.Fprintf(&sb, "\n\nAll users: %s / %s (%s this month).", thousands(day.Total()), thousands(month.Total()), plural(month.Requests, "request"))
	return sb.String()
}

// usageCheck logs, once per model and direction, when a server counts a request's tokens more
// than a tenth (and 16) off the window's estimate: one that counts more cuts it silently.
type usageCheck struct {
	told *once[string] // model + direction
}

func (u *usageCheck) check(ctx context.Context, log *slog.Logger, model string, estimate, messages int, used aura.Usage) {
	log.DebugContext(ctx, "the model server's count of a request", "model", model,
		"prompt_tokens", used.PromptTokens, "estimate", estimate, "messages", messages, "completion_tokens", used.CompletionTokens)
	off := used.PromptTokens - estimate
	if used.PromptTokens <= 0 || max(off, -off) <= max(estimate/10, 16) {
		return
	}
	key := model + "\x00under"
	if off < 0 {
		key = model + "\x00over"
	}
	if !u.told.due(key, time.Now()) {
		return
	}
	attrs := []any{"model", model, "prompt_tokens", used.PromptTokens, "estimate", estimate, "messages", messages}
	if off > 0 {
		log.WarnContext(ctx, "the model server counts more tokens in a request than the bot's window does: near AURA_CONTEXT_TOKENS it will cut the conversation itself. "+
			"Raise AURA_TOKENS_PER_MESSAGE (its template adds more per message) or lower AURA_CONTEXT_TOKENS (its tokenizer counts more than cl100k_base)", attrs...)
		return
	}
	log.InfoContext(ctx, "the model server counts fewer tokens in a request than the bot's window does: the window holds less of the conversation than it could. "+
		"AURA_TOKENS_PER_MESSAGE may be lowered for this model's template", attrs...)
}
