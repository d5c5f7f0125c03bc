package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

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

// loadImages returns the images of the turns with ids from first to last, by turn id.
func loadImages(ctx context.Context, q sqlx.QueryerContext, first, last int64) ([]Image, error) {
	byTurn, err := imagesBetween(ctx, q, first, last)
	if err != nil {
		return nil, err
	}
	return byTurn[first], nil
}

// imagesBetween reads the images of the turns with ids from first to last.
func imagesBetween(ctx context.Context, q sqlx.QueryerContext, first, last int64) (map[int64][]Image, error) {
	rows, err := q.QueryContext(ctx, `SELECT turn_id, mime, data FROM turn_images
		WHERE turn_id BETWEEN ? AND ? ORDER BY turn_id, idx`, first, last)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Image{}
	for rows.Next() {
		var (
			id int64
			im Image
		)
		if err := rows.Scan(&id, &im.MIME, &im.Data); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		out[id] = append(out[id], im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("images: %w", err)
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

// Images returns the images stored with the turn that has the given id; none if it has none.
func (s *Store) Images(ctx context.Context, turnID int64) ([]Image, error) {
	ims, err := loadImages(ctx, s.r, turnID, turnID)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return ims, nil
}

// SetTranscript stores the transcript of a spoken user turn of conversation k (see
// Turn.Audio), counted for the window like any text. It returns ErrNotFound if k has no
// such turn.
func (s *Store) SetTranscript(ctx context.Context, k Key, turnID int64, text string) error {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: set transcript: %w", writeFailed(err))
	}
	defer tx.Rollback()
	var r turnRow
	err = tx.GetContext(ctx, &r, `SELECT `+turnColumns+` FROM turns
		WHERE id = ? AND role = 'user' AND audio_file_id <> ''
		  AND conversation_id = (SELECT id FROM conversations WHERE chat_id = ? AND thread_id = ?)`,
		turnID, k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("history: set transcript: %w", ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("history: set transcript: %w", writeFailed(err))
	}
	// Counted as it will be sent: with its author and the message it replies to.
	probe := r.turn()
	probe.Content = text
	n := countOf(probe.Sent())
	if _, err := tx.ExecContext(ctx, `UPDATE turns SET content = ?, char_count = ?, token_count = ? WHERE id = ?`,
		text, n.chars, n.tokens, turnID); err != nil {
		return fmt.Errorf("history: set transcript: %w", writeFailed(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: set transcript: %w", writeFailed(err))
	}
	return nil
}

// Model returns the model the conversation chose; ok is false if it chose none and the
// configured default applies.
func (s *Store) Model(ctx context.Context, k Key) (model string, ok bool, err error) {
	var m sql.NullString
	err = s.r.GetContext(ctx, &m, `SELECT model FROM conversations WHERE chat_id = ? AND thread_id = ?`,
		k.ChatID, k.ThreadID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("history: model: %w", err)
	}
	return m.String, m.Valid, nil
}

// SetModel sets the conversation's model, creating the conversation if needed.
func (s *Store) SetModel(ctx context.Context, k Key, model string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO conversations (chat_id, thread_id, model, created_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (chat_id, thread_id) DO UPDATE SET model = excluded.model`,
		k.ChatID, k.ThreadID, model, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("history: set model: %w", writeFailed(err))
	}
	return nil
}
