package history

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Update is one entry of the update inbox: an incoming update kept until it has been handled.
type Update struct {
	ID      int64  // Telegram's update_id
	Payload []byte // the update as received (JSON)
	// MessageIDs and Shown describe the reply that was streaming for this update, if any: the
	// Telegram messages it posted and the text they showed last.
	MessageIDs []int64
	Shown      string
	ReceivedAt time.Time
}

// keepDone is how long handled updates stay in the inbox (for redelivery checks).
const keepDone = 24 * time.Hour

// SaveUpdates stores updates in the inbox in one transaction and returns the ids of those it did
// not have before (a redelivered update is kept once), in the order given.
func (s *Store) SaveUpdates(ctx context.Context, us []Update) (fresh []int64, err error) {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("history: save updates: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	for _, u := range us {
		res, err := tx.ExecContext(ctx, `INSERT INTO updates (update_id, payload, received_at) VALUES (?, ?, ?)
			ON CONFLICT (update_id) DO NOTHING`, u.ID, string(u.Payload), now)
		if err != nil {
			return nil, fmt.Errorf("history: save update %d: %w", u.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			fresh = append(fresh, u.ID)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("history: save updates: %w", err)
	}
	return fresh, nil
}

// PendingUpdates returns the updates not yet finished, oldest first. It also forgets updates
// finished more than a day ago (all but the newest, which LastUpdateID needs).
func (s *Store) PendingUpdates(ctx context.Context) ([]Update, error) {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM updates WHERE done = 1 AND done_at < ?
		AND update_id < (SELECT max(update_id) FROM updates)`, time.Now().Add(-keepDone).UnixMilli()); err != nil {
		return nil, fmt.Errorf("history: prune updates: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT update_id, payload, message_ids, shown, received_at
		FROM updates WHERE done = 0 ORDER BY update_id`)
	if err != nil {
		return nil, fmt.Errorf("history: pending updates: %w", err)
	}
	defer rows.Close()
	var out []Update
	for rows.Next() {
		var (
			u        Update
			payload  string
			ids      string
			received int64
		)
		if err := rows.Scan(&u.ID, &payload, &ids, &u.Shown, &received); err != nil {
			return nil, fmt.Errorf("history: pending updates: %w", err)
		}
		u.Payload = []byte(payload)
		u.ReceivedAt = unixMilli(received)
		for f := range strings.SplitSeq(ids, ",") {
			if id, err := strconv.ParseInt(f, 10, 64); err == nil {
				u.MessageIDs = append(u.MessageIDs, id)
			}
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: pending updates: %w", err)
	}
	return out, nil
}

// LastUpdateID is the highest update_id ever saved, 0 if none: polling resumes after it.
func (s *Store) LastUpdateID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.r.GetContext(ctx, &id, `SELECT coalesce(max(update_id), 0) FROM updates`); err != nil {
		return 0, fmt.Errorf("history: last update: %w", err)
	}
	return id, nil
}

// RecordReply remembers the messages a streaming reply has posted and the text they show.
func (s *Store) RecordReply(ctx context.Context, updateID int64, messageIDs []int64, shown string) error {
	ids := make([]string, len(messageIDs))
	for i, id := range messageIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE updates SET message_ids = ?, shown = ? WHERE update_id = ?`,
		strings.Join(ids, ","), shown, updateID); err != nil {
		return fmt.Errorf("history: record reply: %w", err)
	}
	return nil
}

// Finish marks an update handled. If answer is not nil it is appended to conversation k in the
// same transaction, so an answer is stored exactly when its update is finished.
func (s *Store) Finish(ctx context.Context, updateID int64, k Key, answer *Turn) error {
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: finish: %w", err)
	}
	defer tx.Rollback()
	now := time.Now()
	if answer != nil {
		t, err := prepare(*answer, now)
		if err != nil {
			return fmt.Errorf("history: finish: %w", err)
		}
		if _, _, err := appendTx(ctx, tx, k, t, now); err != nil {
			return fmt.Errorf("history: finish: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE updates SET done = 1, done_at = ?, shown = '' WHERE update_id = ?`,
		now.UnixMilli(), updateID); err != nil {
		return fmt.Errorf("history: finish: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: finish: %w", err)
	}
	return nil
}
