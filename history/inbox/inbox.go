// Package inbox is the bot's durable record of what came in and what it is doing about it:
// every incoming update, saved before its source is told it arrived, and, for each update being
// answered, the journal of the reply (the text it is about to show and the messages it is about
// to send, recorded before each call, and the sends whose outcome is unknown, until the
// messages they may have posted are found). A crash at any moment then loses nothing and
// repeats nothing: the restart handles what was never handled and finishes what was half done.
//
// Each saved update is an entry with an id of its own (Seq): Telegram numbers updates afresh,
// at random, after a week without any, so a redelivered update is recognised by its update_id
// among the entries of the last Redelivery only.
//
// Payloads are opaque bytes and message ids plain numbers: the package knows nothing of
// Telegram's types. It shares the conversation store's database (history.Store.Inbox), and its
// write errors wrap history.ErrStorageFull and ErrStorageFailing.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// Inbox is the update inbox and reply journal. It is safe for concurrent use.
type Inbox struct {
	w, r  *sqlx.DB // the store's single writer connection, and its readers
	shown shownCache
}

// New returns the inbox in the database that w writes and r reads.
func New(w, r *sqlx.DB) *Inbox { return &Inbox{w: w, r: r} }

// Redelivery is how long an update's id identifies it: Telegram redelivers for 24 hours at most,
// and numbers afresh only after a quiet week.
const Redelivery = 25 * time.Hour

// Keep is how long a handled entry and its reply's message ids stay: past Redelivery, and long
// enough that the bot's recent messages are known after a restart.
const Keep = 48 * time.Hour

// Incoming is an update as it arrived: Telegram's update_id, and the update as received.
type Incoming struct {
	ID      int64
	Payload []byte
}

// Update is one entry of the inbox.
type Update struct {
	Seq        int64 // the entry's own id
	ID         int64 // Telegram's update_id
	Payload    []byte
	ReceivedAt time.Time
	Attempts   int   // how many times its handling has started
	Reply      Reply // what was recorded of its reply, if anything
}

// ErrNotFound means the inbox has no such entry.
var ErrNotFound = errors.New("not found")

// Save stores updates in one transaction and returns the entries of those it did not have
// (an update redelivered within Redelivery is kept once), in the order given.
func (in *Inbox) Save(ctx context.Context, us []Incoming) ([]Update, error) {
	return in.save(ctx, "inbox: save", us, false)
}

// SaveUndecodable keeps an undecodable update raw, for a later version; it is never pending.
// fresh is false for a redelivery.
func (in *Inbox) SaveUndecodable(ctx context.Context, u Incoming) (fresh bool, err error) {
	saved, err := in.save(ctx, "inbox: save undecodable", []Incoming{u}, true)
	return len(saved) > 0, err
}

func (in *Inbox) save(ctx context.Context, what string, us []Incoming, undecodable bool) (fresh []Update, err error) {
	now := time.Now()
	var doneAt any // an undecodable update is done as it arrives
	if undecodable {
		doneAt = now.UnixMilli()
	}
	err = sqldb.Write(ctx, in.w, what, func(tx *sqlx.Tx) error {
		for _, u := range us {
			var seen bool
			if err := tx.GetContext(ctx, &seen, `SELECT EXISTS (SELECT 1 FROM inbox WHERE update_id = ? AND received_at > ?)`,
				u.ID, now.Add(-Redelivery).UnixMilli()); err != nil {
				return err
			}
			if seen {
				continue
			}
			var seq int64
			if err := tx.GetContext(ctx, &seq, `INSERT INTO inbox (update_id, payload, received_at, done, done_at, undecodable)
				VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`, u.ID, string(u.Payload), now.UnixMilli(), undecodable, doneAt, undecodable); err != nil {
				return fmt.Errorf("update %d: %w", u.ID, err)
			}
			fresh = append(fresh, Update{Seq: seq, ID: u.ID, Payload: u.Payload, ReceivedAt: now})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// Prune forgets the entries handled before before, with their replies' records, and reports
// how many it forgot.
func (in *Inbox) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := sqldb.Exec(ctx, in.w, "inbox: prune", `DELETE FROM inbox WHERE done = 1 AND done_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Pending returns the entries not yet finished, oldest first, each with its reply's journal.
func (in *Inbox) Pending(ctx context.Context) ([]Update, error) { return in.entries(ctx, `done = 0`) }

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
	if err := in.r.SelectContext(ctx, &rows, `SELECT seq, update_id, payload, legacy_ids,
		shown || coalesce((SELECT group_concat(d.text, '' ORDER BY d.pos) FROM inbox_shown AS d WHERE d.seq = inbox.seq), '') AS shown,
		final, notice, plain, complete, attempts, received_at
		FROM inbox WHERE `+cond+` ORDER BY seq`, args...); err != nil {
		return nil, fmt.Errorf("inbox: entries: %w", err)
	}
	out := make([]Update, 0, len(rows))
	for _, r := range rows {
		u := Update{Seq: r.Seq, ID: r.ID, Payload: []byte(r.Payload), ReceivedAt: time.UnixMilli(r.Received).UTC(), Attempts: r.Attempts,
			Reply: Reply{Text: r.Shown, Final: r.Final, Notice: r.Notice, Plain: r.Plain, Complete: r.Complete}}
		// sqlx matches each column to the field of the same name in lower case.
		if err := in.r.SelectContext(ctx, &u.Reply.Parts, `SELECT chat_id AS chatid, message_id AS id, floor, sent, tries
			FROM inbox_messages WHERE seq = ? ORDER BY idx`, r.Seq); err != nil {
			return nil, fmt.Errorf("inbox: entries: %w", err)
		}
		if len(u.Reply.Parts) == 0 && r.Legacy != "" {
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
	err := in.w.GetContext(ctx, &n, `UPDATE inbox SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts`, seq)
	return n, sqldb.Fail("inbox: attempt", err)
}

// Finish marks entry seq handled. Its reply's message ids stay known (KnownMessages) until the
// entry is pruned.
func (in *Inbox) Finish(ctx context.Context, seq int64) error {
	in.shown.forget(seq)
	_, err := sqldb.Exec(ctx, in.w, "inbox: finish", `UPDATE inbox SET done = 1, done_at = ? WHERE seq = ?`, time.Now().UnixMilli(), seq)
	return err
}
