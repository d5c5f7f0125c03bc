package history

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"aurabot/history/internal/sqldb"
)

// UsageKind says what a request to the model was for.
type UsageKind string

// The kinds of requests counted.
const (
	UsageChat    UsageKind = "chat"    // an answer
	UsageSummary UsageKind = "summary" // a summary of a conversation's oldest turns
)

// Usage is what one request to the model used, counted for a user in a chat.
type Usage struct {
	User int64
	Chat int64
	Name string // the user's display name, for the owners' view of everyone's usage
	Kind UsageKind
	// In and Out are the request's tokens and the answer's: the model server's count when it
	// sent one, else the bot's own.
	In, Out int
	At      time.Time // zero: now
}

// Tokens are the tokens counted over a period, and the requests they came from.
type Tokens struct {
	In, Out, Requests int64
}

// Total is In and Out together: what the caps bound.
func (t Tokens) Total() int64 { return t.In + t.Out }

// UserUsage is one user's usage on a day and in its month (UTC), over every chat, with the part
// of it that went to summaries.
type UserUsage struct {
	User       int64
	Name       string // as last seen
	Day, Month Tokens
	// DaySummaries and MonthSummaries are the part of Day and Month that summaries took.
	DaySummaries, MonthSummaries Tokens
}

// day and monthStart are t's UTC day and the first day of its month, as the usage table keys
// them.
func day(t time.Time) string        { return t.UTC().Format(time.DateOnly) }
func monthStart(t time.Time) string { return t.UTC().Format("2006-01") + "-01" }

// AddUsage counts one request.
func (s *Store) AddUsage(ctx context.Context, u Usage) error {
	switch u.Kind {
	case UsageChat, UsageSummary:
	default:
		return fmt.Errorf("history: add usage: unknown kind %q", u.Kind)
	}
	if u.At.IsZero() {
		u.At = time.Now()
	}
	_, err := sqldb.Exec(ctx, s.w, "history: add usage", `INSERT INTO usage (user_id, chat_id, day, kind, name, tokens_in, tokens_out, requests)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (user_id, day, chat_id, kind) DO UPDATE SET
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE name END,
			tokens_in = tokens_in + excluded.tokens_in,
			tokens_out = tokens_out + excluded.tokens_out,
			requests = requests + 1`,
		u.User, u.Chat, day(u.At), u.Kind, u.Name, max(u.In, 0), max(u.Out, 0))
	return err
}

// usageSums adds up the usage table from a month's first day, per user.
const usageSums = `SELECT user_id,
	coalesce((SELECT name FROM usage AS n WHERE n.user_id = u.user_id AND n.name <> '' ORDER BY day DESC LIMIT 1), '') AS name,
	coalesce(sum(tokens_in) FILTER (WHERE day = ?), 0),
	coalesce(sum(tokens_out) FILTER (WHERE day = ?), 0),
	coalesce(sum(requests) FILTER (WHERE day = ?), 0),
	coalesce(sum(tokens_in) FILTER (WHERE day = ? AND kind = 'summary'), 0),
	coalesce(sum(tokens_out) FILTER (WHERE day = ? AND kind = 'summary'), 0),
	coalesce(sum(requests) FILTER (WHERE day = ? AND kind = 'summary'), 0),
	sum(tokens_in), sum(tokens_out), sum(requests),
	coalesce(sum(tokens_in) FILTER (WHERE kind = 'summary'), 0),
	coalesce(sum(tokens_out) FILTER (WHERE kind = 'summary'), 0),
	coalesce(sum(requests) FILTER (WHERE kind = 'summary'), 0)
	FROM usage AS u
	WHERE day >= ? AND day <= ?`

func (s *Store) usage(ctx context.Context, now time.Time, where string, args ...any) ([]UserUsage, error) {
	d := day(now)
	us, err := scanAll(ctx, s.r, func(r *sql.Rows, u *UserUsage) error {
		return r.Scan(&u.User, &u.Name,
			&u.Day.In, &u.Day.Out, &u.Day.Requests, &u.DaySummaries.In, &u.DaySummaries.Out, &u.DaySummaries.Requests,
			&u.Month.In, &u.Month.Out, &u.Month.Requests, &u.MonthSummaries.In, &u.MonthSummaries.Out, &u.MonthSummaries.Requests)
	}, usageSums+where+` GROUP BY user_id`, append([]any{d, d, d, d, d, d, monthStart(now), d}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("history: usage: %w", err)
	}
	return us, nil
}

// UsageOf returns user's usage on now's day and in its month (UTC), over every chat.
func (s *Store) UsageOf(ctx context.Context, user int64, now time.Time) (UserUsage, error) {
	us, err := s.usage(ctx, now, ` AND user_id = ?`, user)
	if err != nil || len(us) == 0 {
		return UserUsage{User: user}, err
	}
	return us[0], nil
}

// UsageAll returns the usage of every user who used the bot in now's month (UTC), the most
// this month first.
func (s *Store) UsageAll(ctx context.Context, now time.Time) ([]UserUsage, error) {
	us, err := s.usage(ctx, now, "")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(us, func(a, b UserUsage) int {
		return cmp.Or(cmp.Compare(b.Month.Total(), a.Month.Total()), cmp.Compare(a.User, b.User))
	})
	return us, nil
}
