package history

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// turnColumns are the columns scanTurn reads, in its order.
const turnColumns = `id, role, content, author, message_id, status, created_at, image_count, audio_file_id, audio_name,
	coalesce(token_count, -1), quote, quote_author, quote_bot`

// selectTurns starts a query of turns; inConv selects k's conversation (k.ChatID and
// k.ThreadID are the next arguments).
const (
	selectTurns = `SELECT ` + turnColumns + ` FROM turns WHERE `
	inConv      = `conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)`
)

// scanTurn reads a row of turnColumns into t. It scans by hand rather than with reflection:
// Request loads dozens of turns per call and this is its hot loop.
func scanTurn(rows *sql.Rows, t *Turn) error {
	var x struct {
		role, status string
		created      int64
	}
	err := rows.Scan(&t.ID, &x.role, &t.Content, &t.Author, &t.MessageID, &x.status, &x.created, &t.imageCount,
		&t.Audio.FileID, &t.Audio.Name, &t.tokens, &t.Quote.Text, &t.Quote.Author, &t.Quote.Bot)
	t.Role, t.Status, t.CreatedAt, t.counted = Role(x.role), Status(x.status), unixMilli(x.created), t.tokens >= 0
	return err
}

// getTurn returns the first turn a query of turnColumns selects, or sql.ErrNoRows.
func getTurn(ctx context.Context, q sqlx.QueryerContext, query string, args ...any) (Turn, error) {
	ts, err := scanAll(ctx, q, scanTurn, query, args...)
	if err != nil || len(ts) == 0 {
		return Turn{}, cmp.Or(err, sql.ErrNoRows)
	}
	return ts[0], nil
}

// scanAll runs a query and reads each row with scan, straight into the slice it returns.
func scanAll[T any](ctx context.Context, q sqlx.QueryerContext, scan func(*sql.Rows, *T) error, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var zero T
		out = append(out, zero)
		if err := scan(rows, &out[len(out)-1]); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// Append stores t as the newest turn of the conversation k, creating the conversation if
// needed, and returns it as stored (ID, Status and CreatedAt filled in, CreatedAt truncated to
// milliseconds, in UTC).
//
// A turn whose MessageID is already stored in that conversation for a turn of the same role (a
// redelivered update, an answer stored again by a recovery), or an answer whose Entry is, is
// not stored again: Append returns the stored turn and inserted false.
func (s *Store) Append(ctx context.Context, k Key, t Turn) (stored Turn, inserted bool, err error) {
	now := time.Now()
	if t, err = prepare(t, now); err != nil {
		return Turn{}, false, fmt.Errorf("history: append: %w", err)
	}
	err = sqldb.Write(ctx, s.w, "history: append", func(tx *sqlx.Tx) error {
		stored, inserted, err = appendTx(ctx, tx, k, t, now)
		return err
	})
	if err != nil {
		return Turn{}, false, err
	}
	return stored, inserted, nil
}

// prepare checks a turn to append and fills in its defaults.
func prepare(t Turn, now time.Time) (Turn, error) {
	switch {
	case t.Role != RoleUser && t.Role != RoleAssistant:
		return Turn{}, fmt.Errorf("unknown role %q", t.Role)
	case t.Status == "":
		t.Status = StatusDone
	case t.Status == StatusCut && t.Role != RoleAssistant:
		return Turn{}, fmt.Errorf("status %q is for assistant turns", t.Status)
	case t.Status != StatusDone && t.Status != StatusCut:
		return Turn{}, fmt.Errorf("unknown status %q", t.Status)
	}
	if t.Quote != (Quote{}) && t.Role != RoleUser {
		return Turn{}, errors.New("a quote is for user turns")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.CreatedAt = unixMilli(t.CreatedAt.UnixMilli())
	return t, nil
}

// appendTx appends a prepared turn inside tx; see Append.
func appendTx(ctx context.Context, tx *sqlx.Tx, k Key, t Turn, now time.Time) (Turn, bool, error) {
	var conv int64
	err := tx.GetContext(ctx, &conv, `SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.GetContext(ctx, &conv, `INSERT INTO conversations (chat_id, thread_id, created_at) VALUES (?, ?, ?) RETURNING id`,
			k.ChatID, k.ThreadID, now.UnixMilli())
	}
	if err != nil {
		return Turn{}, false, err
	}
	// The conflict targets are the partial unique indexes turns_user_message and
	// turns_assistant_message: only a turn repeating a message id of its own role is skipped;
	// any other constraint still fails loudly.
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
		dup, err := getTurn(ctx, tx, selectTurns+`conversation_id = ? AND role = ?
			AND (message_id = ? AND message_id <> 0 OR entry = ? AND entry <> 0) ORDER BY id LIMIT 1`,
			conv, t.Role, t.MessageID, t.Entry)
		if err == nil {
			var ims map[int64][]Image
			ims, err = imagesBetween(ctx, tx, dup.ID, dup.ID)
			dup.Images = ims[dup.ID]
		}
		if err != nil {
			return Turn{}, false, fmt.Errorf("load duplicate: %w", err)
		}
		return dup, false, nil
	}
	if err == nil {
		err = insertImages(ctx, tx, t.ID, t.Images)
	}
	if err != nil {
		return Turn{}, false, err
	}
	t.imageCount = len(t.Images)
	t.tokens, t.counted = n.tokens, true
	return t, true, nil
}

// Turns returns every turn of the conversation, oldest first.
func (s *Store) Turns(ctx context.Context, k Key) ([]Turn, error) { return s.turns(ctx, k, "") }

// TurnsBetween returns the turns of conversation k with ids after < id <= through, oldest
// first, without their pictures (ImageCount says how many each has): the turns a summary is
// about to hold.
func (s *Store) TurnsBetween(ctx context.Context, k Key, after, through int64) ([]Turn, error) {
	return s.turns(ctx, k, ` AND id > ? AND id <= ?`, after, through)
}

// turns returns the turns of k's conversation where cond holds, oldest first.
func (s *Store) turns(ctx context.Context, k Key, cond string, args ...any) ([]Turn, error) {
	ts, err := scanAll(ctx, s.r, scanTurn, selectTurns+inConv+cond+` ORDER BY id`, append([]any{k.ChatID, k.ThreadID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("history: turns: %w", err)
	}
	return ts, nil
}

// Newest returns the conversation's newest turn; ok is false when it has none.
func (s *Store) Newest(ctx context.Context, k Key) (t Turn, ok bool, err error) {
	t, err = getTurn(ctx, s.r, selectTurns+inConv+` ORDER BY id DESC LIMIT 1`, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return Turn{}, false, nil
	}
	if err != nil {
		return Turn{}, false, fmt.Errorf("history: newest turn: %w", err)
	}
	return t, true, nil
}

// Reset deletes every turn of the conversation and its summary; the system prompt and the
// model stay. The deleted content is overwritten in the database file (secure_delete).
func (s *Store) Reset(ctx context.Context, k Key) error {
	return sqldb.Write(ctx, s.w, "history: reset", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM turns WHERE `+inConv, k.ChatID, k.ThreadID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE conversations SET summary = '', summary_through = 0, summary_at = 0
			WHERE chat_id = ? AND thread_id = ?`, k.ChatID, k.ThreadID)
		return err
	})
}

// Rewind prepares the conversation for answering its newest user turn again (/retry): it
// deletes the assistant turns after that user turn and returns it, or ErrNotFound.
func (s *Store) Rewind(ctx context.Context, k Key) (t Turn, err error) {
	err = sqldb.Write(ctx, s.w, "history: rewind", func(tx *sqlx.Tx) error {
		t, err = getTurn(ctx, tx, selectTurns+inConv+` AND role = 'user' ORDER BY id DESC LIMIT 1`, k.ChatID, k.ThreadID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM turns WHERE `+inConv+` AND id > ?`, k.ChatID, k.ThreadID, t.ID)
		}
		return err
	})
	if err != nil {
		return Turn{}, err
	}
	return t, nil
}

// SetTranscript stores the transcript of a spoken user turn of conversation k (see
// Turn.Audio), counted for the window like any text, or returns ErrNotFound.
func (s *Store) SetTranscript(ctx context.Context, k Key, turnID int64, text string) error {
	return sqldb.Write(ctx, s.w, "history: set transcript", func(tx *sqlx.Tx) error {
		t, err := getTurn(ctx, tx, selectTurns+`id = ? AND role = 'user' AND audio_file_id <> '' AND `+inConv,
			turnID, k.ChatID, k.ThreadID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		// Counted as it will be sent: with its author and the message it replies to.
		t.Content = text
		n := countOf(t.Sent())
		_, err = tx.ExecContext(ctx, `UPDATE turns SET content = ?, char_count = ?, token_count = ? WHERE id = ?`,
			text, n.chars, n.tokens, turnID)
		return err
	})
}

// insertImages stores the images of turn id, in order.
func insertImages(ctx context.Context, tx *sqlx.Tx, id int64, images []Image) error {
	for i, im := range images {
		if im.MIME == "" {
			return fmt.Errorf("image %d has no media type", i)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO turn_images (turn_id, idx, mime, data) VALUES (?, ?, ?, ?)`,
			id, i, im.MIME, im.Data); err != nil {
			return err
		}
	}
	return nil
}

// imagesBetween reads the images of the turns with ids from first to last, by turn id.
func imagesBetween(ctx context.Context, q sqlx.QueryerContext, first, last int64) (map[int64][]Image, error) {
	type row struct {
		id int64
		im Image
	}
	rows, err := scanAll(ctx, q, func(r *sql.Rows, x *row) error { return r.Scan(&x.id, &x.im.MIME, &x.im.Data) },
		`SELECT turn_id, mime, data FROM turn_images WHERE turn_id BETWEEN ? AND ? ORDER BY turn_id, idx`, first, last)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	out := map[int64][]Image{}
	for _, r := range rows {
		out[r.id] = append(out[r.id], r.im)
	}
	return out, nil
}

// attachImages reads the images of the turns that have some. Only turns with images cost a
// query: a window of text turns reads nothing more.
func attachImages(ctx context.Context, q sqlx.QueryerContext, ts []Turn) error {
	first, last := int64(0), int64(0)
	for _, t := range ts {
		if t.imageCount > 0 {
			if first == 0 {
				first = t.ID
			}
			last = t.ID
		}
	}
	if first == 0 {
		return nil
	}
	byTurn, err := imagesBetween(ctx, q, first, last)
	if err != nil {
		return err
	}
	for i := range ts {
		ts[i].Images = byTurn[ts[i].ID]
	}
	return nil
}
