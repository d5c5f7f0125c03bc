package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/jmoiron/sqlx"
)

// Request is what a request to the model carries.
type Request struct {
	Lead    string  // the system message, before Defuse: the system prompt, then the summary (see Lead)
	Summary Summary // the summary that leads, its Turns not filled in; zero when none does
	Turns   []Turn  // the window, oldest first, ending with the newest user turn
	// Fold, when not 0, says that a summary holding every turn up to Fold is due: the request
	// leaves out turns the summary does not hold. Fold is older than the window's newest half,
	// so that summaries stay few (one per half window).
	Fold int64
}

// Report says how many stored turns the next request's window holds, the conversation holds,
// and the summary that leads it holds (0 when none leads).
type Report struct {
	InWindow, Total, Summarized int
}

// read runs fn on one snapshot (a read-only transaction) with the id of k's conversation, and
// nothing when k has none. Errors but a *TooLongError are wrapped with what.
func (s *Store) read(ctx context.Context, what string, k Key, fn func(tx *sqlx.Tx, conv int64) error) error {
	tx, err := s.r.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err == nil {
		defer tx.Rollback()
		var conv int64
		err = tx.GetContext(ctx, &conv, `SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err == nil {
			err = fn(tx, conv)
		}
	}
	var long *TooLongError
	if err == nil || errors.As(err, &long) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Request returns the context to send with the conversation's newest user turn: the newest run
// of turns, oldest first and ending with that user turn, that fits the budget b (see Budget)
// with the lead (systemPrompt, then the summary when b.Summaries), so that a server that trims
// a request by its own count never has to. Assistant turns after the user turn (a reply being
// retried) are left out. If the user turn does not fit with the lead, the summary is left out;
// if it does not fit with systemPrompt alone, Request returns a *TooLongError.
//
// It walks an index of each turn's counts newest first and stops at the first turn that does not
// fit: its cost follows the size of the window, not of the conversation.
func (s *Store) Request(ctx context.Context, k Key, b Budget, systemPrompt string) (Request, error) {
	req := Request{Lead: systemPrompt, Turns: []Turn{}}
	err := s.read(ctx, "history: window", k, func(tx *sqlx.Tx, conv int64) error {
		w, err := windowBounds(ctx, tx, conv, b, systemPrompt, nil)
		if err != nil {
			return err
		}
		req.Lead, req.Summary = w.lead, w.summary
		if w.due && b.Summaries {
			req.Fold = w.fold
		}
		req.Turns, err = scanAll(ctx, tx, scanTurn, selectTurns+`conversation_id = ? AND id BETWEEN ? AND ? ORDER BY id`, conv, w.first, w.last)
		if err != nil {
			return err
		}
		return attachImages(ctx, tx, req.Turns)
	})
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

// Report says how much of the conversation the next request carries ("the model sees the last 12
// of 40 messages"), for a new message of one character and one token. A voice message never
// transcribed counts in none. If the lead leaves no room, it returns the total and a *TooLongError.
func (s *Store) Report(ctx context.Context, k Key, b Budget, systemPrompt string) (Report, error) {
	var r Report
	err := s.read(ctx, "history: coverage", k, func(tx *sqlx.Tx, conv int64) (err error) {
		if r.Total, err = countSent(ctx, tx, conv, math.MaxInt64); err != nil {
			return err
		}
		w, err := windowBounds(ctx, tx, conv, b, systemPrompt, &count{chars: 1, tokens: 1})
		if err != nil {
			return err
		}
		r.InWindow = w.n
		if w.summary.Text != "" {
			r.Summarized, err = countSent(ctx, tx, conv, w.summary.Through)
		}
		return err
	})
	if err != nil {
		return Report{Total: r.Total}, err
	}
	return r, nil
}

// countSent counts the turns of conv up to through that are sent (see Turn.IsSent).
func countSent(ctx context.Context, tx *sqlx.Tx, conv, through int64) (n int, err error) {
	err = tx.GetContext(ctx, &n, `SELECT count(*) FROM turns
		WHERE conversation_id = ? AND id <= ? AND (char_count > 0 OR image_count > 0)`, conv, through)
	return n, err
}

// windowWalk lists a conversation's turns newest first with what the window needs of each,
// from the covering index turns_window alone.
const windowWalk = `SELECT id, role, char_count, coalesce(token_count, -1), image_count FROM turns
	WHERE conversation_id = ? ORDER BY id DESC`

// bounds are the stored turns a request carries: ids first to last (0 when none), n of them
// sent, with the lead and summary. due: turns newer than the summary were left out; fold: see
// Request.Fold.
type bounds struct {
	first, last int64
	n           int
	lead        string
	summary     Summary
	due         bool
	fold        int64
}

// windowBounds decides which stored turns a request carries. next is nil for the request that
// answers the newest stored user turn, or the size of a new message not stored yet. With
// b.Summaries, the summary leads unless the message answered does not fit with it.
func windowBounds(ctx context.Context, tx *sqlx.Tx, conv int64, b Budget, systemPrompt string, next *count) (bounds, error) {
	if b.Summaries {
		sum, err := loadSummary(ctx, tx, conv)
		if err != nil {
			return bounds{}, err
		}
		if sum.Text != "" {
			w, err := walk(ctx, tx, conv, b, Lead(systemPrompt, sum.Text), sum.Through, next)
			var long *TooLongError
			if !errors.As(err, &long) {
				w.summary = sum
				return w, err
			}
		}
	}
	return walk(ctx, tx, conv, b, systemPrompt, 0, next)
}

// walk is windowBounds with the given lead, carrying no turn at or below through (the summary
// holds them). The message the request answers must fit, or it is a *TooLongError.
func walk(ctx context.Context, tx *sqlx.Tx, conv int64, b Budget, lead string, through int64, next *count) (w bounds, err error) {
	w.lead = lead
	poolChars, poolTokens := b.pool(lead)
	pm := b.perMessage()
	var used count
	fits := func(c count) bool {
		return c.chars <= poolChars-used.chars && c.tokens <= poolTokens-used.tokens
	}
	// The window's newest half: what is older is folded into the summary when one is due.
	inHalf := func(c count) bool {
		return used.chars+c.chars <= poolChars/2 && used.tokens+c.tokens <= poolTokens/2
	}
	tooLong := func(c count) error {
		chars, tokens := b.Room(lead)
		return &TooLongError{Chars: c.chars, MaxChars: max(chars, 0), Tokens: c.tokens, MaxTokens: max(tokens, 0)}
	}
	anchored := false // the message the request answers is in
	if next != nil {
		c := count{next.chars, next.tokens + pm}
		if !fits(c) {
			return bounds{}, tooLong(*next)
		}
		used, anchored = c, true
	}
	rows, err := tx.QueryContext(ctx, windowWalk, conv)
	if err != nil {
		return bounds{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id     int64
			role   Role
			c      count
			images int
		)
		if err := rows.Scan(&id, &role, &c.chars, &c.tokens, &images); err != nil {
			return bounds{}, err
		}
		if !anchored && role != RoleUser {
			continue // an answer to the newest user turn: not part of its context
		}
		if anchored && id <= through {
			break // the summary holds it, and every older turn
		}
		// A NULL token_count: stored before tokens were counted, not yet counted in the
		// background, or by an older program.
		if c.tokens < 0 {
			if c, err = countTurn(ctx, tx, id); err != nil {
				return bounds{}, err
			}
		}
		sent := c.chars > 0 || images > 0 // else a voice message not transcribed: nothing is sent
		c.tokens += images * max(b.ImageTokens, 0)
		cost := c
		if sent {
			cost.tokens += pm
		}
		if !fits(cost) {
			if !anchored {
				return bounds{}, tooLong(c)
			}
			w.due = true
			if w.fold == 0 {
				w.fold = id
			}
			break
		}
		if anchored && w.fold == 0 && !inHalf(cost) {
			w.fold = id
		}
		used.chars += cost.chars
		used.tokens += cost.tokens
		w.first, anchored = id, true
		if w.last == 0 {
			w.last = id
		}
		if sent {
			w.n++
		}
	}
	return w, rows.Err()
}

// countTurn counts the sent text of the turn with the given id.
func countTurn(ctx context.Context, q sqlx.QueryerContext, id int64) (count, error) {
	t, err := getTurn(ctx, q, selectTurns+`id = ?`, id)
	return countOf(t.Sent()), err
}
