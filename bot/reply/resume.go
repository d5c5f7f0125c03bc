package reply

import (
	"context"
	"errors"
	"time"

	"aurabot/bot/render"
)

// Resume finishes a reply from its journal (after a crash, or when Telegram stopped answering):
// the recorded text, never less than the user saw, with its notice if final, else with cut. It
// reports the answer shown (without the thinking), the first message and whether the answer was
// whole; an error wraps ErrUnfinished when the messages are not settled.
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

// Notify answers t with a short plain notice the way a final text goes: recorded first, retried
// within FinalContext. An error wraps ErrUnfinished when a journaled notice must be resumed.
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

// A final edit (or a notice) goes on for finalGrace after a shutdown began, else for finalLimit at
// most (waiting out Telegram's penalties: the final text must arrive).
const (
	finalGrace = 5 * time.Second
	finalLimit = 10 * time.Minute
)

// FinalContext is the context of a final edit or a notice: it outlives ctx by finalGrace at most.
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
