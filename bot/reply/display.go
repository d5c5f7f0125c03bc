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

// Target is where a reply goes.
type Target struct {
	ChatID   int64
	ThreadID int
	ReplyTo  int // the message the reply answers
	// Seen is the id of the message that led to the reply (the question, or a /retry): every
	// message of the bot's sent before it has a lower id.
	Seen  int
	Group bool
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
	// Sending records that message idx of the reply is about to be sent: above which id it will
	// be, what it carries, and after how many sends of it whose outcome is unknown.
	Sending(ctx context.Context, idx int, s Sending) error
	// Sent records the id Telegram gave message idx. lost, if not nil, is the search for the
	// copies earlier sends of it may have posted, recorded with it; Sent returns its id.
	Sent(ctx context.Context, idx int, id int, lost *Lost) (int64, error)
	// Removed records that message idx is gone: deleted, or never posted after all.
	Removed(ctx context.Context, idx int) error
	// Owner is the inbox entry whose reply the journal records.
	Owner() Owner
}

// Sending is what a reply records before it sends one of its messages.
type Sending struct {
	// Floor is the highest message id known in the chat when the message was first sent: a
	// message that the send posts gets a higher id.
	Floor int
	// Wire is exactly what the send carries (see wire), to send it again, and to look for it.
	Wire []byte
	// Tries counts the sends of it before this one whose outcome is unknown.
	Tries int
}

// Shown is a text a reply shows.
type Shown struct {
	Text   string // Markdown (or plain, for a notice)
	Final  bool   // the complete answer, or a notice
	Notice string // the line under a final answer
	Plain  bool   // a notice: plain text, not Markdown
	// Complete says a final answer is whole (no notice, or one about an output limit): it is
	// stored done, not cut, whoever stores it.
	Complete bool
}

// Deps is what a reply needs from the rest of the bot.
type Deps struct {
	TG       *tg.Client
	Pacer    *pace.Pacer
	Log      *slog.Logger
	Registry *Registry // the messages and send gates of each chat, shared by all replies
	Searcher *Searcher // looks for the copies lost sends may have posted; nil: none is looked for
	// Trouble, if set, is told when a reply cannot record what it is about to show (a full
	// disk, err): the reply waits, and the user may be told why.
	Trouble func(ctx context.Context, t Target, err error)
}

// Display is the set of Telegram messages that show one reply. It owns them: Apply brings the
// whole set to the wanted parts (editing, sending and deleting as needed), so that no message of
// the reply is ever left behind with stale text, a cursor or a button.
type Display struct {
	deps    Deps
	t       Target
	journal Journal
	owner   Owner
	sent    []sentMessage
	plain   bool   // Telegram refused our entities once: send plain text from now on
	button  string // callback data of the Stop button on a streaming reply; "" for none
}

type sentMessage struct {
	id       int // 0: a send whose outcome is unknown (see lost)
	text     string
	entities []models.MessageEntity
	button   bool
	// What the send of it carried and above which id, and how many of its sends had no answer:
	// while id is 0, it is sent again exactly so, and the copies looked for between floor and
	// the id of that send.
	floor int
	wire  wire
	tries int
}

// wire is what a send carries, exactly: sent again, an edit with it changes nothing of a
// message that a lost send of it posted ("message is not modified").
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

// NewDisplay returns an empty display for a reply to t, recorded in j (nil: not recorded).
// button, if not "", is the callback data of the Stop button shown under a streaming reply.
func NewDisplay(deps Deps, t Target, j Journal, button string) *Display {
	owner := Owner(-anonymous.Add(1))
	if j != nil {
		owner = j.Owner()
	}
	return &Display{deps: deps, t: t, journal: j, owner: owner, button: button}
}

// Adopt makes the display own the messages a reply posted before a restart, as the journal
// recorded them. Their text is unknown, so the next Apply edits each. A message whose send had
// no answer is sent again, exactly as it was, before anything else.
func (d *Display) Adopt(parts []RecordedPart) {
	for _, p := range parts {
		s := sentMessage{id: p.ID, text: unknownText, floor: p.Floor, tries: p.Tries}
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

// IDs are the ids of the messages that show the reply (0 for one whose send had no answer).
func (d *Display) IDs() []int {
	ids := make([]int, 0, len(d.sent))
	for _, s := range d.sent {
		ids = append(ids, s.id)
	}
	return ids
}

// FirstID is the first message of the reply, 0 if none (or not known).
func (d *Display) FirstID() int {
	if len(d.sent) == 0 {
		return 0
	}
	return d.sent[0].id
}

// Settled reports whether every message of the reply is known: no send is left whose outcome is
// unknown.
func (d *Display) Settled() bool {
	return !slices.ContainsFunc(d.sent, func(s sentMessage) bool { return s.id == 0 })
}

var (
	errBlocked = errors.New("the user blocked the bot")
	// errNotRecorded means the journal could not record a call: it was not made.
	errNotRecorded = errors.New("reply: could not record what the reply is about to do")
)

// Apply brings the display to parts: message i shows parts[i] (the last one with the Stop
// button while streaming), and messages beyond the parts are deleted. paid says the caller has
// already waited for one pacer slot. Final applies retry until ctx ends: the final text must
// arrive.
//
// A message whose send had no answer is sent again first, exactly as it was, before anything
// else: the reply goes on at once, and the search for what the lost send may have posted runs
// afterwards, in the background (Searcher).
func (d *Display) Apply(ctx context.Context, parts []render.Message, final, paid bool) error {
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
			if !paid {
				if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
					return err
				}
			}
			paid = false
			err := d.resend(ctx, i)
			if err != nil && (!final || !retryable(err) || ctx.Err() != nil) {
				return err
			}
			if err != nil {
				d.deps.Log.Warn("could not send a message again; trying again", "chat_id", d.t.ChatID, "err", err)
			}
		}
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
		for !d.shows(i, p, button) {
			if !paid {
				if err := d.deps.Pacer.Wait(ctx, d.t.ChatID); err != nil {
					return err
				}
			}
			paid = false
			err := d.put(ctx, i, p, button)
			if err == nil {
				continue // look again: a message sent again shows what was lost, and is edited next
			}
			if final && retryable(err) && ctx.Err() == nil {
				d.deps.Log.Warn("final text not delivered; trying again", "chat_id", d.t.ChatID, "err", err)
				continue
			}
			return err
		}
	}
	return nil
}

// shows reports whether message i exists and shows p (with the button or not).
func (d *Display) shows(i int, p render.Message, button bool) bool {
	if i >= len(d.sent) {
		return false
	}
	s := d.sent[i]
	return s.id != 0 && s.text == p.Text && s.button == button && (d.plain || slices.Equal(s.entities, p.Entities))
}

// retryable reports whether sending again may succeed: not when the user blocked the bot, and
// not when Telegram refused the request itself (put has already handled the 400s it can).
func retryable(err error) bool {
	return !errors.Is(err, errBlocked) && !errors.Is(err, tgbot.ErrorBadRequest) &&
		!errors.Is(err, tgbot.ErrorUnauthorized) && !errors.Is(err, tgbot.ErrorNotFound)
}

// put sends part i as a new message (again, exactly as before, for one whose send had no
// answer) or edits the message that shows it. The caller has waited for a pacer slot.
func (d *Display) put(ctx context.Context, i int, p render.Message, button bool) error {
	ents := p.Entities
	if d.plain {
		ents = nil
	}
	if i < len(d.sent) && d.sent[i].id == 0 {
		return d.resend(ctx, i)
	}
	if i >= len(d.sent) {
		w := wire{Text: p.Text, Entities: ents}
		if button {
			w.Button = d.button
		}
		return d.send(ctx, i, w)
	}
	var markup models.ReplyMarkup
	if button {
		markup = tg.OneButton("⏹ Stop", d.button)
	}
	_, err := d.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{
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
	return d.outcome(ctx, err, len(ents) > 0, func() error { return d.put(ctx, i, p, button) })
}

// outcome feeds a call's result to the pacer and turns it into the error the caller sees. A
// formatting refusal goes again plain (again), as Telegram did not accept our entities.
func (d *Display) outcome(ctx context.Context, err error, formatted bool, again func() error) error {
	d.observe(err)
	switch {
	case err == nil:
		return nil
	case tg.Blocked(err):
		return errBlocked
	case !d.plain && formatted && tg.BadFormatting(err):
		d.deps.Log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.ChatID, "err", err)
		d.plain = true
		return again()
	}
	return err
}

// send posts a new message as part i. It takes the chat's send gate first and records, before
// the call, the highest id known in the chat and exactly what the message carries. When the
// answer never comes, the display keeps the gate and sends the same again at once (resend), so
// that the user sees the reply go on; the message the lost send may have posted is looked for
// afterwards, between the floor and the new message's id.
func (d *Display) send(ctx context.Context, i int, w wire) error {
	if err := d.deps.Registry.Acquire(ctx, d.t.ChatID, d.owner); err != nil {
		return err
	}
	floor := max(d.deps.Registry.Max(d.t.ChatID), d.t.ReplyTo, d.t.Seen)
	d.sent = append(d.sent, sentMessage{id: 0, text: unknownText, floor: floor, wire: w})
	if err := d.post(ctx, i); err != nil {
		if i < len(d.sent) && d.sent[i].id == 0 && d.sent[i].tries == 0 {
			// Refused, or not made: no message of it can exist.
			if rerr := d.recordRemoved(ctx, i); rerr != nil {
				d.deps.Log.Warn("could not record a send that was refused", "chat_id", d.t.ChatID, "err", rerr)
			}
			d.sent = d.sent[:i]
			d.releaseIfSettled()
		}
		return err
	}
	return nil
}

// resend sends part i again, exactly as its send that had no answer. The caller has waited for a
// pacer slot.
func (d *Display) resend(ctx context.Context, i int) error {
	if err := d.deps.Registry.Acquire(ctx, d.t.ChatID, d.owner); err != nil {
		return err
	}
	return d.post(ctx, i)
}

// post makes the send of part i (d.sent[i], id 0): recorded first, then sent. Its outcome
// decides what the display knows: an id, or one more send with an unknown outcome.
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
	m, err := d.deps.TG.SendMessage(ctx, &tgbot.SendMessageParams{
		ChatID: d.t.ChatID, MessageThreadID: d.t.ThreadID, Text: s.wire.Text, Entities: s.wire.Entities,
		ReplyParameters: replyTo(reply), ReplyMarkup: s.wire.markup(), LinkPreviewOptions: noPreview(),
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
		d.observe(err)
		return err
	case tg.BadFormatting(err) && len(s.wire.Entities) > 0:
		// Telegram refuses these entities: the sends of them that had no answer were refused
		// too, so no copy of them exists. Plain text from now on.
		d.observe(err)
		d.deps.Log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.ChatID, "err", err)
		d.plain = true
		s.wire.Entities = nil
		s.tries = 0
		return d.post(ctx, i)
	}
	d.observe(err)
	if tg.Blocked(err) {
		// Nobody sees the chat any more: what a lost send may have posted stays unseen, and
		// the chat's gate is free for the day the user comes back.
		d.abandonUnsettled(ctx)
		return errBlocked
	}
	return err
}

// abandonUnsettled gives up the messages whose sends had no answer (the user blocked the bot)
// and frees the chat's send gate.
func (d *Display) abandonUnsettled(ctx context.Context) {
	for i := len(d.sent) - 1; i >= 0; i-- {
		if d.sent[i].id == 0 {
			_ = d.recordRemoved(ctx, i)
			d.sent = slices.Delete(d.sent, i, i+1)
		}
	}
	d.deps.Registry.Release(d.t.ChatID, d.owner)
}

// posted records that the send of part i gave message id, with the search for what earlier
// sends of it, whose answers never came, may have posted.
func (d *Display) posted(ctx context.Context, i, id int) {
	s := &d.sent[i]
	d.deps.Registry.Add(d.t.ChatID, id)
	var lost *Lost
	if s.tries > 0 {
		lost = &Lost{ChatID: d.t.ChatID, Floor: s.floor, Ceiling: id, Wire: s.wire.encode(), Copies: s.tries}
	}
	s.id, s.text, s.entities, s.button, s.tries = id, s.wire.Text, s.wire.Entities, s.wire.Button != "", 0
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

// releaseIfSettled frees the chat's send gate once no send of the display has an unknown
// outcome.
func (d *Display) releaseIfSettled() {
	if d.Settled() {
		d.deps.Registry.Release(d.t.ChatID, d.owner)
	}
}

// Close ends the display. A display with no journal entry frees its chat's send gate even with
// a send unsettled, as nothing would ever settle it; one with an entry keeps it for the reply's
// next display (the rest of the run, or the restart).
func (d *Display) Close() {
	if d.owner < 0 || d.Settled() {
		d.deps.Registry.Release(d.t.ChatID, d.owner)
	}
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
		if err := deleteOrBlank(ctx, d.deps, d.t.ChatID, s.id); err != nil {
			return err
		}
	}
	if err := d.recordRemoved(ctx, i); err != nil {
		return err
	}
	d.sent = slices.Delete(d.sent, i, i+1)
	return nil
}

// deleteOrBlank deletes message id of chat, or, if Telegram refuses, edits it to "…". The caller
// has waited for one pacer slot.
func deleteOrBlank(ctx context.Context, deps Deps, chat int64, id int) error {
	_, err := deps.TG.DeleteMessage(ctx, &tgbot.DeleteMessageParams{ChatID: chat, MessageID: id})
	observe(deps, chat, err)
	switch {
	case err == nil || tg.Gone(err):
		return nil
	case tg.Unknown(err) || tg.Blocked(err):
		return err
	}
	deps.Log.Debug("telegram refused to delete a message; blanking it", "chat_id", chat, "err", err)
	if err := deps.Pacer.Wait(ctx, chat); err != nil {
		return err
	}
	_, err = deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: chat, MessageID: id, Text: "…"})
	observe(deps, chat, err)
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

// observe feeds the outcome of a call to the pacer.
func (d *Display) observe(err error) { observe(d.deps, d.t.ChatID, err) }

func observe(deps Deps, chat int64, err error) {
	if wait, ok := tg.RetryAfter(err); ok {
		deps.Pacer.TooMany(chat, wait)
		deps.Log.Warn("telegram flood limit", "chat_id", chat, "retry_after", wait)
		return
	}
	if err == nil {
		deps.Pacer.OK(chat)
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
