package reply

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/render"
	"aurabot/bot/tg"
)

// Target is where a reply goes.
type Target struct {
	ChatID   int64
	ThreadID int
	ReplyTo  int // the user's message
	Group    bool
}

// Journal records, before each Telegram call, what a reply is about to do, so that a restart
// finds every message the reply may have posted and the text they must end with, whatever was
// killed or lost on the way. A nil Journal records nothing.
//
// A method that fails stops the call it precedes: the reply never shows what it could not
// record.
type Journal interface {
	// Show records the text the reply is about to show. A final record is never followed by
	// another.
	Show(ctx context.Context, s Shown) error
	// Sending records that message idx of the reply is about to be sent. floor is the highest
	// message id known in the chat: the message, if Telegram posts it, gets a higher one.
	Sending(ctx context.Context, idx int, floor int) error
	// Sent records the id Telegram gave message idx.
	Sent(ctx context.Context, idx int, id int) error
	// Removed records that message idx is gone: deleted, or never posted after all.
	Removed(ctx context.Context, idx int) error
}

// Shown is a text a reply shows.
type Shown struct {
	Text   string // Markdown (or plain, for a notice)
	Final  bool   // the complete answer, or a notice
	Notice string // the line under a final answer
	Plain  bool   // a notice: plain text, not Markdown
}

// Deps is what a reply needs from the rest of the bot.
type Deps struct {
	TG       *tg.Client
	Pacer    *pace.Pacer
	Log      *slog.Logger
	Registry *Registry // the bot's messages per chat, shared by all replies
	// Trouble, if set, is told when a reply cannot record what it is about to show (a full
	// disk): the reply waits, and the user may be told why.
	Trouble func(ctx context.Context, t Target)
}

// Display is the set of Telegram messages that show one reply. It owns them: Apply brings the
// whole set to the wanted parts (editing, sending and deleting as needed), so that no message of
// the reply is ever left behind with stale text, a cursor or a button.
type Display struct {
	deps    Deps
	t       Target
	journal Journal
	sent    []sentMessage
	plain   bool   // Telegram refused our entities once: send plain text from now on
	button  string // callback data of the Stop button on a streaming reply; "" for none
	floor   int    // highest message id this reply knows in the chat
	unknown int    // index of a message whose send has an unknown outcome, or -1
}

type sentMessage struct {
	id       int
	text     string
	entities []models.MessageEntity
	button   bool
}

// unknownText marks a message whose current text is unknown: the next Apply edits it.
const unknownText = "\x00"

// NewDisplay returns an empty display for a reply to t. button, if not "", is the callback data
// of the Stop button shown under a streaming reply.
func NewDisplay(deps Deps, t Target, j Journal, button string) *Display {
	floor := max(t.ReplyTo, deps.Registry.Max(t.ChatID))
	return &Display{deps: deps, t: t, journal: j, button: button, floor: floor, unknown: -1}
}

// Adopt makes the display own messages posted before (a reply resumed after a restart). Their
// text is unknown, so the next Apply edits each. An id of 0 is a message whose send has an
// unknown outcome: the next Apply looks for it before sending anything.
func (d *Display) Adopt(ids []int, floor int) {
	d.floor = max(d.floor, floor)
	for i, id := range ids {
		d.sent = append(d.sent, sentMessage{id: id, text: unknownText})
		if id == 0 && d.unknown < 0 {
			d.unknown = i
		}
		d.floor = max(d.floor, id)
	}
}

// IDs are the ids of the messages that show the reply.
func (d *Display) IDs() []int {
	ids := make([]int, 0, len(d.sent))
	for _, s := range d.sent {
		ids = append(ids, s.id)
	}
	return ids
}

// FirstID is the first message of the reply, 0 if none.
func (d *Display) FirstID() int {
	if len(d.sent) == 0 {
		return 0
	}
	return d.sent[0].id
}

var (
	errBlocked = errors.New("the user blocked the bot")
	// errNotRecorded means the journal could not record a call: it was not made.
	errNotRecorded = errors.New("reply: could not record what the reply is about to do")
	// errUnknownOutcome means a send got no answer: the message may exist.
	errUnknownOutcome = errors.New("reply: Telegram's answer to a send never came")
)

// Apply brings the display to parts: message i shows parts[i] (the last one with the Stop
// button while streaming), and messages beyond the parts are deleted. paid says the caller has
// already waited for one pacer slot. Final applies retry until ctx ends: the final text must
// arrive.
func (d *Display) Apply(ctx context.Context, parts []render.Message, final, paid bool) error {
	for d.unknown >= 0 {
		err := d.resolve(ctx, parts, paid)
		paid = false
		if err == nil {
			break
		}
		if !final || !retryable(err) || ctx.Err() != nil {
			return err
		}
		d.deps.Log.Warn("could not look for a lost message; trying again", "chat_id", d.t.ChatID, "err", err)
	}
	for i := 0; i < len(parts) || i < len(d.sent); i++ {
		if i >= len(parts) {
			// A message the reply no longer needs (the text renders into fewer messages now).
			if err := d.remove(ctx, i, paid); err != nil {
				return err
			}
			paid = false
			i-- // remove shortened d.sent
			continue
		}
		button := d.button != "" && !final && i == len(parts)-1
		p := parts[i]
		if i < len(d.sent) {
			s := d.sent[i]
			if s.text == p.Text && s.button == button && (d.plain || slices.Equal(s.entities, p.Entities)) {
				continue
			}
		}
		for {
			if !paid {
				if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
					return err
				}
			}
			paid = false
			err := d.put(ctx, i, p, button)
			if err != nil && errors.Is(err, errUnknownOutcome) {
				// The message may exist: find it before anything else is sent.
				if err := d.resolve(ctx, parts, false); err != nil {
					return err
				}
				if i < len(d.sent) && d.sent[i].text == p.Text {
					break
				}
				continue
			}
			if err != nil && final && retryable(err) && ctx.Err() == nil {
				d.deps.Log.Warn("final text not delivered; trying again", "chat_id", d.t.ChatID, "err", err)
				continue
			}
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// retryable reports whether sending again may succeed: not when the user blocked the bot, and
// not when Telegram refused the request itself (put has already handled the 400s it can).
func retryable(err error) bool {
	return !errors.Is(err, errBlocked) && !errors.Is(err, tgbot.ErrorBadRequest) &&
		!errors.Is(err, tgbot.ErrorUnauthorized) && !errors.Is(err, tgbot.ErrorNotFound)
}

// put sends part i as a new message or edits the message that shows it.
func (d *Display) put(ctx context.Context, i int, p render.Message, button bool) error {
	ents := p.Entities
	if d.plain {
		ents = nil
	}
	var markup models.ReplyMarkup
	if button {
		markup = tg.OneButton("⏹ Stop", d.button)
	}
	var err error
	if i < len(d.sent) {
		_, err = d.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{
			ChatID: d.t.ChatID, MessageID: d.sent[i].id, Text: p.Text, Entities: ents, ReplyMarkup: markup,
			LinkPreviewOptions: noPreview(),
		})
		if tg.NotModified(err) {
			err = nil
		}
		if tg.Gone(err) {
			// The user deleted it: this part, and every later one, go on in new messages, so
			// that the reply stays in order.
			d.observe(nil)
			for j := len(d.sent) - 1; j >= i; j-- {
				if j > i {
					if rerr := d.remove(ctx, j, true); rerr != nil {
						return rerr
					}
					continue
				}
				if jerr := d.recordRemoved(ctx, j); jerr != nil {
					return jerr
				}
				d.sent = d.sent[:j]
			}
			return d.put(ctx, i, p, button)
		}
		if err == nil {
			d.sent[i] = sentMessage{id: d.sent[i].id, text: p.Text, entities: ents, button: button}
		}
	} else {
		reply := 0
		if i == 0 {
			reply = d.t.ReplyTo
		}
		if d.journal != nil {
			if jerr := d.journal.Sending(ctx, i, d.floor); jerr != nil {
				return errors.Join(errNotRecorded, jerr)
			}
		}
		var m *models.Message
		m, err = d.deps.TG.SendMessage(ctx, &tgbot.SendMessageParams{
			ChatID: d.t.ChatID, MessageThreadID: d.t.ThreadID, Text: p.Text, Entities: ents,
			ReplyParameters: replyTo(reply), ReplyMarkup: markup, LinkPreviewOptions: noPreview(),
		})
		switch {
		case err == nil:
			d.sent = append(d.sent, sentMessage{id: m.ID, text: p.Text, entities: ents, button: button})
			d.floor = max(d.floor, m.ID)
			d.deps.Registry.Add(d.t.ChatID, m.ID)
			if d.journal != nil {
				if jerr := d.journal.Sent(ctx, i, m.ID); jerr != nil {
					// The message is out; a restart that lacks its id finds it again.
					d.deps.Log.Warn("could not record a sent message", "chat_id", d.t.ChatID, "err", jerr)
				}
			}
		case tg.Unknown(err) && ctx.Err() == nil:
			d.deps.Log.Warn("no answer to a send: looking for the message before sending again", "chat_id", d.t.ChatID, "err", err)
			d.sent = append(d.sent, sentMessage{id: 0, text: unknownText})
			d.unknown = i
			return errUnknownOutcome
		case tg.Unknown(err):
			// Cut by our own context (a stop, a shutdown): it may have gone out. The journal
			// says so; a restart finds it.
			d.sent = append(d.sent, sentMessage{id: 0, text: unknownText})
			d.unknown = i
		}
	}
	d.observe(err)
	switch {
	case err == nil:
		return nil
	case tg.Blocked(err):
		return errBlocked
	case !d.plain && len(ents) > 0 && tg.BadFormatting(err):
		// Telegram did not accept our formatting: never lose the text, send it plain.
		d.deps.Log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.ChatID, "err", err)
		d.plain = true
		return d.put(ctx, i, p, button)
	}
	return err
}

// remove deletes message i, which the reply no longer needs. If Telegram refuses to delete it
// (too old, no right to), it is blanked instead: no text of the reply, no cursor, no button.
func (d *Display) remove(ctx context.Context, i int, paid bool) error {
	s := d.sent[i]
	if s.id != 0 {
		if !paid {
			if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
				return err
			}
		}
		_, err := d.deps.TG.DeleteMessage(ctx, &tgbot.DeleteMessageParams{ChatID: d.t.ChatID, MessageID: s.id})
		d.observe(err)
		switch {
		case err == nil || tg.Gone(err):
		case tg.Unknown(err) || tg.Blocked(err):
			return err
		default:
			d.deps.Log.Debug("telegram refused to delete a message; blanking it", "chat_id", d.t.ChatID, "err", err)
			if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
				return err
			}
			_, err = d.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: d.t.ChatID, MessageID: s.id, Text: "…"})
			d.observe(err)
			if err != nil && !tg.NotModified(err) && !tg.Gone(err) {
				return err
			}
		}
	}
	if err := d.recordRemoved(ctx, i); err != nil {
		return err
	}
	d.sent = slices.Delete(d.sent, i, i+1)
	if d.unknown == i {
		d.unknown = -1
	}
	return nil
}

func (d *Display) recordRemoved(ctx context.Context, i int) error {
	if d.journal == nil {
		return nil
	}
	if err := d.journal.Removed(ctx, i); err != nil {
		return errors.Join(errNotRecorded, err)
	}
	return nil
}

// observe feeds the outcome of a call to the pacer.
func (d *Display) observe(err error) {
	if wait, ok := tg.RetryAfter(err); ok {
		d.deps.Pacer.TooMany(d.t.ChatID, wait)
		d.deps.Log.Warn("telegram flood limit", "chat_id", d.t.ChatID, "retry_after", wait)
		return
	}
	if err == nil {
		d.deps.Pacer.OK(d.t.ChatID)
	}
}

func replyTo(id int) *models.ReplyParameters {
	if id == 0 {
		return nil
	}
	return &models.ReplyParameters{MessageID: id, AllowSendingWithoutReply: true}
}

func noPreview() *models.LinkPreviewOptions {
	return &models.LinkPreviewOptions{IsDisabled: tgbot.True()}
}
