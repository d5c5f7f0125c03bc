package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Summary is what the model wrote of a conversation's oldest turns, so that they need not be
// sent any more: it leads the context, after the system prompt, once the turns that fit the
// window no longer hold the whole conversation (see Budget.Summaries and Request.Fold). The
// store keeps it; writing it is the caller's (a request to the model).
type Summary struct {
	Text string
	// Through is the id of the newest turn it holds: that turn and every older one.
	Through int64
	// At is when it was written.
	At time.Time
	// Turns is how many stored turns it holds (sent ones: a voice message never transcribed
	// is not counted). Only Store.Summary fills it in.
	Turns int
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

// summaryRow is a conversation's summary as stored.
type summaryRow struct {
	Text    string `db:"summary"`
	Through int64  `db:"summary_through"`
	At      int64  `db:"summary_at"`
}

func loadSummary(ctx context.Context, q sqlx.QueryerContext, conv int64) (Summary, error) {
	var r summaryRow
	if err := sqlx.GetContext(ctx, q, &r, `SELECT summary, summary_through, summary_at FROM conversations WHERE id = ?`, conv); err != nil {
		return Summary{}, err
	}
	if r.Text == "" {
		return Summary{}, nil
	}
	return Summary{Text: r.Text, Through: r.Through, At: unixMilli(r.At)}, nil
}

// Summary returns the conversation's summary, with how many turns it holds; the zero Summary
// when it has none.
func (s *Store) Summary(ctx context.Context, k Key) (Summary, error) {
	tx, err := s.r.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Summary{}, fmt.Errorf("history: summary: %w", err)
	}
	defer tx.Rollback()
	conv, ok, err := conversationID(ctx, tx, k)
	if err != nil || !ok {
		return Summary{}, wrapNil("history: summary: %w", err)
	}
	sum, err := loadSummary(ctx, tx, conv)
	if err != nil || sum.Text == "" {
		return Summary{}, wrapNil("history: summary: %w", err)
	}
	if err := tx.GetContext(ctx, &sum.Turns, `SELECT count(*) FROM turns
		WHERE conversation_id = ? AND id <= ? AND (char_count > 0 OR image_count > 0)`, conv, sum.Through); err != nil {
		return Summary{}, fmt.Errorf("history: summary: %w", err)
	}
	return sum, nil
}

// wrapNil wraps err with format, or returns nil for no error.
func wrapNil(format string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, err)
}

// SetSummary stores text as the summary of conversation k holding every turn up to through,
// unless the conversation changed under the request that wrote it: through must be a turn of
// k (a /reset since deleted it) and newer than what the stored summary holds (another summary
// got there first). applied reports whether it was stored.
func (s *Store) SetSummary(ctx context.Context, k Key, text string, through int64) (applied bool, err error) {
	if text == "" {
		return false, errors.New("history: set summary: empty summary")
	}
	res, err := s.w.ExecContext(ctx, `UPDATE conversations SET summary = ?, summary_through = ?, summary_at = ?
		WHERE chat_id = ? AND thread_id = ? AND summary_through < ?
		  AND EXISTS (SELECT 1 FROM turns WHERE turns.id = ? AND turns.conversation_id = conversations.id)`,
		text, through, time.Now().UnixMilli(), k.ChatID, k.ThreadID, through, through)
	if err != nil {
		return false, fmt.Errorf("history: set summary: %w", writeFailed(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("history: set summary: %w", err)
	}
	return n > 0, nil
}

// TurnsBetween returns the turns of conversation k with ids after < id <= through, oldest
// first, without their pictures (ImageCount says how many each has): the turns a summary is
// about to hold.
func (s *Store) TurnsBetween(ctx context.Context, k Key, after, through int64) ([]Turn, error) {
	ts, err := queryTurns(ctx, s.r, `SELECT `+turnColumns+` FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)
		  AND id > ? AND id <= ?
		ORDER BY id`, k.ChatID, k.ThreadID, after, through)
	if err != nil {
		return nil, fmt.Errorf("history: turns: %w", err)
	}
	return ts, nil
}
