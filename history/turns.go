package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// turnRow is a turns row as stored.
type turnRow struct {
	ID        int64  `db:"id"`
	Role      string `db:"role"`
	Content   string `db:"content"`
	Author    string `db:"author"`
	MessageID int64  `db:"message_id"`
	Status    string `db:"status"`
	CreatedAt int64  `db:"created_at"`
	Images    int    `db:"image_count"`
	AudioID   string `db:"audio_file_id"`
	AudioName string `db:"audio_name"`
	Tokens    int    `db:"token_count"` // -1: not counted yet
	Quote     string `db:"quote"`
	QuoteBy   string `db:"quote_author"`
	QuoteBot  bool   `db:"quote_bot"`
}

const turnColumns = `id, role, content, author, message_id, status, created_at, image_count, audio_file_id, audio_name,
	coalesce(token_count, -1) AS token_count, quote, quote_author, quote_bot`

func (r turnRow) turn() Turn {
	return Turn{
		ID:         r.ID,
		Role:       Role(r.Role),
		Content:    r.Content,
		Author:     r.Author,
		MessageID:  r.MessageID,
		Status:     Status(r.Status),
		CreatedAt:  unixMilli(r.CreatedAt),
		Audio:      Audio{FileID: r.AudioID, Name: r.AudioName},
		Quote:      Quote{Text: r.Quote, Author: r.QuoteBy, Bot: r.QuoteBot},
		imageCount: r.Images,
		tokens:     r.Tokens,
		counted:    r.Tokens >= 0,
	}
}

// queryTurns runs a query selecting turnColumns. It scans by hand rather than
// with sqlx's reflection: Window loads dozens of turns per call and this is
// its hot loop.
func queryTurns(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) ([]Turn, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ts := []Turn{}
	for rows.Next() {
		var r turnRow
		if err := rows.Scan(&r.ID, &r.Role, &r.Content, &r.Author, &r.MessageID, &r.Status, &r.CreatedAt, &r.Images, &r.AudioID, &r.AudioName, &r.Tokens,
			&r.Quote, &r.QuoteBy, &r.QuoteBot); err != nil {
			return nil, err
		}
		ts = append(ts, r.turn())
	}
	return ts, rows.Err()
}

// Append stores t as the newest turn of the conversation k, creating the
// conversation if needed, and returns it as stored (with ID, Status and
// CreatedAt filled in, CreatedAt truncated to milliseconds, in UTC).
//
// A turn whose MessageID is already stored in that conversation for a turn
// of the same role (a redelivered update, or an answer stored again by a
// recovery after a crash), or an answer whose Entry is (the same reply
// stored again), is not stored again: Append returns the stored turn and
// inserted false.
func (s *Store) Append(ctx context.Context, k Key, t Turn) (stored Turn, inserted bool, err error) {
	now := time.Now()
	t, err = prepare(t, now)
	if err != nil {
		return Turn{}, false, fmt.Errorf("history: append: %w", err)
	}
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return Turn{}, false, fmt.Errorf("history: append: %w", writeFailed(err))
	}
	defer tx.Rollback()
	stored, inserted, err = appendTx(ctx, tx, k, t, now)
	if err != nil {
		return Turn{}, false, fmt.Errorf("history: append: %w", writeFailed(err))
	}
	if !inserted {
		return stored, false, nil
	}
	if err := tx.Commit(); err != nil {
		return Turn{}, false, fmt.Errorf("history: append: %w", writeFailed(err))
	}
	return stored, true, nil
}

// prepare checks a turn to append and fills in its defaults.
func prepare(t Turn, now time.Time) (Turn, error) {
	switch t.Role {
	case RoleUser, RoleAssistant:
	default:
		return Turn{}, fmt.Errorf("unknown role %q", t.Role)
	}
	switch t.Status {
	case "":
		t.Status = StatusDone
	case StatusDone:
	case StatusCut:
		if t.Role != RoleAssistant {
			return Turn{}, fmt.Errorf("status %q is for assistant turns", t.Status)
		}
	default:
		return Turn{}, fmt.Errorf("unknown status %q", t.Status)
	}
	if t.Quote != (Quote{}) && t.Role != RoleUser {
		return Turn{}, fmt.Errorf("a quote is for user turns")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.CreatedAt = unixMilli(t.CreatedAt.UnixMilli())
	return t, nil
}

// appendTx appends a prepared turn inside tx; see Append. Its errors wrap
// ErrStorageFull when the storage is full, for every caller.
func appendTx(ctx context.Context, tx *sqlx.Tx, k Key, t Turn, now time.Time) (Turn, bool, error) {
	conv, err := ensureConversation(ctx, tx, k, now)
	if err != nil {
		return Turn{}, false, writeFailed(err)
	}
	// The conflict targets are the partial unique indexes
	// turns_user_message and turns_assistant_message: only a turn repeating
	// a message id of its own role is skipped; any other constraint still
	// fails loudly.
	n := countOf(t.Sent())
	err = tx.QueryRowxContext(ctx, `
		INSERT INTO turns (conversation_id, role, content, author, message_id, status, char_count, token_count, created_at,
			image_count, audio_file_id, audio_name, entry, quote, quote_author, quote_bot)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id, message_id) WHERE role = 'user' AND message_id <> 0 DO NOTHING
		ON CONFLICT (conversation_id, message_id) WHERE role = 'assistant' AND message_id <> 0 DO NOTHING
		ON CONFLICT (conversation_id, entry) WHERE role = 'assistant' AND entry <> 0 DO NOTHING
		RETURNING id`,
		conv, t.Role, t.Content, t.Author, t.MessageID, t.Status,
		n.chars, n.tokens, t.CreatedAt.UnixMilli(),
		len(t.Images), t.Audio.FileID, t.Audio.Name, t.Entry, t.Quote.Text, t.Quote.Author, t.Quote.Bot,
	).Scan(&t.ID)
	if errors.Is(err, sql.ErrNoRows) {
		var r turnRow
		err = tx.GetContext(ctx, &r, `SELECT `+turnColumns+` FROM turns
			WHERE conversation_id = ? AND role = ? AND (message_id = ? AND message_id <> 0 OR entry = ? AND entry <> 0)
			ORDER BY id LIMIT 1`, conv, t.Role, t.MessageID, t.Entry)
		if err != nil {
			return Turn{}, false, fmt.Errorf("load duplicate: %w", err)
		}
		dup := r.turn()
		if dup.Images, err = loadImages(ctx, tx, dup.ID, dup.ID); err != nil {
			return Turn{}, false, fmt.Errorf("load duplicate: %w", err)
		}
		return dup, false, nil
	}
	if err != nil {
		return Turn{}, false, writeFailed(err)
	}
	if err := insertImages(ctx, tx, t.ID, t.Images); err != nil {
		return Turn{}, false, writeFailed(err)
	}
	t.imageCount = len(t.Images)
	t.tokens, t.counted = n.tokens, true
	return t, true, nil
}

// ensureConversation returns the id of k's conversation, creating it.
func ensureConversation(ctx context.Context, tx *sqlx.Tx, k Key, now time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.GetContext(ctx, &id, `INSERT INTO conversations (chat_id, thread_id, created_at) VALUES (?, ?, ?) RETURNING id`,
			k.ChatID, k.ThreadID, now.UnixMilli())
	}
	return id, err
}

// conversationID is the id of k's conversation in q; ok is false if it has
// none yet.
func conversationID(ctx context.Context, q sqlx.QueryerContext, k Key) (id int64, ok bool, err error) {
	err = sqlx.GetContext(ctx, q, &id, `SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// Turns returns every turn of the conversation, oldest first; none if it has
// none.
func (s *Store) Turns(ctx context.Context, k Key) ([]Turn, error) {
	ts, err := queryTurns(ctx, s.r, `SELECT `+turnColumns+` FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)
		ORDER BY id`, k.ChatID, k.ThreadID)
	if err != nil {
		return nil, fmt.Errorf("history: turns: %w", err)
	}
	return ts, nil
}

// Reset deletes every turn of the conversation and its summary. The system
// prompt and the model stay. The deleted content is overwritten in the
// database file (secure_delete).
func (s *Store) Reset(ctx context.Context, k Key) error {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: reset: %w", writeFailed(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)`,
		k.ChatID, k.ThreadID); err != nil {
		return fmt.Errorf("history: reset: %w", writeFailed(err))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET summary = '', summary_through = 0, summary_at = 0
		WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID); err != nil {
		return fmt.Errorf("history: reset: %w", writeFailed(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: reset: %w", writeFailed(err))
	}
	return nil
}

// Rewind prepares the conversation for answering its newest user turn again
// (/retry): it deletes the assistant turns after that user turn and returns
// it. It returns ErrNotFound if the conversation has no user turn.
func (s *Store) Rewind(ctx context.Context, k Key) (Turn, error) {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return Turn{}, fmt.Errorf("history: rewind: %w", writeFailed(err))
	}
	defer tx.Rollback()
	var r turnRow
	err = tx.GetContext(ctx, &r, `SELECT `+turnColumns+` FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)
		  AND role = 'user'
		ORDER BY id DESC LIMIT 1`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return Turn{}, fmt.Errorf("history: rewind: %w", ErrNotFound)
	}
	if err != nil {
		return Turn{}, fmt.Errorf("history: rewind: %w", writeFailed(err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)
		  AND id > ?`, k.ChatID, k.ThreadID, r.ID); err != nil {
		return Turn{}, fmt.Errorf("history: rewind: %w", writeFailed(err))
	}
	if err := tx.Commit(); err != nil {
		return Turn{}, fmt.Errorf("history: rewind: %w", writeFailed(err))
	}
	return r.turn(), nil
}

// Window returns the turns of the request that answers the conversation's newest user turn:
// Request's Turns.
func (s *Store) Window(ctx context.Context, k Key, b Budget, systemPrompt string) ([]Turn, error) {
	r, err := s.Request(ctx, k, b, systemPrompt)
	if err != nil {
		return nil, err
	}
	return r.Turns, nil
}

// Request is what a request to the model carries: the system message (Lead) and the turns.
type Request struct {
	// Lead is the text of the system message, before Defuse: the system prompt, then the
	// conversation's summary when one leads (see Lead).
	Lead string
	// Summary is the summary that leads, its Turns not filled in; zero when none does.
	Summary Summary
	// Turns are the window, oldest first, ending with the newest user turn.
	Turns []Turn
	// Fold, when not 0, says that the request leaves out stored turns its summary does not
	// hold yet (with Budget.Summaries): a summary that holds every turn up to Fold is due.
	// Fold is older than the window's newest half, so that the window has room to grow again
	// once the summary holds it: the turns between Fold and the first of Turns are sent both
	// ways for a while, which is what keeps the summaries few (one per half window).
	Fold int64
}

// Request returns the context to send with the conversation's newest user
// turn: the newest contiguous run of turns, oldest first and ending with that
// user turn, that fits the budget b together with the lead (systemPrompt,
// then the conversation's summary when b.Summaries says to send one). A turn
// counts as the text sent for it (Turn.Sent) and its pictures: the
// characters of the lead and the turns must be at most b.Chars, and their
// cl100k_base tokens, b.PerMessage for each message and for the reply's
// priming, and b.ReserveTokens at most b.Tokens, so that a server that trims
// a request by its own count (chatbot-ui: tokens + 1000 > tokenLimit; Ollama:
// its num_ctx, template included) never has to. The turns the summary holds
// are not sent. Assistant turns after the user turn (a reply being retried)
// are left out. If the user turn alone does not fit with the lead, the
// summary is left out of that request; if it does not fit with systemPrompt
// alone, Request returns a *TooLongError. A conversation without user turns
// gives no turns.
//
// It walks the conversation newest-first over an index holding each turn's
// counts and stops at the first turn that does not fit, so its cost follows
// the size of the window, not of the conversation; only the turns it returns
// are read in full. Report walks the same way (windowBounds).
func (s *Store) Request(ctx context.Context, k Key, b Budget, systemPrompt string) (Request, error) {
	// One read transaction: every query sees the same snapshot.
	tx, err := s.r.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Request{}, fmt.Errorf("history: window: %w", err)
	}
	defer tx.Rollback()
	conv, ok, err := conversationID(ctx, tx, k)
	if err != nil {
		return Request{}, fmt.Errorf("history: window: %w", err)
	}
	if !ok {
		return Request{Lead: systemPrompt, Turns: []Turn{}}, nil
	}
	w, err := windowBounds(ctx, tx, conv, b, systemPrompt, nil)
	if err != nil {
		return Request{}, err
	}
	req := Request{Lead: w.lead, Summary: w.summary, Turns: []Turn{}}
	if w.due && b.Summaries {
		req.Fold = w.fold
	}
	if w.last == 0 {
		return req, nil
	}
	ts, err := queryTurns(ctx, tx, `SELECT `+turnColumns+` FROM turns
		WHERE conversation_id = ? AND id BETWEEN ? AND ?
		ORDER BY id`, conv, w.first, w.last)
	if err != nil {
		return Request{}, fmt.Errorf("history: window: %w", err)
	}
	if err := attachImages(ctx, tx, ts); err != nil {
		return Request{}, fmt.Errorf("history: window: %w", err)
	}
	req.Turns = ts
	return req, nil
}

// Coverage is Report's InWindow and Total.
func (s *Store) Coverage(ctx context.Context, k Key, b Budget, systemPrompt string) (inWindow, total int, err error) {
	r, err := s.Report(ctx, k, b, systemPrompt)
	return r.InWindow, r.Total, err
}

// Report says how much of a conversation the next request carries.
type Report struct {
	// InWindow is how many of the stored turns the window holds, Total how many the
	// conversation holds.
	InWindow, Total int
	// Summarized is how many stored turns the summary that leads the request holds; 0 when
	// none leads.
	Summarized int
}

// Report says how much of the conversation the next request carries, so
// that the user can be told "the model sees the last 12 of 40 messages":
// the next request answers a new message, which the window then ends with, after
// every turn stored now. InWindow is how many of the stored turns that
// window holds for the shortest message (one character, one token: a longer
// one may leave room for fewer), Total how many the conversation holds,
// Summarized how many the summary leading it holds. A voice message
// never transcribed counts in none: it is not sent. Request and Report
// are one walk (windowBounds), so the report is the window. If the lead
// leaves no room for a message, it returns the total and a *TooLongError.
func (s *Store) Report(ctx context.Context, k Key, b Budget, systemPrompt string) (Report, error) {
	tx, err := s.r.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("history: coverage: %w", err)
	}
	defer tx.Rollback()
	conv, ok, err := conversationID(ctx, tx, k)
	if err != nil {
		return Report{}, fmt.Errorf("history: coverage: %w", err)
	}
	if !ok {
		return Report{}, nil
	}
	var r Report
	if err := tx.GetContext(ctx, &r.Total, `SELECT count(*) FROM turns
		WHERE conversation_id = ? AND (char_count > 0 OR image_count > 0)`, conv); err != nil {
		return Report{}, fmt.Errorf("history: coverage: %w", err)
	}
	// The shortest message there is: one character, one token.
	w, err := windowBounds(ctx, tx, conv, b, systemPrompt, &count{chars: 1, tokens: 1})
	if err != nil {
		return Report{Total: r.Total}, err
	}
	r.InWindow = w.n
	if w.summary.Text != "" {
		if err := tx.GetContext(ctx, &r.Summarized, `SELECT count(*) FROM turns
			WHERE conversation_id = ? AND id <= ? AND (char_count > 0 OR image_count > 0)`, conv, w.summary.Through); err != nil {
			return Report{}, fmt.Errorf("history: coverage: %w", err)
		}
	}
	return r, nil
}

// windowWalk lists a conversation's turns newest first with what the window
// needs of each, from the covering index turns_window alone.
const windowWalk = `SELECT id, role, char_count, coalesce(token_count, -1), image_count FROM turns
	WHERE conversation_id = ? ORDER BY id DESC`

// bounds are the stored turns a request carries: ids first to last, n of
// them sent (a voice message not transcribed yet is in the range, but
// carries nothing). last is 0 when there are none.
type bounds struct {
	first, last int64
	n           int
	// lead is the system message's text, summary the summary in it (zero: none).
	lead    string
	summary Summary
	// due: turns newer than the summary were left out; fold is the newest turn older than
	// the window's newest half (see Request.Fold).
	due  bool
	fold int64
}

// windowBounds decides which stored turns a request carries, for Request
// and Report alike. next is nil for the request that answers the newest
// stored user turn (the window ends there; answers after it are left out),
// or the size of a new message not stored yet, which the request ends with
// after every stored turn. With b.Summaries, the conversation's summary
// leads, after systemPrompt, and the turns it holds are not carried; unless
// the message the request answers does not fit with it, and the request goes
// without (see walk).
func windowBounds(ctx context.Context, tx *sqlx.Tx, conv int64, b Budget, systemPrompt string, next *count) (bounds, error) {
	if b.Summaries {
		sum, err := loadSummary(ctx, tx, conv)
		if err != nil {
			return bounds{}, fmt.Errorf("history: window: %w", err)
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

// walk is windowBounds with the given lead, carrying no turn at or below
// through (the summary holds them). A turn costs its counts, its images and
// b.PerMessage; the walk stops at the first turn that does not fit. The
// message the request answers must fit, else it is a *TooLongError.
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
	// Served from the covering index turns_window, newest first. A NULL
	// token_count is a turn stored before tokens were counted, not yet
	// reached by countInBackground, or stored since by an older program:
	// it is counted here from its text.
	rows, err := tx.QueryContext(ctx, windowWalk, conv)
	if err != nil {
		return bounds{}, fmt.Errorf("history: window: %w", err)
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
			return bounds{}, fmt.Errorf("history: window: %w", err)
		}
		if !anchored && role != RoleUser {
			continue // an answer to the newest user turn: not part of its context
		}
		if anchored && id <= through {
			break // the summary holds it, and every older turn
		}
		if c.tokens < 0 {
			if c, err = countTurn(ctx, tx, id); err != nil {
				return bounds{}, fmt.Errorf("history: window: %w", err)
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
	if err := rows.Err(); err != nil {
		return bounds{}, fmt.Errorf("history: window: %w", err)
	}
	return w, nil
}

// countTurn counts the sent text of the turn with the given id.
func countTurn(ctx context.Context, q sqlx.QueryerContext, id int64) (count, error) {
	var r turnRow
	if err := sqlx.GetContext(ctx, q, &r, `SELECT `+turnColumns+` FROM turns WHERE id = ?`, id); err != nil {
		return count{}, err
	}
	return countOf(r.turn().Sent()), nil
}

// Newest returns the conversation's newest turn; ok is false when it has none.
func (s *Store) Newest(ctx context.Context, k Key) (t Turn, ok bool, err error) {
	ts, err := queryTurns(ctx, s.r, `SELECT `+turnColumns+` FROM turns
		WHERE conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)
		ORDER BY id DESC LIMIT 1`, k.ChatID, k.ThreadID)
	if err != nil {
		return Turn{}, false, fmt.Errorf("history: newest turn: %w", err)
	}
	if len(ts) == 0 {
		return Turn{}, false, nil
	}
	return ts[0], true, nil
}
