package reply

import (
	"context"
	"errors"
)

// Recorded is what a journal holds of a reply that must be finished: cut by a crash, or left
// unfinished when Telegram stopped answering.
type Recorded struct {
	Parts []RecordedPart // the reply's messages in order
	// Shown is what the reply was about to show last.
	Shown
}

// RecordedPart is one message of a recorded reply.
type RecordedPart struct {
	ID    int // 0: a send whose answer never came
	Floor int // the highest message id known in the chat when it was first sent
	// Wire is what its send carried; Tries counts its sends, before the last, with no answer.
	Wire  []byte
	Tries int
}

// Seen reports whether the user may have seen any of the reply: a message was about to be
// sent. A reply nobody saw may be asked of the model again.
func (r Recorded) Seen() bool { return len(r.Parts) > 0 }

// Unsettled reports whether a send of the reply had no answer: until the reply is resumed, no
// other message may be sent in its chat (see Registry).
func (r Recorded) Unsettled() bool {
	for _, p := range r.Parts {
		if p.ID == 0 {
			return true
		}
	}
	return false
}

// ErrUnfinished means a reply's messages could not be brought to their final text (Telegram
// did not answer in time, or refused): the journal holds what they must show, and Resume
// finishes them.
var ErrUnfinished = errors.New("reply: unfinished")

// Resume finishes a reply from its journal: after a crash or a kill, or later in the same run
// when Telegram stopped answering. Its messages (a send that had no answer made again) show the
// recorded text, complete, with its notice if it was final, else with cut (the caller's words
// for a reply cut short: interrupted, or skipped). It never shows
// less than the user saw, as every text is recorded before it is shown. It reports the text
// shown, the reply's first message and whether the answer was whole (Shown.Complete); an error
// wraps ErrUnfinished when the messages are not settled.
func (s *Streamer) Resume(ctx context.Context, t Target, j Journal, rec Recorded, cut string) (text string, firstID int, complete bool, err error) {
	d := NewDisplay(s.deps, t, j, "")
	defer d.Close()
	d.Adopt(rec.Parts)
	complete = rec.Final && rec.Complete
	if !rec.Final {
		rec.Final, rec.Notice, rec.Complete = true, cut, false
		if j != nil {
			if err := j.Show(ctx, rec.Shown); err != nil {
				return rec.Text, 0, false, errors.Join(ErrUnfinished, err)
			}
		}
	}
	parts := FinalParts(nil, rec.Text, rec.Notice)
	if rec.Plain {
		parts = NoticeParts(rec.Text)
	}
	fctx, cancel := FinalContext(ctx)
	defer cancel()
	if err := d.Apply(fctx, parts, true, false); err != nil {
		if errors.Is(err, errBlocked) {
			return rec.Text, d.FirstID(), complete, ErrBlocked
		}
		return rec.Text, d.FirstID(), complete, errors.Join(ErrUnfinished, err)
	}
	return rec.Text, d.FirstID(), complete, nil
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
	if err := d.Apply(fctx, NoticeParts(text), true, false); err != nil {
		if j != nil && !errors.Is(err, errBlocked) && len(d.sent) > 0 {
			return errors.Join(ErrUnfinished, err)
		}
		return err
	}
	return nil
}
