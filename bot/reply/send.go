package reply

import (
	"context"
	"errors"
	"slices"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// send posts part i as a new message under the chat's send gate, its floor and wire recorded first.
func (d *Display) send(ctx context.Context, i int, w wire) error {
	if err := d.deps.Registry.Acquire(ctx, d.t.ChatID, d.owner); err != nil {
		return err
	}
	floor := max(d.deps.Registry.Max(d.t.ChatID), d.t.ReplyTo, d.t.Seen)
	d.sent = append(d.sent, sentMessage{floor: floor, wire: w})
	err := d.post(ctx, i)
	if err != nil && i < len(d.sent) && d.sent[i].id == 0 && d.sent[i].tries == 0 {
		// Refused, or not made: no message of it can exist.
		if rerr := d.recordRemoved(ctx, i); rerr != nil {
			d.deps.Log.Warn("could not record a send that was refused", "chat_id", d.t.ChatID, "err", rerr)
		}
		d.sent = d.sent[:i]
		d.releaseIfSettled()
	}
	return err
}

// resend sends part i again, exactly as the send that had no answer, after the caller's slot.
func (d *Display) resend(ctx context.Context, i int) error {
	if err := d.deps.Registry.Acquire(ctx, d.t.ChatID, d.owner); err != nil {
		return err
	}
	return d.post(ctx, i)
}

// post records, then sends part i (id 0): it gets an id, or one more send of unknown outcome.
func (d *Display) post(ctx context.Context, i int) error {
	s := &d.sent[i]
	if d.journal != nil {
		if err := d.journal.Sending(ctx, i, Sending{Floor: s.floor, Wire: s.wire.encode(), Tries: s.tries}); err != nil {
			return errors.Join(errNotRecorded, err)
		}
	}
	reply := 0
	if i == 0 {
		reply = d.t.ReplyTo
	}
	m, err := tg.Do(ctx, d.deps.Pacer, d.deps.Log, d.t.ChatID, func(ctx context.Context) (*models.Message, error) {
		return d.deps.TG.SendMessage(ctx, &tgbot.SendMessageParams{
			ChatID: d.t.ChatID, MessageThreadID: d.t.ThreadID, Text: s.wire.Text, Entities: s.wire.Entities,
			ReplyParameters: replyTo(reply), ReplyMarkup: s.wire.markup(), LinkPreviewOptions: noPreview(),
		})
	})
	switch {
	case err == nil:
		d.posted(ctx, i, m.ID)
		return nil
	case tg.Unknown(err):
		// It may have been posted. The next Apply sends it again before anything else.
		s.tries++
		if ctx.Err() == nil {
			d.deps.Log.Warn("no answer to a send: sending it again, and looking for the first one afterwards", "chat_id", d.t.ChatID, "err", err)
		}
		return err
	case tg.BadFormatting(err) && len(s.wire.Entities) > 0:
		// Telegram refuses these entities: the sends of them that had no answer were refused
		// too, so no copy of them exists. Plain text from now on.
		d.deps.Log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.ChatID, "err", err)
		d.plain = true
		s.wire.Entities = nil
		s.tries = 0
		return d.post(ctx, i)
	case tg.Blocked(err):
		// Nobody sees the chat any more: what a lost send may have posted stays unseen, and
		// the chat's gate is free for the day the user comes back.
		for j := len(d.sent) - 1; j >= 0; j-- {
			if d.sent[j].id == 0 {
				_ = d.recordRemoved(ctx, j)
				d.sent = slices.Delete(d.sent, j, j+1)
			}
		}
		d.deps.Registry.Release(d.t.ChatID, d.owner)
		return ErrBlocked
	}
	return err
}

// posted records part i's id, and the search for what its earlier sends with no answer posted.
func (d *Display) posted(ctx context.Context, i, id int) {
	s := &d.sent[i]
	d.deps.Registry.Add(d.t.ChatID, id)
	var lost *Lost
	if s.tries > 0 {
		lost = &Lost{ChatID: d.t.ChatID, Floor: s.floor, Ceiling: id, Wire: s.wire.encode(), Copies: s.tries}
	}
	s.id, s.tries = id, 0
	if d.journal != nil {
		lostID, err := d.journal.Sent(ctx, i, id, lost)
		if err != nil {
			// The message is out; a restart that lacks its id sends it again and finds this one.
			d.deps.Log.Warn("could not record a sent message", "chat_id", d.t.ChatID, "err", err)
		} else if lost != nil {
			lost.ID = lostID
		}
	}
	if lost != nil {
		d.deps.Searcher.Add(ctx, *lost)
	}
	d.releaseIfSettled()
}

func (d *Display) releaseIfSettled() {
	if d.Settled() {
		d.deps.Registry.Release(d.t.ChatID, d.owner)
	}
}

// Close ends the display. One with no journal entry frees the send gate even when unsettled, as
// nothing would settle it; one with an entry keeps it for the reply's next display (or restart).
func (d *Display) Close() {
	if d.owner < 0 || d.Settled() {
		d.deps.Registry.Release(d.t.ChatID, d.owner)
	}
}
