package reply

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/render"
	"aurabot/bot/tg"
)

// Deps is what a reply needs from the rest of the bot.
type Deps struct {
	TG       *tg.Client
	Pacer    *pace.Pacer
	Log      *slog.Logger
	Registry *Registry // the messages and send gates of each chat, shared by all replies
	Searcher *Searcher // looks for the copies lost sends may have posted; nil: none is looked for
	// Trouble, if set, is told when a reply cannot record what it is about to show: it waits.
	Trouble func(ctx context.Context, t Target, err error)
}

// Display owns the Telegram messages that show one reply: Apply edits, sends and deletes so that
// none is left behind with stale text, a cursor or a button.
type Display struct {
	deps    Deps
	t       Target
	journal Journal
	owner   Owner
	sent    []sentMessage
	plain   bool   // Telegram refused our entities once: send plain text from now on
	button  string // callback data of the Stop button on a streaming reply; "" for none
}

// sentMessage is a message of the reply and what it shows, or, while id is 0 (a send whose
// outcome is unknown), what its send carried, its floor and how many of its sends had no answer.
type sentMessage struct {
	id    int
	wire  wire
	floor int
	tries int
}

// wire is exactly what a send carries: an edit with it finds a lost send's copy "not modified".
type wire struct {
	Text     string                 `json:"text"`
	Entities []models.MessageEntity `json:"entities,omitempty"`
	Button   string                 `json:"button,omitempty"` // callback data of the Stop button
}

func (w wire) markup() models.ReplyMarkup {
	if w.Button == "" {
		return nil
	}
	return tg.OneButton("⏹ Stop", w.Button)
}

func (w wire) edit(chat int64, id int) *tgbot.EditMessageTextParams {
	return &tgbot.EditMessageTextParams{
		ChatID: chat, MessageID: id, Text: w.Text, Entities: w.Entities, ReplyMarkup: w.markup(),
		LinkPreviewOptions: noPreview(),
	}
}

func (w wire) encode() []byte {
	b, _ := json.Marshal(w)
	return b
}

func decodeWire(b []byte) (wire, bool) {
	var w wire
	return w, len(b) > 0 && json.Unmarshal(b, &w) == nil && w.Text != ""
}

// unknownText marks a message whose current text is unknown: the next Apply edits it.
const unknownText = "\x00"

// anonymous numbers the owners of replies that have no inbox entry.
var anonymous atomic.Int64

func ownerOf(j Journal) Owner {
	if j != nil {
		return j.Owner()
	}
	return Owner(-anonymous.Add(1))
}

// NewDisplay returns an empty display for a reply to t, recorded in j (nil: not recorded), with
// button ("": none) as the callback data of its Stop button while it streams.
func NewDisplay(deps Deps, t Target, j Journal, button string) *Display {
	return &Display{deps: deps, t: t, journal: j, owner: ownerOf(j), button: button}
}

// Adopt takes over the messages a reply posted before a restart, as the journal recorded them:
// the next Apply edits each, after sending again, exactly as it was, one whose send had no answer.
func (d *Display) Adopt(parts []RecordedPart) {
	for _, p := range parts {
		s := sentMessage{id: p.ID, wire: wire{Text: unknownText}, floor: p.Floor, tries: p.Tries}
		if p.ID == 0 {
			s.tries++ // the send in flight when the bot stopped
			var ok bool
			if s.wire, ok = decodeWire(p.Wire); !ok {
				s.wire = wire{Text: "…"} // recorded by an older version: any text finds it
			}
		}
		d.sent = append(d.sent, s)
	}
}

// FirstID is the first message of the reply, 0 if none (or not known).
func (d *Display) FirstID() int {
	if len(d.sent) == 0 {
		return 0
	}
	return d.sent[0].id
}

// Settled reports whether no send of the reply is left whose outcome is unknown.
func (d *Display) Settled() bool {
	return !slices.ContainsFunc(d.sent, func(s sentMessage) bool { return s.id == 0 })
}

// Apply brings the display to parts (the last with the Stop button while streaming) and deletes
// the messages beyond; paid: the caller holds a pacer slot. Final applies retry until ctx ends. A
// send with no answer is made again first, exactly as it was; the search for its copy comes later.
func (d *Display) Apply(ctx context.Context, parts []render.Message, final, paid bool) error {
	again := func(err error, what string) bool {
		if !final || !retryable(err) || ctx.Err() != nil {
			return false
		}
		d.deps.Log.Warn(what+"; trying again", "chat_id", d.t.ChatID, "err", err)
		return true
	}
	for i := 0; i < len(d.sent); i++ {
		if d.sent[i].id != 0 {
			continue
		}
		// The messages after it go, and come again after it: the reply stays in order.
		for j := len(d.sent) - 1; j > i; j-- {
			if d.sent[j].id == 0 {
				continue
			}
			if err := d.remove(ctx, j, paid); err != nil {
				return err
			}
			paid = false
		}
		for d.sent[i].id == 0 {
			if err := d.slot(ctx, &paid); err != nil {
				return err
			}
			if err := d.resend(ctx, i); err != nil && !again(err, "could not send a message again") {
				return err
			}
		}
	}
	for i, p := range parts {
		button := d.button != "" && !final && i == len(parts)-1
		// Look again after each put: a message sent again shows what was lost, and is edited next.
		for !d.shows(i, p, button) {
			if err := d.slot(ctx, &paid); err != nil {
				return err
			}
			if err := d.put(ctx, i, p, button); err != nil && !again(err, "final text not delivered") {
				return err
			}
		}
	}
	// The messages the reply no longer needs (the text renders into fewer messages now).
	for len(d.sent) > len(parts) {
		if err := d.remove(ctx, len(parts), paid); err != nil {
			return err
		}
		paid = false
	}
	return nil
}

// slot waits for a pacer slot, unless paid says the caller has one (which it uses up).
func (d *Display) slot(ctx context.Context, paid *bool) error {
	if *paid {
		*paid = false
		return nil
	}
	return d.deps.Pacer.Wait(ctx, d.t.ChatID)
}

// shows reports whether message i exists and shows p (with the button or not).
func (d *Display) shows(i int, p render.Message, button bool) bool {
	if i >= len(d.sent) {
		return false
	}
	s := d.sent[i]
	return s.id != 0 && s.wire.Text == p.Text && (s.wire.Button != "") == button &&
		(d.plain || slices.Equal(s.wire.Entities, p.Entities))
}

// retryable reports whether sending again may succeed: not when the user blocked the bot, and
// not when Telegram refused the request itself (put has already handled the 400s it can).
func retryable(err error) bool {
	return !errors.Is(err, ErrBlocked) && !errors.Is(err, tgbot.ErrorBadRequest) &&
		!errors.Is(err, tgbot.ErrorUnauthorized) && !errors.Is(err, tgbot.ErrorNotFound)
}

// put sends part i (again, exactly, if its send had no answer) or edits it, in the caller's slot.
func (d *Display) put(ctx context.Context, i int, p render.Message, button bool) error {
	if i < len(d.sent) && d.sent[i].id == 0 {
		return d.resend(ctx, i)
	}
	w := wire{Text: p.Text, Entities: p.Entities}
	if d.plain {
		w.Entities = nil
	}
	if button {
		w.Button = d.button
	}
	if i >= len(d.sent) {
		return d.send(ctx, i, w)
	}
	_, err := tg.Do(ctx, d.deps.Pacer, d.deps.Log, d.t.ChatID, func(ctx context.Context) (*models.Message, error) {
		return d.deps.TG.EditMessageText(ctx, w.edit(d.t.ChatID, d.sent[i].id))
	})
	switch {
	case err == nil || tg.NotModified(err):
		d.sent[i] = sentMessage{id: d.sent[i].id, wire: w}
		return nil
	case tg.Gone(err):
		// The user deleted it: this part and every later one go on in new messages, in order.
		for j := len(d.sent) - 1; j > i; j-- {
			if err := d.remove(ctx, j, true); err != nil {
				return err
			}
		}
		if err := d.recordRemoved(ctx, i); err != nil {
			return err
		}
		d.sent = d.sent[:i]
		return d.put(ctx, i, p, button)
	case tg.Blocked(err):
		return ErrBlocked
	case len(w.Entities) > 0 && tg.BadFormatting(err):
		d.deps.Log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.ChatID, "err", err)
		d.plain = true
		return d.put(ctx, i, p, button)
	}
	return err
}

// remove deletes (or blanks, see deleteOrBlank) message i, after a pacer slot unless paid.
func (d *Display) remove(ctx context.Context, i int, paid bool) error {
	if id := d.sent[i].id; id != 0 {
		if err := d.slot(ctx, &paid); err != nil {
			return err
		}
		if err := deleteOrBlank(ctx, d.deps, d.t.ChatID, id); err != nil {
			return err
		}
	}
	if err := d.recordRemoved(ctx, i); err != nil {
		return err
	}
	d.sent = slices.Delete(d.sent, i, i+1)
	return nil
}

// deleteOrBlank deletes message id of chat, or, if Telegram refuses (too old, no right to), edits
// it to "…": no text, cursor or button is left. The caller has waited for its turn.
func deleteOrBlank(ctx context.Context, deps Deps, chat int64, id int) error {
	_, err := tg.Do(ctx, deps.Pacer, deps.Log, chat, func(ctx context.Context) (bool, error) {
		return deps.TG.DeleteMessage(ctx, &tgbot.DeleteMessageParams{ChatID: chat, MessageID: id})
	})
	switch {
	case err == nil || tg.Gone(err):
		return nil
	case tg.Unknown(err) || tg.Blocked(err):
		return err
	}
	deps.Log.Debug("telegram refused to delete a message; blanking it", "chat_id", chat, "err", err)
	_, err = tg.Call(ctx, deps.Pacer, deps.Log, chat, func(ctx context.Context) (*models.Message, error) {
		return deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: chat, MessageID: id, Text: "…"})
	})
	if err != nil && !tg.NotModified(err) && !tg.Gone(err) {
		return err
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

func replyTo(id int) *models.ReplyParameters {
	if id == 0 {
		return nil
	}
	return &models.ReplyParameters{MessageID: id, AllowSendingWithoutReply: true}
}

func noPreview() *models.LinkPreviewOptions {
	return &models.LinkPreviewOptions{IsDisabled: tgbot.True()}
}
