// Package inbox is the bot's durable record of what came in and what it is doing about it:
// every incoming update, saved before its source is told it arrived, and, for each update being
// answered, the journal of the reply: the text it is about to show and the messages it is about
// to send, recorded before each call. A crash at any moment then loses nothing and repeats
// nothing: the restart handles what was never handled and finishes what was half done.
//
// Payloads are opaque bytes and message ids plain numbers: the package knows nothing of the
// Telegram types. It shares the conversation store's database (history.Store.Inbox).
package inbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Inbox is the update inbox and reply journal. It is safe for concurrent use.
type Inbox struct {
	w *sqlx.DB // the store's single writer connection
	r *sqlx.DB // its readers
}

// New returns the inbox in the database that w writes and r reads.
func New(w, r *sqlx.DB) *Inbox { return &Inbox{w: w, r: r} }

// Update is one entry of the inbox.
type Update struct {
	ID         int64  // the update's id
	Payload    []byte // as received
	ReceivedAt time.Time
	Reply      Reply // what was recorded of its reply, if anything
}

// Reply is the journal of one update's reply.
type Reply struct {
	// MessageIDs are the reply's messages in order; 0 is one whose send had no answer.
	MessageIDs []int64
	Floor      int64  // the highest message id known in the chat when a send was intended
	Text       string // the text the reply was about to show last
	Final      bool   // Text is the complete answer, or a notice
	Notice     string // the line under a final answer
	Plain      bool   // a notice, in plain text
}

// keepDone is how long handled updates (and their replies' message ids) stay in the inbox.
const keepDone = 24 * time.Hour

// Save stores updates in one transaction and returns the ids of those it did not have before
// (a redelivered update is kept once), in the order given.
func (in *Inbox) Save(ctx context.Context, us []Update) (fresh []int64, err error) {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("inbox: save: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	for _, u := range us {
		res, err := tx.ExecContext(ctx, `INSERT INTO updates (update_id, payload, received_at) VALUES (?, ?, ?)
			ON CONFLICT (update_id) DO NOTHING`, u.ID, string(u.Payload), now)
		if err != nil {
			return nil, fmt.Errorf("inbox: save update %d: %w", u.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			fresh = append(fresh, u.ID)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("inbox: save: %w", err)
	}
	return fresh, nil
}

// SaveUndecodable keeps an update that could not be decoded, raw, for a later version to
// handle: it is never pending, but it counts for LastUpdateID, so polling moves past it.
func (in *Inbox) SaveUndecodable(ctx context.Context, id int64, payload []byte) error {
	now := time.Now().UnixMilli()
	if _, err := in.w.ExecContext(ctx, `INSERT INTO updates (update_id, payload, received_at, done, done_at, undecodable)
		VALUES (?, ?, ?, 1, ?, 1) ON CONFLICT (update_id) DO NOTHING`, id, string(payload), now, now); err != nil {
		return fmt.Errorf("inbox: save undecodable update %d: %w", id, err)
	}
	return nil
}

// Undecodable returns the raw payloads of the updates kept by SaveUndecodable, oldest first.
func (in *Inbox) Undecodable(ctx context.Context) ([]Update, error) {
	var rows []struct {
		ID      int64  `db:"update_id"`
		Payload string `db:"payload"`
		At      int64  `db:"received_at"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT update_id, payload, received_at FROM updates
		WHERE undecodable = 1 ORDER BY update_id`); err != nil {
		return nil, fmt.Errorf("inbox: undecodable: %w", err)
	}
	out := make([]Update, 0, len(rows))
	for _, r := range rows {
		out = append(out, Update{ID: r.ID, Payload: []byte(r.Payload), ReceivedAt: time.UnixMilli(r.At).UTC()})
	}
	return out, nil
}

// Pending returns the updates not yet finished, oldest first, each with its reply's journal. It
// also forgets updates finished more than a day ago (all but the newest, which LastUpdateID
// needs), with their replies' records.
func (in *Inbox) Pending(ctx context.Context) ([]Update, error) {
	if _, err := in.w.ExecContext(ctx, `DELETE FROM updates WHERE done = 1 AND done_at < ?
		AND update_id < (SELECT max(update_id) FROM updates)`, time.Now().Add(-keepDone).UnixMilli()); err != nil {
		return nil, fmt.Errorf("inbox: prune: %w", err)
	}
	var rows []struct {
		ID       int64  `db:"update_id"`
		Payload  string `db:"payload"`
		Legacy   string `db:"message_ids"`
		Shown    string `db:"shown"`
		Final    bool   `db:"final"`
		Notice   string `db:"notice"`
		Plain    bool   `db:"plain"`
		Floor    int64  `db:"floor"`
		Received int64  `db:"received_at"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT update_id, payload, message_ids, shown, final, notice, plain, floor, received_at
		FROM updates WHERE done = 0 ORDER BY update_id`); err != nil {
		return nil, fmt.Errorf("inbox: pending: %w", err)
	}
	out := make([]Update, 0, len(rows))
	for _, r := range rows {
		u := Update{ID: r.ID, Payload: []byte(r.Payload), ReceivedAt: time.UnixMilli(r.Received).UTC(), Reply: Reply{
			Text: r.Shown, Final: r.Final, Notice: r.Notice, Plain: r.Plain, Floor: r.Floor,
		}}
		var ids []int64
		if err := in.r.SelectContext(ctx, &ids, `SELECT message_id FROM reply_messages WHERE update_id = ? ORDER BY idx`, r.ID); err != nil {
			return nil, fmt.Errorf("inbox: pending: %w", err)
		}
		if len(ids) == 0 && r.Legacy != "" {
			// Recorded by a version before the journal: message ids, comma-separated.
			for f := range strings.SplitSeq(r.Legacy, ",") {
				if id, err := strconv.ParseInt(f, 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
		}
		u.Reply.MessageIDs = ids
		out = append(out, u)
	}
	return out, nil
}

// LastUpdateID is the highest update id ever saved, 0 if none: polling resumes after it.
func (in *Inbox) LastUpdateID(ctx context.Context) (int64, error) {
	var id int64
	if err := in.r.GetContext(ctx, &id, `SELECT coalesce(max(update_id), 0) FROM updates`); err != nil {
		return 0, fmt.Errorf("inbox: last update: %w", err)
	}
	return id, nil
}

// RecordText records the text update's reply is about to show. A final record (the complete
// answer, or a notice) is not replaced by a later one that is not final.
func (in *Inbox) RecordText(ctx context.Context, update int64, text string, final bool, notice string, plain bool) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE updates SET shown = ?, final = ?, notice = ?, plain = ?
		WHERE update_id = ? AND (final = 0 OR ?)`, text, final, notice, plain, update, final); err != nil {
		return fmt.Errorf("inbox: record text: %w", err)
	}
	return nil
}

// RecordSending records that message idx of update's reply is about to be sent in chat; floor
// is the highest message id known there.
func (in *Inbox) RecordSending(ctx context.Context, update, chat int64, idx int, floor int64) error {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inbox: record sending: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM reply_messages WHERE update_id = ? AND idx = ?`, update, idx); err != nil {
		return fmt.Errorf("inbox: record sending: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO reply_messages (update_id, idx, chat_id) VALUES (?, ?, ?)`, update, idx, chat); err != nil {
		return fmt.Errorf("inbox: record sending: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE updates SET floor = max(floor, ?) WHERE update_id = ?`, floor, update); err != nil {
		return fmt.Errorf("inbox: record sending: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: record sending: %w", err)
	}
	return nil
}

// RecordSent records the id Telegram gave message idx of update's reply.
func (in *Inbox) RecordSent(ctx context.Context, update int64, idx int, messageID int64) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE reply_messages SET message_id = ? WHERE update_id = ? AND idx = ?`,
		messageID, update, idx); err != nil {
		return fmt.Errorf("inbox: record sent: %w", err)
	}
	return nil
}

// RecordRemoved records that message idx of update's reply is gone; the later ones move up.
func (in *Inbox) RecordRemoved(ctx context.Context, update int64, idx int) error {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inbox: record removed: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM reply_messages WHERE update_id = ? AND idx = ?`, update, idx); err != nil {
		return fmt.Errorf("inbox: record removed: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE reply_messages SET idx = idx - 1 WHERE update_id = ? AND idx > ?`, update, idx); err != nil {
		return fmt.Errorf("inbox: record removed: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: record removed: %w", err)
	}
	return nil
}

// Finish marks an update handled. Its reply's message ids stay known (KnownMessages) until the
// update is forgotten.
func (in *Inbox) Finish(ctx context.Context, update int64) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE updates SET done = 1, done_at = ? WHERE update_id = ?`,
		time.Now().UnixMilli(), update); err != nil {
		return fmt.Errorf("inbox: finish: %w", err)
	}
	return nil
}

// KnownMessages returns the message ids of every reply the inbox remembers, per chat: a reply
// looking for a lost message never touches these, which belong to other replies.
func (in *Inbox) KnownMessages(ctx context.Context) (map[int64][]int64, error) {
	var rows []struct {
		Chat int64 `db:"chat_id"`
		ID   int64 `db:"message_id"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT chat_id, message_id FROM reply_messages WHERE message_id <> 0`); err != nil {
		return nil, fmt.Errorf("inbox: known messages: %w", err)
	}
	out := map[int64][]int64{}
	for _, r := range rows {
		out[r.Chat] = append(out[r.Chat], r.ID)
	}
	return out, nil
}
