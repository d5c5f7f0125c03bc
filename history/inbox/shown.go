package inbox

import (
	"context"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// RecordText records the text entry seq's reply is about to show. A final record (the complete
// answer, or a notice) is not replaced by a later one that is not final.
//
// When r extends the streaming text this inbox last recorded for seq, only the new end is written
// (a row of inbox_shown): an edit of a long answer costs what it adds. Anything else (a changed
// text, a final one, the first record after a restart or a failed write) writes the whole text
// and drops the ends recorded before it.
func (in *Inbox) RecordText(ctx context.Context, seq int64, r Reply) error {
	streaming := !r.Final && r.Notice == "" && !r.Plain && !r.Complete
	if last, ok := in.shown.get(seq); ok && streaming && len(r.Text) > len(last) && strings.HasPrefix(r.Text, last) {
		_, err := sqldb.Exec(ctx, in.w, "inbox: record text", `INSERT INTO inbox_shown (seq, pos, text) VALUES (?, ?, ?)`,
			seq, len(last), r.Text[len(last):])
		if err != nil {
			in.shown.forget(seq)
			return err
		}
		in.shown.set(seq, r.Text)
		return nil
	}
	in.shown.forget(seq)
	err := sqldb.Write(ctx, in.w, "inbox: record text", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE inbox SET shown = ?, final = ?, notice = ?, plain = ?, complete = ?
			WHERE seq = ? AND (final = 0 OR ?)`, r.Text, r.Final, r.Notice, r.Plain, r.Complete, seq, r.Final)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			_, err = tx.ExecContext(ctx, `DELETE FROM inbox_shown WHERE seq = ?`, seq)
		}
		return err
	})
	if err == nil && streaming {
		in.shown.set(seq, r.Text)
	}
	return err
}

// maxShownCached bounds the texts remembered for RecordText; past it, whole texts are written.
const maxShownCached = 4096

// shownCache remembers, per entry, the text last recorded for a streaming reply (not a copy).
type shownCache struct {
	mu   sync.Mutex
	last map[int64]string
}

func (c *shownCache) get(seq int64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.last[seq]
	return s, ok
}

func (c *shownCache) set(seq int64, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[int64]string{}
	}
	if _, ok := c.last[seq]; ok || len(c.last) < maxShownCached {
		c.last[seq] = text
	}
}

func (c *shownCache) forget(seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.last, seq)
}
