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

// errDraftThrottled: a draft update got a 429; the next one waits out the penalty.
var errDraftThrottled = errors.New("draft update throttled")

const (
	// draftEvery: drafts are not limited like edits (about one a second); 200-500 ms is tolerated.
	draftEvery   = 300 * time.Millisecond
	draftRefresh = 20 * time.Second // Telegram shows a draft for about 30 s; a model may pause longer
	// Telegram shows "typing…" for about 5 s; it is shown once the model is silent typingAfter.
	typingEvery = 4 * time.Second
	typingAfter = 500 * time.Millisecond
)

// draft streams a private-chat reply through sendMessageDraft (STREAM_MODE=draft); only the final
// message persists. Telegram's own Stop button (can_stop, keep_on_stop) arrives as a
// stopped_message_generation update naming the draft and stops the reply as /stop does.
type draft struct {
	s    *Streamer
	t    Target
	id   int64
	last time.Time
}

func (dr *draft) wait(ctx context.Context) error {
	if err := pace.SleepUntil(ctx, dr.last.Add(draftEvery)); err != nil {
		return err
	}
	return dr.s.deps.Pacer.WaitUnpaced(ctx, dr.t.ChatID)
}

// show updates the draft with md's last part, or with Telegram's "Thinking…" placeholder for md
// "". An error but errDraftThrottled means Telegram refused drafts: the reply goes on by edits.
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

// typing shows "typing…" from typingAfter until the first text or done. A call in flight is let
// finish (within its own timeout), never cancelled: Telegram logs that as a malformed request.
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
