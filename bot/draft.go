package bot

import (
	"context"
	"errors"
	"strconv"
	"time"

	tgbot "github.com/go-telegram/bot"
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
	b    *Bot
	t    target
	id   int64
	last time.Time
}

// newDraft returns a draft for t, or nil when replies to t stream by edits: draft mode is off,
// or t is a group (drafts are for private chats only).
func (b *Bot) newDraft(t target) *draft {
	if b.cfg.StreamMode != StreamDraft || t.group {
		return nil
	}
	return &draft{b: b, t: t, id: b.draftIDs.Add(1)}
}

// wait blocks until the next draft update may go out.
func (dr *draft) wait(ctx context.Context) error {
	if err := sleepUntil(ctx, dr.last.Add(draftEvery)); err != nil {
		return err
	}
	return dr.b.pace.waitUnpaced(ctx, dr.t.chatID)
}

// show updates the draft with the newest text (its last 4096-unit part, for a long reply). An
// error means Telegram refused the draft and the reply should go on with edits.
func (dr *draft) show(ctx context.Context, md string) error {
	parts := renderParts(md, "", false)
	if len(parts) == 0 {
		return nil
	}
	p := parts[len(parts)-1]
	_, err := dr.b.api.SendMessageDraft(ctx, &tgbot.SendMessageDraftParams{
		ChatID: dr.t.chatID, MessageThreadID: dr.t.threadID, DraftID: strconv.FormatInt(dr.id, 10),
		Text: p.Text, Entities: p.Entities,
	})
	dr.last = time.Now()
	var tm *tgbot.TooManyRequestsError
	if errors.As(err, &tm) {
		dr.b.observe(dr.t.chatID, err) // wait it out; drafts stay on
		return errDraftThrottled
	}
	return dr.b.scrub(err)
}
