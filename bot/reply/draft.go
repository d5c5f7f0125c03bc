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

const (
	// draftEvery is how often a draft is refreshed: far smoother than edits, which Telegram
	// limits to about one a second; third-party experience is that 200-500 ms is tolerated.
	draftEvery = 300 * time.Millisecond
	// draftRefresh is how often a draft the model has not changed is sent again: Telegram shows
	// a draft for a while only (about 30 s), and a model may pause longer than that.
	draftRefresh = 20 * time.Second
	// typingEvery is how often "typing…" is renewed: Telegram shows it for about 5 s.
	// typingAfter is how long the model may be silent before it is shown at all.
	typingEvery = 4 * time.Second
	typingAfter = 500 * time.Millisecond
)

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

// show updates the draft with the newest text (its last 4096-unit part, for a long reply), or,
// for md "", with Telegram's "Thinking…" placeholder, which a draft without text is. An error
// but errDraftThrottled means Telegram refused the draft: the reply should go on with edits.
func (dr *draft) show(ctx context.Context, r *render.Incremental, md string) error {
	var p render.Message
	if md != "" {
		parts := streamingParts(r, md)
		if len(parts) == 0 {
			return nil
		}
		p = parts[len(parts)-1]
	}
	deps := dr.s.deps
	_, err := tg.Do(ctx, deps.Pacer, deps.Log, dr.t.ChatID, func(ctx context.Context) (bool, error) {
		return deps.TG.SendMessageDraft(ctx, &tgbot.SendMessageDraftParams{
			ChatID: dr.t.ChatID, MessageThreadID: dr.t.ThreadID, DraftID: strconv.FormatInt(dr.id, 10),
			Text: p.Text, Entities: p.Entities, CanStop: true, KeepOnStop: true,
		})
	})
	dr.last = time.Now()
	if tg.Throttled(err) {
		return errDraftThrottled // drafts stay on
	}
	return err
}

// typing shows "typing…" until the first text arrives or done closes, from typingAfter on: a
// model that answers at once costs nothing of Telegram's limits. A call in flight is let
// finish (bounded by its own timeout), never cancelled: Telegram logs a cancelled call as a
// malformed request.
func (s *Streamer) typing(ctx context.Context, t Target, gotText, done <-chan struct{}) {
	next := time.NewTimer(typingAfter)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-gotText:
			return
		case <-next.C:
		}
		select {
		case <-done:
			return
		case <-gotText:
			return
		default:
		}
		next.Reset(typingEvery)
		if s.deps.Pacer.Penalized(t.ChatID) { // don't poke a chat Telegram asked us to leave alone
			continue
		}
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
}
