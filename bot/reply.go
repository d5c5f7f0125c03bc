package bot

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/render"
	"aurabot/history"
)

// target is where a reply goes.
type target struct {
	chatID   int64
	threadID int
	replyTo  int // the user's message
	group    bool
}

const (
	cursor       = " ▍"
	callbackStop = "stop"
	maxText      = 4096 // Telegram's limit, UTF-16 units
	typingEvery  = 4 * time.Second
)

var (
	errShutdown = errors.New("the bot is shutting down")
	errStopped  = errors.New("stopped by the user")
	errBlocked  = errors.New("the user blocked the bot")
)

// activeReply is a reply that is streaming now; /stop cancels it.
type activeReply struct {
	cancel context.CancelCauseFunc
}

// stop cancels the reply streaming in conversation k, if any.
func (b *Bot) stop(k history.Key) bool {
	b.mu.Lock()
	a := b.active[k]
	b.mu.Unlock()
	if a == nil {
		return false
	}
	a.cancel(errStopped)
	return true
}

// outcome is what a streamed reply ended with.
type outcome struct {
	text    string // everything the model sent, which the user now sees
	err     error  // why the stream ended early; nil when it completed
	firstID int    // the first Telegram message of the reply
	// unfinished: the bot is shutting down and the final text could not be shown in time. The
	// update stays in the inbox, with the text recorded, for the restart to show and store.
	unfinished bool
}

// stream asks the model and shows the answer as it grows: the first text as soon as it arrives,
// then edits at the pace the pacer allows, each with the newest text, and a final edit with the
// whole formatted answer.
func (b *Bot) stream(ctx context.Context, r req, msgs []aura.Message) (out outcome) {
	k, t := r.k, r.t
	meter := b.startReply(k)
	defer func() { meter.end(out) }()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.mu.Lock()
	b.active[k] = &activeReply{cancel: cancel}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.active, k)
		b.mu.Unlock()
	}()

	var (
		mu      sync.Mutex
		buf     strings.Builder
		gotText = make(chan struct{})
		dirty   = make(chan struct{}, 1)
		done    = make(chan struct{})
		serr    error
	)
	go func() {
		defer close(done)
		first := true
		for chunk, err := range b.model.Stream(sctx, msgs) {
			if err != nil {
				serr = err
				return
			}
			if chunk == "" {
				continue
			}
			mu.Lock()
			buf.WriteString(chunk)
			mu.Unlock()
			if first {
				first = false
				close(gotText)
			}
			select {
			case dirty <- struct{}{}:
			default:
			}
		}
	}()

	var typing sync.WaitGroup
	typing.Go(func() { b.typing(sctx, t, gotText) })
	defer typing.Wait()

	d := &display{b: b, t: t, stopButton: true}
	dr := b.newDraft(t)
	snapshot := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	shown := ""
	// paid is true while this reply holds a pacer slot for its chat that it has not used yet: a
	// slot is never thrown away, not even when the stream ends while an edit waits for one.
	paid := false
loop:
	for {
		select {
		case <-done:
			break loop
		case <-dirty:
		}
		if snapshot() == shown {
			// Nothing new (the chunk that woke us went out with the last update): take no slot,
			// since a slot held while the model pauses would let two edits out back to back.
			continue
		}
		if dr != nil {
			if err := dr.wait(sctx); err != nil {
				<-done
				break
			}
		} else if !paid {
			if err := b.pace.wait(sctx, t.chatID); err != nil {
				<-done
				break
			}
			paid = true
		}
		select {
		case <-done:
			// The stream ended while this edit waited: the final edit takes its slot.
			break loop
		default:
		}
		text := snapshot() // newer than shown: the text only grows
		if dr != nil {
			err := dr.show(sctx, text)
			if err == nil {
				shown = text
				meter.shown()
				continue
			}
			if sctx.Err() != nil || errors.Is(err, errDraftThrottled) {
				continue
			}
			b.log.Warn("telegram refused a draft; streaming by edits", "chat_id", t.chatID, "err", err)
			dr = nil
			if err := b.pace.wait(sctx, t.chatID); err != nil {
				continue
			}
			paid = true
		}
		err := d.show(sctx, text, false, paid)
		paid = false
		if err != nil {
			if errors.Is(err, errBlocked) {
				cancel(errBlocked)
				<-done
				return outcome{err: errBlocked}
			}
			continue
		}
		shown = text
		meter.shown()
		// Remember what the user sees, so that a crash can still finalise this reply.
		if err := b.store.RecordReply(sctx, r.update, d.ids(), shown); err != nil && sctx.Err() == nil {
			b.log.Warn("could not record reply progress", "chat_id", t.chatID, "err", err)
		}
	}
	<-done
	cancel(nil) // the stream is over; stop the typing indicator

	text := snapshot()
	err := serr
	if cause := context.Cause(sctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the stream saw its context end: say why (stopped, shutdown)
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	notice := noticeFor(err)
	fctx, fcancel := finalContext(ctx)
	defer fcancel()
	if strings.TrimSpace(text) == "" {
		if err == nil {
			notice = "The model sent an empty answer. Send /retry to try again."
		}
		d.notice(fctx, notice)
		return outcome{err: err}
	}
	// The whole text is recorded before it is shown: if the bot dies during the final edit, the
	// restart still has it to show.
	if len(d.sent) > 0 {
		if err := b.store.RecordReply(fctx, r.update, d.ids(), text); err != nil {
			b.log.Warn("could not record reply progress", "chat_id", t.chatID, "err", err)
		}
	}
	if ferr := d.apply(fctx, renderParts(text, notice, true), true, paid); ferr != nil {
		b.log.Warn("final edit failed", "chat_id", t.chatID, "err", b.scrub(ferr))
		if errors.Is(ferr, errBlocked) {
			return outcome{err: errBlocked}
		}
		if len(d.sent) > 0 && ctx.Err() != nil {
			return outcome{text: text, err: err, firstID: d.firstID(), unfinished: true}
		}
	}
	return outcome{text: text, err: err, firstID: d.firstID()}
}

// resumeInterrupted finalises a reply that was streaming when the bot stopped without a chance
// to finish it (a crash, a kill): its messages get the text recorded last and an "interrupted"
// notice, and history keeps that text as a cut answer.
func (b *Bot) resumeInterrupted(ctx context.Context, p history.Update, m *models.Message) {
	b.enqueue(ctx, reqOf(p.ID, m), false, func(ctx context.Context, r req) {
		d := &display{b: b, t: r.t}
		for _, id := range p.MessageIDs {
			// The text these messages hold is unknown; the final edit sets it.
			d.sent = append(d.sent, sentMessage{id: int(id), text: "\x00"})
		}
		fctx, cancel := finalContext(ctx)
		defer cancel()
		if err := d.apply(fctx, renderParts(p.Shown, noticeFor(errShutdown), true), true, false); err != nil {
			b.log.Warn("could not mark an interrupted reply", "chat_id", r.t.chatID, "err", b.scrub(err))
		}
		var answer *history.Turn
		if p.Shown != "" {
			answer = &history.Turn{Role: history.RoleAssistant, Content: p.Shown, MessageID: p.MessageIDs[0], Status: history.StatusCut}
		}
		b.finish(ctx, r.update, r.k, answer)
	})
}

// finalGrace is how long a final edit may go on once the bot has begun to cut replies short at
// shutdown; finalLimit bounds it otherwise (waiting out Telegram penalties: the final text must
// arrive).
const (
	finalGrace = 5 * time.Second
	finalLimit = 10 * time.Minute
)

// finalContext is the context of a final edit or a notice: it outlives ctx, so that a reply cut
// by a shutdown still shows its text, but by finalGrace at most.
func finalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalLimit)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(finalGrace, cancel)
		context.AfterFunc(fctx, func() { t.Stop() })
	})
	return fctx, func() {
		stop()
		cancel()
	}
}

// typing shows "typing…" until the first text arrives or ctx ends.
func (b *Bot) typing(ctx context.Context, t target, gotText <-chan struct{}) {
	tick := time.NewTicker(typingEvery)
	defer tick.Stop()
	for {
		if b.pace.penalized(t.chatID) {
			// Don't poke a chat Telegram asked us to leave alone.
		} else if _, err := b.api.SendChatAction(ctx, &tgbot.SendChatActionParams{
			ChatID: t.chatID, MessageThreadID: t.threadID, Action: models.ChatActionTyping,
		}); err != nil && ctx.Err() == nil {
			b.log.Debug("sendChatAction failed", "chat_id", t.chatID, "err", b.scrub(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-gotText:
			return
		case <-tick.C:
		}
	}
}

// noticeFor is the line a user sees under a reply that did not complete.
func noticeFor(err error) string {
	var se *aura.StatusError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errStopped):
		return "⏹ Stopped."
	case errors.Is(err, errShutdown):
		return "⚠️ Interrupted: the bot restarted. Send /retry to get a full answer."
	case errors.As(err, &se):
		msg := "⚠️ The model server failed with HTTP status " + strconv.Itoa(se.StatusCode) + "."
		if se.StatusCode < 300 {
			// An error event inside a stream that had started fine.
			msg = "⚠️ The model server reported an error mid-answer: " + se.Reason + "."
		} else if se.Reason != "" {
			msg = "⚠️ The model server failed: " + strconv.Itoa(se.StatusCode) + " " + se.Reason + "."
		}
		return msg + " Send /retry to try again."
	}
	return "⚠️ " + modelFailure(err).notice + " Send /retry to try again."
}

// failureKind is a model server failure other than an HTTP status: the error it matches, its
// metric label, and what the user is told.
type failureKind struct {
	err          error
	kind, notice string
}

var modelFailures = []failureKind{
	{aura.ErrConnect, "connect", "I could not reach the model server."},
	{aura.ErrFirstByteTimeout, "first_byte_timeout", "The model server did not start answering in time."},
	{aura.ErrIdleTimeout, "idle_timeout", "The model server stopped sending in the middle of the answer."},
	{aura.ErrBrokenStream, "broken_stream", "The model server broke off the answer."},
}

// modelFailure returns the row of modelFailures err is, or a generic one.
func modelFailure(err error) failureKind {
	for _, f := range modelFailures {
		if errors.Is(err, f.err) {
			return f
		}
	}
	return failureKind{kind: "other", notice: "The answer failed."}
}

// display is the set of Telegram messages that show one reply.
type display struct {
	b          *Bot
	t          target
	sent       []sentMessage
	plain      bool // Telegram refused our entities once: send plain text from now on
	stopButton bool
}

type sentMessage struct {
	id       int
	text     string
	entities []models.MessageEntity
	button   bool
}

func (d *display) ids() []int64 {
	ids := make([]int64, len(d.sent))
	for i, s := range d.sent {
		ids[i] = int64(s.id)
	}
	return ids
}

func (d *display) firstID() int {
	if len(d.sent) == 0 {
		return 0
	}
	return d.sent[0].id
}

// show renders md and brings the messages up to date. The caller has already waited for one
// pacer slot when paid is true; any further call waits for its own.
func (d *display) show(ctx context.Context, md string, final, paid bool) error {
	parts := renderParts(md, "", final)
	return d.apply(ctx, parts, final, paid)
}

// renderParts renders md (with notice under it) into the messages that show it; while streaming
// (not final), the last one ends with the cursor.
func renderParts(md, notice string, final bool) []render.Message {
	msg := render.Markdown(md)
	if notice != "" {
		msg = appendNotice(msg, notice)
	}
	limit := maxText
	if !final {
		limit -= render.UTF16Len(cursor)
	}
	parts := render.Split(msg, limit)
	if !final && len(parts) > 0 {
		parts[len(parts)-1].Text += cursor
	}
	return parts
}

// appendNotice adds an italic line under the reply.
func appendNotice(m render.Message, notice string) render.Message {
	sep := "\n\n"
	if m.Text == "" {
		sep = ""
	}
	off := render.UTF16Len(m.Text + sep)
	m.Text += sep + notice
	m.Entities = append(slices.Clone(m.Entities), models.MessageEntity{Type: models.MessageEntityTypeItalic, Offset: off, Length: render.UTF16Len(notice)})
	return m
}

// notice answers with notice alone, when no text ever came.
func (d *display) notice(ctx context.Context, notice string) {
	if err := d.apply(ctx, []render.Message{appendNotice(render.Message{}, notice)}, true, false); err != nil {
		d.b.log.Warn("could not send the failure notice", "chat_id", d.t.chatID, "err", d.b.scrub(err))
	}
}

func (d *display) apply(ctx context.Context, parts []render.Message, final, paid bool) error {
	for i, p := range parts {
		button := d.stopButton && !final && i == len(parts)-1
		if i < len(d.sent) {
			s := d.sent[i]
			if s.text == p.Text && s.button == button && (d.plain || slices.Equal(s.entities, p.Entities)) {
				continue
			}
		}
		for {
			if !paid {
				if err := d.b.pace.wait(ctx, d.t.chatID); err != nil {
					return err
				}
			}
			paid = false
			err := d.put(ctx, i, p, button)
			if err != nil && final && retryable(err) && ctx.Err() == nil {
				// The final text must arrive: a 429 is waited out (the pacer holds the penalty), a
				// network failure or a 5xx tried again, paced, until ctx ends.
				d.b.log.Warn("final text not delivered; trying again", "chat_id", d.t.chatID, "err", d.b.scrub(err))
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
func (d *display) put(ctx context.Context, i int, p render.Message, button bool) error {
	ents := p.Entities
	if d.plain {
		ents = nil
	}
	var markup models.ReplyMarkup
	if button {
		markup = models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "⏹ Stop", CallbackData: callbackStop}}}}
	}
	var err error
	if i < len(d.sent) {
		_, err = d.b.api.EditMessageText(ctx, &tgbot.EditMessageTextParams{
			ChatID: d.t.chatID, MessageID: d.sent[i].id, Text: p.Text, Entities: ents, ReplyMarkup: markup,
			LinkPreviewOptions: noPreview,
		})
		if err != nil && strings.Contains(err.Error(), "message is not modified") {
			err = nil
		}
		if err != nil && strings.Contains(err.Error(), "message to edit not found") {
			// The user deleted it: go on in a new message.
			d.sent = d.sent[:i]
			return d.put(ctx, i, p, button)
		}
		if err == nil {
			d.sent[i] = sentMessage{id: d.sent[i].id, text: p.Text, entities: ents, button: button}
		}
	} else {
		reply := 0
		if i == 0 {
			reply = d.t.replyTo
		}
		var m *models.Message
		m, err = d.b.api.SendMessage(ctx, &tgbot.SendMessageParams{
			ChatID: d.t.chatID, MessageThreadID: d.t.threadID, Text: p.Text, Entities: ents,
			ReplyParameters: replyTo(reply), ReplyMarkup: markup, LinkPreviewOptions: noPreview,
		})
		if err == nil {
			d.sent = append(d.sent, sentMessage{id: m.ID, text: p.Text, entities: ents, button: button})
		}
	}
	d.b.observe(d.t.chatID, err)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tgbot.ErrorForbidden):
		return errBlocked
	case errors.Is(err, tgbot.ErrorBadRequest) && !d.plain && len(ents) > 0 && strings.Contains(err.Error(), "entit"):
		// Telegram did not accept our formatting: never lose the text, send it plain.
		d.b.log.Warn("telegram refused entities; sending plain text", "chat_id", d.t.chatID, "err", d.b.scrub(err))
		d.plain = true
		return d.put(ctx, i, p, button)
	}
	return d.b.scrub(err)
}

var noPreview = &models.LinkPreviewOptions{IsDisabled: tgbot.True()}
