package reply

import (
	"context"
)

// Recorded is what a journal holds of a reply that a restart must finish.
type Recorded struct {
	// IDs are the reply's messages in order; 0 is a message whose send had no answer.
	IDs   []int
	Floor int // the highest message id the reply knew in the chat
	// Shown is what the reply was about to show last.
	Shown
}

// Seen reports whether the user may have seen any of the reply: a message was about to be
// sent. A reply nobody saw may be asked of the model again.
func (r Recorded) Seen() bool { return len(r.IDs) > 0 }

// Resume finishes a reply that was cut by a crash or a kill: its messages (found again where a
// send had no answer) show the recorded text, complete, with its notice if it was final, else
// with an "interrupted" notice. It never shows less than the user saw, as every text is
// recorded before it is shown. It reports the text shown, the reply's first message and whether
// the answer was complete.
func (s *Streamer) Resume(ctx context.Context, t Target, j Journal, rec Recorded) (text string, firstID int, complete bool, err error) {
	d := NewDisplay(s.deps, t, j, "")
	d.Adopt(rec.IDs, rec.Floor)
	complete = rec.Final
	if !rec.Final {
		rec.Final, rec.Notice = true, Notice(ErrShutdown, s.cfg.Limits)
		if j != nil {
			if err := j.Show(ctx, rec.Shown); err != nil {
				return rec.Text, 0, false, err
			}
		}
	}
	parts := FinalParts(nil, rec.Text, rec.Notice)
	if rec.Plain {
		parts = NoticeParts(rec.Text)
	}
	fctx, cancel := FinalContext(ctx)
	defer cancel()
	err = d.Apply(fctx, parts, true, false)
	return rec.Text, d.FirstID(), complete, err
}

// Notify answers with a short plain notice in reply to t, through the same path as a reply's
// final text: recorded first, Telegram penalties waited out, other failures retried, within
// the final context's bounds (a shutdown cuts it short).
func (s *Streamer) Notify(ctx context.Context, t Target, j Journal, text string) error {
	if j != nil {
		if err := j.Show(ctx, Shown{Text: text, Final: true, Plain: true}); err != nil {
			return err
		}
	}
	fctx, cancel := FinalContext(ctx)
	defer cancel()
	d := NewDisplay(s.deps, t, j, "")
	return d.Apply(fctx, NoticeParts(text), true, false)
}
