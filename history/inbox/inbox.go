// Package inbox is the bot's durable record of what came in and what it is doing about it:
// every incoming update, saved before its source is told it arrived, and, for each update being
// answered, the journal of the reply: the text it is about to show and the messages it is about
// to send, recorded before each call, and the sends whose outcome is unknown, until the messages
// they may have posted are found. A crash at any moment then loses nothing and repeats nothing:
// the restart handles what was never handled and finishes what was half done.
//
// Each saved update is an entry with an id of its own (Seq): Telegram's update_id is not a key,
// as Telegram numbers updates afresh, at random, after a week without any. A redelivered update
// is recognised by its update_id among the entries of the last Redelivery only.
//
// Payloads are opaque bytes and message ids plain numbers: the package knows nothing of the
// Telegram types. It shares the conversation store's database (history.Store.Inbox).
package inbox

import (
	"context"
	"errors"
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
	// classify turns a write's error into the store's error classes (a full disk, a failing
	// one); nil leaves errors as they are.
	classify func(error) error
}

// New returns the inbox in the database that w writes and r reads. classify, if not nil, wraps
// the errors of writes (see history.Store.Inbox).
func New(w, r *sqlx.DB, classify func(error) error) *Inbox {
	return &Inbox{w: w, r: r, classify: classify}
}

// Redelivery is how long an update's id identifies it: Telegram sends an update again until it
// is confirmed, for 24 hours at most, and numbers the next update at random only after a week
// without any, so within a day an id names one update.
const Redelivery = 25 * time.Hour

// Keep is how long a handled entry (and its reply's message ids) stays in the inbox: past
// Redelivery, and long enough that the bot's recent messages are known after a restart.
const Keep = 48 * time.Hour

// Incoming is an update as it arrived.
type Incoming struct {
	ID      int64  // Telegram's update_id
	Payload []byte // exactly as received
}

// Update is one entry of the inbox.
type Update struct {
	Seq        int64  // the entry's own id
	ID         int64  // Telegram's update_id
	Payload    []byte // as received
	ReceivedAt time.Time
	Attempts   int   // how many times its handling has started
	Reply      Reply // what was recorded of its reply, if anything
}

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

func (in *Inbox) fail(what string, err error) error {
	if in.classify != nil {
		err = in.classify(err)
	}
	return fmt.Errorf("inbox: %s: %w", what, err)
}

// Save stores updates in one transaction and returns the entries of those it did not have
// (an update redelivered within Redelivery is kept once), in the order given. now is when they
// arrived.
func (in *Inbox) Save(ctx context.Context, us []Incoming) (fresh []Update, err error) {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return nil, in.fail("save", err)
	}
	defer tx.Rollback()
	now := time.Now()
	for _, u := range us {
		var seen int
		if err := tx.GetContext(ctx, &seen, `SELECT count(*) FROM inbox WHERE update_id = ? AND received_at > ?`,
			u.ID, now.Add(-Redelivery).UnixMilli()); err != nil {
			return nil, in.fail("save", err)
		}
		if seen > 0 {
			continue
		}
		var seq int64
		if err := tx.GetContext(ctx, &seq, `INSERT INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?) RETURNING seq`,
			u.ID, string(u.Payload), now.UnixMilli()); err != nil {
			return nil, in.fail(fmt.Sprintf("save update %d", u.ID), err)
		}
		fresh = append(fresh, Update{Seq: seq, ID: u.ID, Payload: u.Payload, ReceivedAt: now})
	}
	if err := tx.Commit(); err != nil {
		return nil, in.fail("save", err)
	}
	return fresh, nil
}

// SaveUndecodable keeps an update that could not be decoded, raw, for a later version to
// handle: it is never pending. It reports false for an update redelivered within Redelivery.
func (in *Inbox) SaveUndecodable(ctx context.Context, u Incoming) (bool, error) {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return false, in.fail("save undecodable", err)
	}
	defer tx.Rollback()
	now := time.Now()
	var seen int
	if err := tx.GetContext(ctx, &seen, `SELECT count(*) FROM inbox WHERE update_id = ? AND received_at > ?`,
		u.ID, now.Add(-Redelivery).UnixMilli()); err != nil {
		return false, in.fail("save undecodable", err)
	}
	if seen > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inbox (update_id, payload, received_at, done, done_at, undecodable)
		VALUES (?, ?, ?, 1, ?, 1)`, u.ID, string(u.Payload), now.UnixMilli(), now.UnixMilli()); err != nil {
		return false, in.fail(fmt.Sprintf("save undecodable update %d", u.ID), err)
	}
	if err := tx.Commit(); err != nil {
		return false, in.fail("save undecodable", err)
	}
	return true, nil
}

// Undecodable returns the raw payloads of the updates kept by SaveUndecodable, oldest first.
func (in *Inbox) Undecodable(ctx context.Context) ([]Update, error) {
	var rows []struct {
		Seq     int64  `db:"seq"`
		ID      int64  `db:"update_id"`
		Payload string `db:"payload"`
		At      int64  `db:"received_at"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT seq, update_id, payload, received_at FROM inbox
		WHERE undecodable = 1 ORDER BY seq`); err != nil {
		return nil, fmt.Errorf("inbox: undecodable: %w", err)
	}
	out := make([]Update, 0, len(rows))
	for _, r := range rows {
		out = append(out, Update{Seq: r.Seq, ID: r.ID, Payload: []byte(r.Payload), ReceivedAt: time.UnixMilli(r.At).UTC()})
	}
	return out, nil
}

// Prune forgets the entries handled before before, with their replies' records, and reports
// how many it forgot.
func (in *Inbox) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := in.w.ExecContext(ctx, `DELETE FROM inbox WHERE done = 1 AND done_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, in.fail("prune", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Pending returns the entries not yet finished, oldest first, each with its reply's journal.
func (in *Inbox) Pending(ctx context.Context) ([]Update, error) {
	return in.entries(ctx, `done = 0`)
}

// Get returns entry seq with its reply's journal.
func (in *Inbox) Get(ctx context.Context, seq int64) (Update, error) {
	us, err := in.entries(ctx, `seq = ?`, seq)
	if err != nil {
		return Update{}, err
	}
	if len(us) == 0 {
		return Update{}, fmt.Errorf("inbox: entry %d: %w", seq, ErrNotFound)
	}
	return us[0], nil
}

// ErrNotFound means the inbox has no such entry.
var ErrNotFound = errors.New("not found")

// entries returns the entries where cond holds, oldest first, with their journals.
func (in *Inbox) entries(ctx context.Context, cond string, args ...any) ([]Update, error) {
	var rows []struct {
		Seq      int64  `db:"seq"`
		ID       int64  `db:"update_id"`
		Payload  string `db:"payload"`
		Legacy   string `db:"legacy_ids"`
		Shown    string `db:"shown"`
		Final    bool   `db:"final"`
		Notice   string `db:"notice"`
		Plain    bool   `db:"plain"`
		Complete bool   `db:"complete"`
		Attempts int    `db:"attempts"`
		Received int64  `db:"received_at"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT seq, update_id, payload, legacy_ids, shown, final, notice, plain, complete, attempts, received_at
		FROM inbox WHERE `+cond+` ORDER BY seq`, args...); err != nil {
		return nil, fmt.Errorf("inbox: entries: %w", err)
	}
	out := make([]Update, 0, len(rows))
	for _, r := range rows {
		u := Update{Seq: r.Seq, ID: r.ID, Payload: []byte(r.Payload), ReceivedAt: time.UnixMilli(r.Received).UTC(), Attempts: r.Attempts,
			Reply: Reply{Text: r.Shown, Final: r.Final, Notice: r.Notice, Plain: r.Plain, Complete: r.Complete}}
		var parts []struct {
			Chat  int64  `db:"chat_id"`
			ID    int64  `db:"message_id"`
			Floor int64  `db:"floor"`
			Sent  string `db:"sent"`
			Tries int    `db:"tries"`
		}
		if err := in.r.SelectContext(ctx, &parts, `SELECT chat_id, message_id, floor, sent, tries FROM inbox_messages
			WHERE seq = ? ORDER BY idx`, r.Seq); err != nil {
			return nil, fmt.Errorf("inbox: entries: %w", err)
		}
		for _, p := range parts {
			u.Reply.Parts = append(u.Reply.Parts, Part{ChatID: p.Chat, ID: p.ID, Floor: p.Floor, Sent: []byte(p.Sent), Tries: p.Tries})
		}
		if len(parts) == 0 && r.Legacy != "" {
			// Recorded by a version before the journal: message ids, comma-separated.
			for f := range strings.SplitSeq(r.Legacy, ",") {
				if id, err := strconv.ParseInt(f, 10, 64); err == nil {
					u.Reply.Parts = append(u.Reply.Parts, Part{ID: id})
				}
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// Attempt records that the handling of entry seq starts, and returns how many times it has
// started, this one included.
func (in *Inbox) Attempt(ctx context.Context, seq int64) (int, error) {
	var n int
	if err := in.w.GetContext(ctx, &n, `UPDATE inbox SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts`, seq); err != nil {
		return 0, in.fail("attempt", err)
	}
	return n, nil
}

// RecordText records the text entry seq's reply is about to show (r's Text, Final, Notice,
// Plain and Complete). A final record (the complete answer, or a notice) is not replaced by a
// later one that is not final.
func (in *Inbox) RecordText(ctx context.Context, seq int64, r Reply) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE inbox SET shown = ?, final = ?, notice = ?, plain = ?, complete = ?
		WHERE seq = ? AND (final = 0 OR ?)`, r.Text, r.Final, r.Notice, r.Plain, r.Complete, seq, r.Final); err != nil {
		return in.fail("record text", err)
	}
	return nil
}

// RecordSending records that message idx of entry seq's reply is about to be sent in a chat:
// p says where (ChatID), above which id (Floor), what (Sent) and after how many sends of it
// with an unknown outcome (Tries). Its id is 0 until RecordSent.
func (in *Inbox) RecordSending(ctx context.Context, seq int64, idx int, p Part) error {
	if _, err := in.w.ExecContext(ctx, `INSERT INTO inbox_messages (seq, idx, chat_id, message_id, floor, sent, tries)
		VALUES (?, ?, ?, 0, ?, ?, ?)
		ON CONFLICT (seq, idx) DO UPDATE SET chat_id = excluded.chat_id, message_id = 0, floor = excluded.floor,
			sent = excluded.sent, tries = excluded.tries`,
		seq, idx, p.ChatID, p.Floor, string(p.Sent), p.Tries); err != nil {
		return in.fail("record sending", err)
	}
	return nil
}

// RecordSent records the id Telegram gave message idx of entry seq's reply. When earlier sends
// of it had no answer (lost is not nil), the search for the messages they may have posted is
// recorded with it, in one transaction, and its id returned.
func (in *Inbox) RecordSent(ctx context.Context, seq int64, idx int, messageID int64, lost *Lost) (int64, error) {
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return 0, in.fail("record sent", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET message_id = ?, tries = 0 WHERE seq = ? AND idx = ?`,
		messageID, seq, idx); err != nil {
		return 0, in.fail("record sent", err)
	}
	id, err := addLost(ctx, tx, lost)
	if err != nil {
		return 0, in.fail("record sent", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, in.fail("record sent", err)
	}
	return id, nil
}

// AddLost records a search for the messages a lost send may have posted (for a reply without a
// journal entry of its own) and returns its id.
func (in *Inbox) AddLost(ctx context.Context, lost Lost) (int64, error) {
	id, err := addLost(ctx, in.w, &lost)
	if err != nil {
		return 0, in.fail("add lost", err)
	}
	return id, nil
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
	tx, err := in.w.BeginTxx(ctx, nil)
	if err != nil {
		return in.fail("record removed", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM inbox_messages WHERE seq = ? AND idx = ?`, seq, idx); err != nil {
		return in.fail("record removed", err)
	}
	// Through a negative detour: the primary key forbids two rows with one idx on the way.
	if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET idx = -(idx - 1) WHERE seq = ? AND idx > ?`, seq, idx); err != nil {
		return in.fail("record removed", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE inbox_messages SET idx = -idx WHERE seq = ? AND idx < 0`, seq); err != nil {
		return in.fail("record removed", err)
	}
	if err := tx.Commit(); err != nil {
		return in.fail("record removed", err)
	}
	return nil
}

// Finish marks entry seq handled. Its reply's message ids stay known (KnownMessages) until the
// entry is pruned.
func (in *Inbox) Finish(ctx context.Context, seq int64) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE inbox SET done = 1, done_at = ? WHERE seq = ?`,
		time.Now().UnixMilli(), seq); err != nil {
		return in.fail("finish", err)
	}
	return nil
}

// KnownMessages returns the message ids of every reply the inbox remembers, per chat: a search
// for a lost message never touches these, which belong to other replies.
func (in *Inbox) KnownMessages(ctx context.Context) (map[int64][]int64, error) {
	var rows []struct {
		Chat int64 `db:"chat_id"`
		ID   int64 `db:"message_id"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT chat_id, message_id FROM inbox_messages WHERE message_id <> 0`); err != nil {
		return nil, fmt.Errorf("inbox: known messages: %w", err)
	}
	out := map[int64][]int64{}
	for _, r := range rows {
		out[r.Chat] = append(out[r.Chat], r.ID)
	}
	return out, nil
}

// LostSends returns the searches for lost messages not yet done, oldest first.
func (in *Inbox) LostSends(ctx context.Context) ([]Lost, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Chat    int64  `db:"chat_id"`
		Floor   int64  `db:"floor"`
		Ceiling int64  `db:"ceiling"`
		Sent    string `db:"sent"`
		Copies  int    `db:"copies"`
		Lo      int64  `db:"lo"`
		Hi      int64  `db:"hi"`
	}
	if err := in.r.SelectContext(ctx, &rows, `SELECT id, chat_id, floor, ceiling, sent, copies, lo, hi FROM lost_sends ORDER BY id`); err != nil {
		return nil, fmt.Errorf("inbox: lost sends: %w", err)
	}
	out := make([]Lost, 0, len(rows))
	for _, r := range rows {
		out = append(out, Lost{ID: r.ID, ChatID: r.Chat, Floor: r.Floor, Ceiling: r.Ceiling, Sent: []byte(r.Sent), Copies: r.Copies, Lo: r.Lo, Hi: r.Hi})
	}
	return out, nil
}

// Searched records how far the search for lost send id has come, and how many copies may still
// be out there.
func (in *Inbox) Searched(ctx context.Context, id, lo, hi int64, copies int) error {
	if _, err := in.w.ExecContext(ctx, `UPDATE lost_sends SET lo = ?, hi = ?, copies = ? WHERE id = ?`, lo, hi, copies, id); err != nil {
		return in.fail("searched", err)
	}
	return nil
}

// SearchDone forgets the search for lost send id: every copy was found, or the whole range
// looked at.
func (in *Inbox) SearchDone(ctx context.Context, id int64) error {
	if _, err := in.w.ExecContext(ctx, `DELETE FROM lost_sends WHERE id = ?`, id); err != nil {
		return in.fail("search done", err)
	}
	return nil
}
