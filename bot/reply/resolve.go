package reply

import (
	"context"
	"errors"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/render"
	"aurabot/bot/tg"
)

// Bounds of the search for a message whose send got no answer.
const (
	// maxProbes is the most message ids tried.
	maxProbes = 24
	// missesToStop consecutive ids that do not exist end the search: Telegram numbers a chat's
	// messages densely, so the message would have been among them.
	missesToStop = 3
)

// resolve finds out what became of the send of message d.unknown, whose answer never came:
// Telegram may have posted it. The Bot API has no idempotency key, so the message is looked for
// among the ids above the highest one the reply knew when it sent: editing a message that is not
// the bot's is refused ("message can't be edited"), an id that does not exist yet is "not
// found", and editing the bot's own message returns it, with the message it replies to. A
// message found is adopted, edited to the part it must show; none found means the send never
// happened, and the part is sent again. Ids that another reply owns (the Registry's) are never
// touched.
func (d *Display) resolve(ctx context.Context, parts []render.Message, paid bool) error {
	idx := d.unknown
	p := render.Message{Text: "…"}
	if idx < len(parts) {
		p = parts[idx]
	}
	ents := p.Entities
	if d.plain {
		ents = nil
	}
	misses := 0
	for id, probes := d.floor+1, 0; probes < maxProbes && misses < missesToStop; id++ {
		if d.owns(id) || d.deps.Registry.Known(d.t.ChatID, id) {
			continue
		}
		probes++
		for {
			if !paid {
				if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
					return err
				}
			}
			paid = false
			m, err := d.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{
				ChatID: d.t.ChatID, MessageID: id, Text: p.Text, Entities: ents, LinkPreviewOptions: noPreview(),
			})
			if _, throttled := tg.RetryAfter(err); throttled {
				d.observe(err)
				continue
			}
			d.observe(err)
			switch {
			case err == nil || tg.NotModified(err):
				if err == nil && !d.repliesAsPart(idx, m.ReplyToMessage) {
					// Another reply's lost message: it finds it again, and sets its text.
					d.deps.Log.Warn("found another reply's message while looking for a lost one", "chat_id", d.t.ChatID)
					misses = 0
					break
				}
				return d.found(ctx, idx, id, p.Text, ents)
			case tg.NotOurs(err):
				misses = 0
			case tg.Gone(err):
				misses++
			case tg.Blocked(err):
				return errBlocked
			case !d.plain && len(ents) > 0 && tg.BadFormatting(err):
				d.plain = true
				ents = nil
				continue
			default:
				return err // no answer again: try later
			}
			break
		}
	}
	// Not posted: drop the placeholder, so the part is sent again.
	d.deps.Log.Info("a send whose answer was lost was not carried out; sending again", "chat_id", d.t.ChatID)
	if err := d.recordRemoved(ctx, idx); err != nil {
		return err
	}
	d.sent = append(d.sent[:idx], d.sent[idx+1:]...)
	d.unknown = -1
	return nil
}

// owns reports whether id is one of the display's messages.
func (d *Display) owns(id int) bool {
	for _, s := range d.sent {
		if s.id == id {
			return true
		}
	}
	return false
}

// repliesAsPart reports whether a message that replies to to could be part idx of this reply:
// the first part replies to the user's message, the others to nothing.
func (d *Display) repliesAsPart(idx int, to *models.Message) bool {
	if idx == 0 {
		return d.t.ReplyTo == 0 && to == nil || to != nil && to.ID == d.t.ReplyTo
	}
	return to == nil
}

// found adopts message id as part idx, now showing text.
func (d *Display) found(ctx context.Context, idx, id int, text string, ents []models.MessageEntity) error {
	d.deps.Log.Info("found a message whose send had no answer", "chat_id", d.t.ChatID, "message_id", id)
	d.sent[idx] = sentMessage{id: id, text: text, entities: ents}
	d.floor = max(d.floor, id)
	d.unknown = -1
	d.deps.Registry.Add(d.t.ChatID, id)
	if d.journal != nil {
		if err := d.journal.Sent(ctx, idx, id); err != nil {
			return errors.Join(errNotRecorded, err)
		}
	}
	return nil
}
