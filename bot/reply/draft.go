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

// draft streams a private-chat reply through sendMessageDraft (STREAM_MODE=draft). Telegram
// shows the draft as it grows; the reply persists only when the final message is sent.
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
	p := parts[len(parts)-1]
	_, err := dr.s.deps.TG.SendMessageDraft(ctx, &tgbot.SendMessageDraftParams{
		ChatID: dr.t.ChatID, MessageThreadID: dr.t.ThreadID, DraftID: strconv.FormatInt(dr.id, 10),
		Text: p.Text, Entities: p.Entities,
	})
	dr.last = time.Now()
	if wait, ok := tg.RetryAfter(err); ok {
		dr.s.deps.Pacer.TooMany(dr.t.ChatID, wait) // wait it out; drafts stay on
		return errDraftThrottled
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
				_, err = s.deps.TG.SendChatAction(cctx, &tgbot.SendChatActionParams{
					ChatID: t.ChatID, MessageThreadID: t.ThreadID, Action: models.ChatActionTyping,
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
