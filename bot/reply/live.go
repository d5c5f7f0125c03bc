package reply

import (
	"context"
	"errors"
	"iter"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"aurabot/bot/render"
)

type stream struct {
	s          *Streamer
	ctx        context.Context
	sctx       context.Context // ends earlier than ctx when stopped, or the user blocked the bot
	cancel     context.CancelCauseFunc
	t          Target
	j          Journal
	opt        Options
	start      time.Time
	d          *Display
	r          *render.Incremental
	dr         *draft // nil: the reply streams by edits
	shown      string // the Markdown on screen
	out        Outcome
	gotText    chan struct{} // closed at the first text
	dirty      chan struct{} // the text changed, or an update is to be tried again
	done       chan struct{} // closed when the model's stream ended
	typingDone chan struct{}
	paid       bool  // the reply holds a pacer slot it has not used: never thrown away
	err        error // why the model's stream ended early; read once done is closed
	mu         sync.Mutex
	answer     strings.Builder
	think      thinking
}

func (st *stream) poke() {
	select {
	case st.dirty <- struct{}{}:
	default:
	}
}

func (st *stream) typing() {
	st.s.side.Go(func() { st.s.typing(st.ctx, st.t, st.gotText, st.typingDone) })
}

// read takes the model's chunks until its stream ends, fails, panics or passes MaxAnswerChars.
func (st *stream) read(chunks func(ctx context.Context) iter.Seq2[Chunk, error]) {
	defer close(st.done)
	defer func() {
		if v := recover(); v != nil {
			st.err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	first := true
	n := 0
	for c, err := range chunks(st.sctx) {
		if err != nil {
			st.err = err
			return
		}
		if c.Text == "" && c.Thinking == "" {
			continue
		}
		st.mu.Lock()
		if c.Text == "" {
			// Thinking: shown, but not the answer, and not counted against MaxAnswerChars.
			st.think.add(c.Thinking, time.Now())
			if st.think.started.IsZero() {
				st.mu.Unlock()
				continue // whitespace before any thought: nothing to show yet
			}
		} else {
			chunk, runes := c.Text, utf8.RuneCountInString(c.Text)
			if lim := st.s.cfg.MaxAnswerChars; lim > 0 && n+runes > lim {
				chunk, runes = string([]rune(chunk)[:lim-n]), lim-n
				st.err = &TooLongError{Max: lim}
			}
			n += runes
			st.answer.WriteString(chunk)
			if strings.TrimSpace(chunk) != "" {
				st.think.answering(time.Now()) // the first words of the answer end the thinking
			}
		}
		st.mu.Unlock()
		if first {
			first = false
			close(st.gotText)
		}
		st.poke()
		if st.err != nil {
			return
		}
	}
}

// snapshot is the Markdown the reply shows now: the prefix, the model's thinking (live, or
// collapsed once the answer began) and the answer.
func (st *stream) snapshot() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.opt.Prefix + st.think.block(st.s.cfg.Thinking != "off", !st.think.ended.IsZero(), time.Now()) + st.answer.String()
}

func (st *stream) showing(text string) {
	st.shown = text
	if st.out.Edits++; st.out.Edits == 1 {
		st.out.FirstText = time.Since(st.start)
	}
}

// byEdits gives up a draft Telegram refused (an older Telegram, say).
func (st *stream) byEdits(err error) {
	st.s.deps.Log.Warn("telegram refused a draft; streaming by edits", "chat_id", st.t.ChatID, "err", err)
	st.dr = nil
}

// live shows the text as it grows until the model's stream ends; false if the user blocked the
// bot. A draft is kept alive while the model is silent: its placeholder, or its text.
func (st *stream) live() bool {
	retry := time.AfterFunc(time.Hour, st.poke)
	retry.Stop()
	defer retry.Stop()
	var keep *time.Timer
	var keepC <-chan time.Time
	if st.dr != nil {
		keep = time.NewTimer(typingAfter)
		defer keep.Stop()
		keepC = keep.C
	}
	var firstDeadline time.Time
	for {
		select {
		case <-st.done:
			return true
		case <-st.dirty:
		case <-keepC:
			if st.dr == nil {
				continue
			}
			if err := st.dr.wait(st.sctx); err != nil {
				return true
			}
			err := st.dr.show(st.sctx, st.r, st.shown)
			if err != nil && st.sctx.Err() == nil && !errors.Is(err, errDraftThrottled) && st.shown == "" {
				st.byEdits(err)
				st.typing()
				continue
			}
			if st.shown == "" {
				keep.Reset(typingEvery)
			} else {
				keep.Reset(draftRefresh)
			}
			continue
		}
		text := st.snapshot()
		if text == st.shown {
			// Nothing new (the chunk that woke us went out with the last update): take no slot,
			// since a slot held while the model pauses would let two edits out back to back.
			continue
		}
		if st.shown == "" && !readable(text) {
			if firstDeadline.IsZero() {
				firstDeadline = time.Now().Add(firstWait)
			}
			if time.Now().Before(firstDeadline) {
				select {
				case <-st.done:
					return true
				case <-st.dirty:
				case <-time.After(time.Until(firstDeadline)):
				}
				st.poke()
				continue
			}
		}
		if st.dr != nil {
			if err := st.dr.wait(st.sctx); err != nil {
				return true
			}
		} else if !st.paid {
			if err := st.s.deps.Pacer.Wait(st.sctx, st.t.ChatID); err != nil {
				return true
			}
			st.paid = true
		}
		select {
		case <-st.done:
			return true // the stream ended while this update waited: the final edit takes its slot
		default:
		}
		text = st.snapshot() // newer than shown
		if st.dr != nil {
			err := st.dr.show(st.sctx, st.r, text)
			if err == nil {
				st.showing(text)
				keep.Reset(draftRefresh)
				continue
			}
			if st.sctx.Err() != nil || errors.Is(err, errDraftThrottled) {
				continue
			}
			st.byEdits(err)
			if err := st.s.deps.Pacer.Wait(st.sctx, st.t.ChatID); err != nil {
				continue
			}
			st.paid = true
		}
		// Record what the user is about to see before showing it: a restart shows no less.
		if st.j != nil {
			if err := st.j.Show(st.sctx, Shown{Text: text}); err != nil {
				if st.sctx.Err() != nil {
					continue // stopped, or shutting down: not the storage's fault
				}
				st.s.deps.Log.Warn("could not record reply progress; not showing it yet", "chat_id", st.t.ChatID, "err", err)
				st.s.trouble(st.ctx, st.t, err)
				retry.Reset(retryPause)
				continue // paid stays: the slot is used by the next try
			}
		}
		err := st.d.Apply(st.sctx, streamingParts(st.r, text), false, st.paid)
		st.paid = false
		if errors.Is(err, ErrBlocked) {
			st.cancel(ErrBlocked)
			<-st.done
			return false
		}
		if err != nil {
			retry.Reset(retryPause) // the text must catch up, even if the model says nothing more
			continue
		}
		st.showing(text)
	}
}

// end shows the final text, once the model's stream has ended, and says how the reply ended.
func (st *stream) end() Outcome {
	<-st.done
	st.cancel(nil)
	st.mu.Lock()
	text := st.answer.String()
	head := st.think.block(st.s.cfg.Thinking != "off", true, time.Now()) // collapsed: the thinking is over
	st.mu.Unlock()
	err := st.err
	if cause := context.Cause(st.sctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the stream saw its context end: say why (stopped, shutdown)
	}
	if err == nil && st.ctx.Err() != nil {
		err = context.Cause(st.ctx)
	}
	out, why := st.out, err
	out.Text, out.Err = text, err
	if strings.TrimSpace(text) == "" {
		out.Text = ""
		if err == nil {
			why = ErrEmpty
		}
	}
	notice, complete := "", why == nil
	if st.opt.Notice != nil {
		notice, complete = st.opt.Notice(why)
	}
	result := func(unfinished bool) Outcome {
		out.FirstID, out.Unfinished = st.d.FirstID(), unfinished
		return out
	}
	fctx, cancel := FinalContext(st.ctx)
	defer cancel()
	// The whole text is recorded before it is shown: if the bot dies during the final edit, the
	// restart shows it again, complete, and never marks it interrupted.
	final := st.opt.Prefix + head + out.Text
	if st.j != nil {
		if err := st.s.recordFinal(fctx, st.t, st.j, Shown{Text: final, Final: true, Notice: notice, Complete: complete}); err != nil {
			st.s.deps.Log.Error("could not record the final text; the restart will finish this reply", "chat_id", st.t.ChatID, "err", err)
			return result(true)
		}
	}
	if err := st.d.Apply(fctx, finalParts(st.r, final, notice), true, st.paid); err != nil {
		st.s.deps.Log.Warn("final edit failed", "chat_id", st.t.ChatID, "err", err)
		if errors.Is(err, ErrBlocked) {
			return Outcome{Err: ErrBlocked}
		}
		if st.j != nil && (len(st.d.sent) > 0 || fctx.Err() != nil) {
			return result(true)
		}
	}
	return result(st.j != nil && !st.d.Settled())
}
