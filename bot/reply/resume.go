package reply

import (
	"context"
	"errors"
	"time"

	"aurabot/bot/render"
)

// Resume finishes a reply from its journal: after a crash or a kill, or later in the same run
// when Telegram stopped answering. Its messages (a send that had no answer made again) show the
// recorded text, complete, with its notice if it was final, else with cut (the caller's words
// for a reply cut short: interrupted, or skipped). It never shows less than the user saw, as
// every text is recorded before it is shown. It reports the text shown (less the model's
// thinking shown above the answer, which is not part of it), the reply's first message and
// whether the answer was whole (Shown.Complete); an error wraps ErrUnfinished when the messages
// are not settled.
func (s *Streamer) Resume(ctx context.Context, t Target, j Journal, rec Recorded, cut string) (text string, firstID int, complete bool, err error) {
	text = render.WithoutThinking(rec.Text)
	d := NewDisplay(s.deps, t, j, "")
	defer d.Close()
	d.Adopt(rec.Parts)
	complete = rec.Final && rec.Complete
	if !rec.Final {
		rec.Final, rec.Notice, rec.Complete = true, cut, false
		if j != nil {
			if err := j.Show(ctx, rec.Shown); err != nil {
				return text, 0, false, errors.Join(ErrUnfinished, err)
			}
		}
	}
	parts := finalParts(nil, rec.Text, rec.Notice)
	if rec.Plain {
		parts = noticeParts(rec.Text)
	}
	fctx, cancel := FinalContext(ctx)
	defer cancel()
	if err = d.Apply(fctx, parts, true, false); err != nil && !errors.Is(err, ErrBlocked) {
		err = errors.Join(ErrUnfinished, err)
	}
	return text, d.FirstID(), complete, err
}

// Notify answers with a short plain notice in reply to t, through the same path as a reply's
// final text: recorded first, Telegram penalties waited out, other failures retried, within
// the final context's bounds (a shutdown cuts it short). An error wraps ErrUnfinished when a
// journaled notice may still have to be finished (Resume).
func (s *Streamer) Notify(ctx context.Context, t Target, j Journal, text string) error {
	if j != nil {
		if err := j.Show(ctx, Shown{Text: text, Final: true, Plain: true}); err != nil {
			return err
		}
	}
	fctx, cancel := FinalContext(ctx)
	defer cancel()
	d := NewDisplay(s.deps, t, j, "")
	defer d.Close()
	err := d.Apply(fctx, noticeParts(text), true, false)
	if err != nil && j != nil && !errors.Is(err, ErrBlocked) && len(d.sent) > 0 {
		return errors.Join(ErrUnfinished, err)
	}
	return err
}

// A final edit (or a notice) goes on for finalGrace once the bot has begun to cut replies short
// at shutdown, and for finalLimit at most otherwise (waiting out Telegram penalties: the final
// text must arrive).
const (
	finalGrace = 5 * time.Second
	finalLimit = 10 * time.Minute
)

// FinalContext is the context of a final edit or a notice: it outlives ctx, so that a reply cut
// by a shutdown still shows its text, but by finalGrace at most.
func FinalContext(ctx context.Context) (context.Context, context.CancelFunc) {
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
