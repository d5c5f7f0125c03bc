package history

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// Summary is what the model wrote of a conversation's oldest turns, so that they need not be
// sent any more: it leads the context, after the system prompt (see Budget.Summaries and
// Request.Fold). Writing it is the caller's (a request to the model).
type Summary struct {
	Text    string
	Through int64     // the id of the newest turn it holds: that turn and every older one
	At      time.Time // when it was written
	Turns   int       // how many stored turns it holds (sent ones); only Store.Summary fills it in
}

// SummaryHeading introduces the summary in the system message (see Lead).
const SummaryHeading = "Summary of the earlier part of this conversation (its messages are no longer shown to you):"

// Lead is the text of the system message of a request: the system prompt, then, when there is
// a summary, SummaryHeading and the summary. It is sent, and counted, defused (see Defuse).
func Lead(prompt, summary string) string {
	switch {
	case summary == "":
		return prompt
	case prompt == "":
		return SummaryHeading + "\n" + summary
	}
	return prompt + "\n\n" + SummaryHeading + "\n" + summary
}

func loadSummary(ctx context.Context, q sqlx.QueryerContext, conv int64) (Summary, error) {
	var text string
	var through, at int64
	err := q.QueryRowxContext(ctx, `SELECT summary, summary_through, summary_at FROM conversations WHERE id = ?`, conv).
		Scan(&text, &through, &at)
	if err != nil || text == "" {
		return Summary{}, err
	}
	return Summary{Text: text, Through: through, At: unixMilli(at)}, nil
}

// Summary returns the conversation's summary, with how many turns it holds; the zero Summary
// when it has none.
func (s *Store) Summary(ctx context.Context, k Key) (sum Summary, err error) {
	err = s.read(ctx, "history: summary", k, func(tx *sqlx.Tx, conv int64) error {
		if sum, err = loadSummary(ctx, tx, conv); err != nil || sum.Text == "" {
			return err
		}
		sum.Turns, err = countSent(ctx, tx, conv, sum.Through)
		return err
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// SetSummary stores text as the summary of conversation k holding every turn up to through,
// unless the conversation changed under the request that wrote it: through must still be a turn
// of k (no /reset since) and newer than what the stored summary holds. applied reports whether
// it was stored.
func (s *Store) SetSummary(ctx context.Context, k Key, text string, through int64) (applied bool, err error) {
	if text == "" {
		return false, errors.New("history: set summary: empty summary")
	}
	res, err := sqldb.Exec(ctx, s.w, "history: set summary", `UPDATE conversations SET summary = ?, summary_through = ?, summary_at = ?
		WHERE chat_id = ? AND thread_id = ? AND summary_through < ?
		  AND EXISTS (SELECT 1 FROM turns WHERE turns.id = ? AND turns.conversation_id = conversations.id)`,
		text, through, time.Now().UnixMilli(), k.ChatID, k.ThreadID, through, through)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, sqldb.Fail("history: set summary", err)
}
