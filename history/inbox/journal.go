package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// Reply is the journal of one update's reply.
type Reply struct {
	Parts  []Part // the reply's messages in order
	Text   string // the text the reply was about to show last
	Final  bool   // Text is the complete answer, or a notice
	Notice string // the line under a final answer
	Plain  bool   // a notice, in plain text
	// Complete: the final answer is whole (no notice, or one about an output limit).
	Complete bool
}

// Part is one message of a reply.
type Part struct {
	ChatID int64
	ID     int64 // the message id; 0 while a send of it has no answer
	// Floor is the highest message id known in the chat when the part was first sent: a
	// message that a send of it posted has a higher id.
	Floor int64
	// Sent is what the send carried (opaque to the inbox); empty for parts recorded by an
	// older version.
	Sent []byte
	// Tries counts the sends of it, before the last one, whose outcome is unknown.
	Tries int
}

// Lost is a send that may have posted messages whose ids nobody knows: Copies messages showing
// Sent may lie strictly between Floor and Ceiling in the chat.
type Lost struct {
	ID             int64
	ChatID         int64
	Floor, Ceiling int64
	Sent           []byte
	Copies         int
	// Lo and Hi are how far the search has come: every id in (Floor, Lo) and in (Hi, Ceiling)
	// has been looked at.
	Lo, Hi int64
}

// RecordSending records that message idx of entry seq's reply, p, is about to be sent; its id is
// 0 until RecordSent.
func (in *Inbox) RecordSending(ctx context.Context, seq int64, idx int, p Part) error {
	_, err := sqldb.Exec(ctx, in.w, "inbox: record sending", `INSERT INTO inbox_messages (seq, idx, chat_id, message_id, floor, sent, tries)
		VALUES (?, ?, ?, 0, ?, ?, ?)
		ON CONFLICT (seq, idx) DO UPDATE SET chat_id = excluded.chat_id, message_id = 0, floor = excluded.floor,
			sent = excluded.sent, tries = excluded.tries`,
		seq, idx, p.ChatID, p.Floor, string(p.Sent), p.Tries)
	return err
}

// RecordSent records the id Telegram gave message idx of entry seq's reply, and in the same
// transaction, when earlier sends had no answer (lost), the search for what they may have posted,
// returning its id.
func (in *Inbox) RecordSent(ctx context.Context, seq int64, idx int, messageID int64, lost *Lost) (id int64, err error) {
	err = sqldb.Write(ctx, in.w, "inbox: record sent", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET message_id = ?, tries = 0 WHERE seq = ? AND idx = ?`,
			messageID, seq, idx); err != nil {
			return err
		}
		id, err = addLost(ctx, tx, lost)
		return err
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// AddLost records a search for the messages a lost send may have posted (for a reply without a
// journal entry of its own) and returns its id.
func (in *Inbox) AddLost(ctx context.Context, lost Lost) (int64, error) {
	id, err := addLost(ctx, in.w, &lost)
	return id, sqldb.Fail("inbox: add lost", err)
}

func addLost(ctx context.Context, q sqlx.QueryerContext, lost *Lost) (int64, error) {
	if lost == nil {
		return 0, nil
	}
	var id int64
	err := sqlx.GetContext(ctx, q, &id, `INSERT INTO lost_sends (chat_id, floor, ceiling, sent, copies, lo, hi, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		lost.ChatID, lost.Floor, lost.Ceiling, string(lost.Sent), lost.Copies, lost.Floor+1, lost.Ceiling-1, time.Now().UnixMilli())
	return id, err
}

// RecordRemoved records that message idx of entry seq's reply is gone; the later ones move up.
func (in *Inbox) RecordRemoved(ctx context.Context, seq int64, idx int) error {
	return sqldb.Write(ctx, in.w, "inbox: record removed", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM inbox_messages WHERE seq = ? AND idx = ?`, seq, idx)
		if err == nil {
			// Through a negative detour: the primary key forbids two rows with one idx on the way.
			_, err = tx.ExecContext(ctx, `UPDATE inbox_messages SET idx = -(idx - 1) WHERE seq = ? AND idx > ?`, seq, idx)
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE inbox_messages SET idx = -idx WHERE seq = ? AND idx < 0`, seq)
		}
		return err
	})
}

// KnownMessages returns the message ids of every reply the inbox remembers, per chat: a search
// for a lost message never touches these, which belong to other replies.
func (in *Inbox) KnownMessages(ctx context.Context) (map[int64][]int64, error) {
	var parts []Part
	if err := in.r.SelectContext(ctx, &parts, `SELECT chat_id AS chatid, message_id AS id FROM inbox_messages WHERE message_id <> 0`); err != nil {
		return nil, fmt.Errorf("inbox: known messages: %w", err)
	}
	out := map[int64][]int64{}
	for _, p := range parts {
		out[p.ChatID] = append(out[p.ChatID], p.ID)
	}
	return out, nil
}

// LostSends returns the searches for lost messages not yet done, oldest first.
func (in *Inbox) LostSends(ctx context.Context) ([]Lost, error) {
	out := []Lost{}
	if err := in.r.SelectContext(ctx, &out, `SELECT id, chat_id AS chatid, floor, ceiling, sent, copies, lo, hi
		FROM lost_sends ORDER BY id`); err != nil {
		return nil, fmt.Errorf("inbox: lost sends: %w", err)
	}
	return out, nil
}

// Searched records how far the search for lost send id has come, and how many copies may still
// be out there.
func (in *Inbox) Searched(ctx context.Context, id, lo, hi int64, copies int) error {
	_, err := sqldb.Exec(ctx, in.w, "inbox: searched", `UPDATE lost_sends SET lo = ?, hi = ?, copies = ? WHERE id = ?`, lo, hi, copies, id)
	return err
}

// SearchDone forgets the search for lost send id: every copy was found, or the whole range
// looked at.
func (in *Inbox) SearchDone(ctx context.Context, id int64) error {
	_, err := sqldb.Exec(ctx, in.w, "inbox: search done", `DELETE FROM lost_sends WHERE id = ?`, id)
	return err
}
