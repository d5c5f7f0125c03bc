package reply

import (
	"context"
	"errors"
	"strconv"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/render"
	"aurabot/bot/tg"
)

// errDraftThrottled means Telegram answered a draft update with 429: nothing was shown, and the
// next update waits out the penalty.
var errDraftThrottled = errors.New("draft update throttled")

// draftEvery is how often a draft is refreshed: far smoother than edits, which Telegram limits
// to about one a second; third-party experience is that 200-500 ms is tolerated.
const draftEvery = 300 * time.Millisecond

// draftRefresh is how often a draft the model has not changed is sent again: Telegram shows a
// draft for a while only (about 30 s), and a model may pause longer than that.
const draftRefresh = 20 * time.Second

// draft streams a private-chat reply through sendMessageDraft (STREAM_MODE=draft). Telegram
// shows the draft as it grows; the reply persists only when the final message is sent. Every
// draft carries Telegram's own Stop button (can_stop), which keeps the draft's text on the
// screen when pressed (keep_on_stop): the press arrives as a stopped_message_generation update
// naming the draft, and stops the reply as /stop does, its text then sent as the final message.
type draft struct {
	s    *Streamer
	t    Target
	id   int64
	last time.Time
}

// wait blocks until the next draft update may go out.
func (dr *draft) wait(ctx context.Context) error {
	if err := pace.SleepUntil(ctx, dr.last.Add(draftEvery)); err != nil {
		return err
	}
	return dr.s.deps.Pacer.WaitUnpaced(ctx, dr.t.ChatID)
}

// show updates the draft with the newest text (its last 4096-unit part, for a long reply). An
// error means Telegram refused the draft and the reply should go on with edits.
func (dr *draft) show(ctx context.Context, r *render.Incremental, md string) error {
	parts := streamingParts(r, md)
	if len(parts) == 0 {
		return nil
	}
	return dr.send(ctx, parts[len(parts)-1])
}

// keep shows the draft again: md as show does, or, while nothing is shown (md ""), Telegram's
// "Thinking…" placeholder, which a draft without text is.
func (dr *draft) keep(ctx context.Context, r *render.Incremental, md string) error {
	if md == "" {
		return dr.send(ctx, render.Message{})
	}
	return dr.show(ctx, r, md)
}

// send sends one draft; the caller has waited for its turn.
func (dr *draft) send(ctx context.Context, p render.Message) error {
	deps := dr.s.deps
	_, err := tg.Do(ctx, deps.Pacer, deps.Log, dr.t.ChatID, func(ctx context.Context) (bool, error) {
		return deps.TG.SendMessageDraft(ctx, &tgbot.SendMessageDraftParams{
			ChatID: dr.t.ChatID, MessageThreadID: dr.t.ThreadID, DraftID: strconv.FormatInt(dr.id, 10),
			Text: p.Text, Entities: p.Entities, CanStop: true, KeepOnStop: true,
		})
	})
	dr.last = time.Now()
	if tg.Throttled(err) {
		return errDraftThrottled // the next update waits it out; drafts stay on
	}
	return err
}

// typingEvery is how often "typing…" is renewed: Telegram shows it for about 5 s. typingAfter
// is how long the model may be silent before it is shown at all.
const (
	typingEvery = 4 * time.Second
	typingAfter = 500 * time.Millisecond
)

// typing shows "typing…" until the first text arrives or done closes. A call in flight is let
// finish (bounded by its own timeout), never cancelled: Telegram logs a cancelled call as a
// malformed request.
func (s *Streamer) typing(ctx context.Context, t Target, gotText, done <-chan struct{}) {
	// A model that answers at once needs no "typing…": wait a moment first, so that the call
	// costs nothing of Telegram's limits when text is about to show anyway.
	wait := time.NewTimer(typingAfter)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return
	case <-done:
		return
	case <-gotText:
		return
	case <-wait.C:
	}
	tick := time.NewTicker(typingEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-gotText:
			return
		default:
		}
		if !s.deps.Pacer.Penalized(t.ChatID) { // don't poke a chat Telegram asked us to leave alone
			cctx, cancel := tg.Background(ctx, 10*time.Second)
			if err := s.deps.Pacer.WaitUnpaced(cctx, t.ChatID); err == nil {
				_, err = tg.Do(cctx, s.deps.Pacer, s.deps.Log, t.ChatID, func(ctx context.Context) (bool, error) {
					return s.deps.TG.SendChatAction(ctx, &tgbot.SendChatActionParams{
						ChatID: t.ChatID, MessageThreadID: t.ThreadID, Action: models.ChatActionTyping,
					})
				})
				if err != nil {
					s.deps.Log.Debug("sendChatAction failed", "chat_id", t.ChatID, "err", err)
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-gotText:
			return
		case <-tick.C:
		}
	}
}
