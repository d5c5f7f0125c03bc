// Package reply shows a model's answer in Telegram as it is written: it posts the first text,
// edits it as more arrives at the pace the pacer allows (or grows a draft, in private chats with
// STREAM_MODE=draft), goes on in new messages past Telegram's 4096 characters, and ends with the
// complete, formatted answer. A reply owns the messages that show it (Display) and records what
// it is about to do before it does it (Journal), so that a restart can finish it.
//
// A send whose answer never came (a killed process, a broken connection) may have posted its
// message. The Bot API has no idempotency key, so the reply makes sure it knows where such a
// message can be, and looks there, all of it, in a way that changes nothing if it guesses wrong:
//
//   - Sends in a chat go one at a time (Registry's gate). Before each, the reply records the
//     highest message id known in the chat (the send's floor) and exactly what it carries.
//   - A send with no answer keeps the gate, and is sent again at once, exactly as it was: the
//     user sees the reply go on. The new message's id is the ceiling: Telegram numbers a chat's
//     messages in the order it posts them, so the lost send's message, if it exists, lies
//     strictly between floor and ceiling, and no other message of the bot's can be there.
//   - In the background, paced behind every other call, Searcher edits each id of that range
//     with exactly what the lost send carried: its own message answers "message is not
//     modified" and is deleted; a user's is refused ("can't be edited"), a deleted or unused id
//     is "not found". Nothing else can change. Ids known to belong to other replies are skipped.
//   - A restart gives each chat with a send of unknown outcome to the reply that made it until
//     that reply has sent again, and takes floors from the journal, never from what the chat
//     knows by then.
//
// Lost has the argument in full. The package knows nothing of conversations, commands or
// storage: the caller hands it a stream of text and a journal, and stores what it returns.
package reply

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"aurabot/bot/render"

	"github.com/cenkalti/backoff/v5"
)

const (
	cursor  = " ▍"
	maxText = 4096 // Telegram's limit, UTF-16 units
	// firstWait bounds how long the first text waits for a whole word: a first message of
	// three bytes followed by a second of silence reads worse than one that waits a moment.
	firstWait = 200 * time.Millisecond
	// retryPause is how soon an update that failed is tried again when no new text comes.
	retryPause = 500 * time.Millisecond
	// firstWord is how much text the first send shows at least, when it arrives within firstWait.
	firstWord = 8
)

// Config is how replies stream.
type Config struct {
	// StreamMode is StreamEdit (the default) or StreamDraft: private replies grow in a draft
	// (sendMessageDraft) instead of a message edited in place.
	StreamMode string `env:"STREAM_MODE" envDefault:"edit"`
	// MaxAnswerChars cuts longer answers (ErrTooLong).
	MaxAnswerChars int `env:"MAX_ANSWER_CHARS" envDefault:"65536"`
}

// Stream modes.
const (
	StreamEdit  = "edit"
	StreamDraft = "draft"
)

// Streamer streams replies. It is safe for concurrent use: each Stream is one reply.
type Streamer struct {
	deps     Deps
	cfg      Config
	draftIDs atomic.Int64
	side     sync.WaitGroup // typing indicators still running
}

// Wait waits for what replies left running (typing indicators finishing a call).
func (s *Streamer) Wait() { s.side.Wait() }

// NewStreamer returns a Streamer.
func NewStreamer(deps Deps, cfg Config) *Streamer {
	s := &Streamer{deps: deps, cfg: cfg}
	s.draftIDs.Store(time.Now().UnixMilli() % 1e9) // non-zero, and new after a restart
	return s
}

// Deps returns what the streamer was built with, for displays of notices and recoveries.
func (s *Streamer) Deps() Deps { return s.deps }

// Outcome is what a streamed reply ended with.
type Outcome struct {
	Text    string // everything the model sent that the user sees
	Err     error  // why the stream ended early; nil when it completed
	FirstID int    // the first Telegram message of the reply
	// Unfinished: the final text could not be shown in time (a shutdown, a database that
	// could not record it). The journal holds what the restart must show.
	Unfinished bool
	Edits      int           // live updates shown before the final message
	FirstText  time.Duration // from the start to the first text on screen; 0 if none
}

// Stream shows the answer that chunks yields as it grows, in a reply to t. stopData is the
// callback data of the Stop button ("" for none); started, if not nil, is called once with the
// function that stops this reply (ErrStopped), for /stop and the button. The answer is cut at
// MaxAnswerChars. chunks must end when the context it was made with ends: Stream's ctx.
func (s *Streamer) Stream(ctx context.Context, t Target, j Journal, stopData string, started func(stop func()), chunks func(ctx context.Context) iter.Seq2[string, error]) (out Outcome) {
	return s.StreamWith(ctx, t, j, stopData, started, chunks, Options{})
}

// Options are what a reply shows besides the model's answer.
type Options struct {
	// Prefix (Markdown) is shown at the top of the reply from its start, before the model
	// sends anything: the transcript of a voice message, say. It is journaled and shown like
	// the answer, but left out of Outcome.Text and of the MaxAnswerChars count.
	Prefix string
	// Notice gives the line shown under a reply that ended with err (ErrEmpty: the model sent
	// nothing; nil: none), and whether the answer is whole for all that (an output limit,
	// which the line explains). nil shows no line.
	Notice func(err error) (notice string, complete bool)
}

// StreamWith is Stream with options.
func (s *Streamer) StreamWith(ctx context.Context, t Target, j Journal, stopData string, started func(stop func()), chunks func(ctx context.Context) iter.Seq2[string, error], opt Options) (out Outcome) {
	start := time.Now()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if started != nil {
		started(func() { cancel(ErrStopped) })
	}

	var (
		mu      sync.Mutex
		buf     strings.Builder
		gotText = make(chan struct{})
		dirty   = make(chan struct{}, 1)
		done    = make(chan struct{})
		serr    error
	)
	buf.WriteString(opt.Prefix)
	if opt.Prefix != "" {
		dirty <- struct{}{} // shown at once
	}
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				serr = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		first := true
		n := 0
		for chunk, err := range chunks(sctx) {
			if err != nil {
				serr = err
				return
			}
			if chunk == "" {
				continue
			}
			runes := utf8.RuneCountInString(chunk)
			if lim := s.cfg.MaxAnswerChars; lim > 0 && n+runes > lim {
				chunk, runes = cutRunes(chunk, lim-n), lim-n
				serr = &TooLongError{Max: lim}
			}
			n += runes
			mu.Lock()
			buf.WriteString(chunk)
			mu.Unlock()
			if first {
				first = false
				close(gotText)
			}
			select {
			case dirty <- struct{}{}:
			default:
			}
			if serr != nil {
				return // stops the model's stream
			}
		}
	}()

	// The typing indicator is not waited for: a call of its in flight finishes on its own (see
	// typing), and Wait waits for it at shutdown.
	typingDone := make(chan struct{})
	s.side.Go(func() { s.typing(ctx, t, gotText, typingDone) })
	defer close(typingDone)

	d := NewDisplay(s.deps, t, j, stopData)
	defer d.Close()
	r := render.NewIncremental(maxText)
	var dr *draft
	if s.cfg.StreamMode == StreamDraft && !t.Group {
		dr = &draft{s: s, t: t, id: s.draftIDs.Add(1)}
	}
	snapshot := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	shown := ""
	shownAt := func() {
		out.Edits++
		if out.Edits == 1 {
			out.FirstText = time.Since(start)
		}
	}
	// paid is true while this reply holds a pacer slot for its chat that it has not used yet: a
	// slot is never thrown away, not even when the stream ends while an edit waits for one.
	paid := false
	firstDeadline := time.Time{}
	retry := time.AfterFunc(time.Hour, func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	})
	retry.Stop()
	defer retry.Stop()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-dirty:
		}
		text := snapshot()
		if text == shown {
			// Nothing new (the chunk that woke us went out with the last update): take no slot,
			// since a slot held while the model pauses would let two edits out back to back.
			continue
		}
		if shown == "" && !readable(text) {
			// The first text: wait a moment for a word, so the first thing the user reads is
			// not a fragment followed by a second of silence.
			if firstDeadline.IsZero() {
				firstDeadline = time.Now().Add(firstWait)
			}
			if time.Now().Before(firstDeadline) {
				select {
				case <-done:
					break loop
				case <-dirty:
				case <-time.After(time.Until(firstDeadline)):
				}
				select {
				case dirty <- struct{}{}:
				default:
				}
				continue
			}
		}
		if dr != nil {
			if err := dr.wait(sctx); err != nil {
				break loop
			}
		} else if !paid {
			if err := s.deps.Pacer.Wait(sctx, t.ChatID); err != nil {
				break loop
			}
			paid = true
		}
		select {
		case <-done:
			// The stream ended while this update waited: the final edit takes its slot.
			break loop
		default:
		}
		text = snapshot() // newer than shown: the text only grows
		if dr != nil {
			err := dr.show(sctx, r, text)
			if err == nil {
				shown = text
				shownAt()
				continue
			}
			if sctx.Err() != nil || errors.Is(err, errDraftThrottled) {
				continue
			}
			s.deps.Log.Warn("telegram refused a draft; streaming by edits", "chat_id", t.ChatID, "err", err)
			dr = nil
			if err := s.deps.Pacer.Wait(sctx, t.ChatID); err != nil {
				continue
			}
			paid = true
		}
		// Record what the user is about to see before showing it: a restart shows no less.
		if j != nil {
			if err := j.Show(sctx, Shown{Text: text}); err != nil {
				if sctx.Err() != nil {
					continue // stopped, or shutting down: not the storage's fault
				}
				s.deps.Log.Warn("could not record reply progress; not showing it yet", "chat_id", t.ChatID, "err", err)
				s.trouble(ctx, t, err)
				retry.Reset(retryPause)
				continue // paid stays: the slot is used by the next try
			}
		}
		err := d.Apply(sctx, streamingParts(r, text), false, paid)
		paid = false
		if errors.Is(err, errBlocked) {
			cancel(errBlocked)
			<-done
			return Outcome{Err: ErrBlocked}
		}
		if err != nil {
			// Try again soon even if the model says nothing more: the text must catch up.
			retry.Reset(retryPause)
			continue
		}
		shown = text
		shownAt()
	}
	<-done
	cancel(nil)

	text := snapshot()[len(opt.Prefix):]
	err := serr
	if cause := context.Cause(sctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the stream saw its context end: say why (stopped, shutdown)
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	final, why := text, err
	if strings.TrimSpace(text) == "" {
		final = ""
		if err == nil {
			why = ErrEmpty
		}
	}
	notice, complete := "", why == nil
	if opt.Notice != nil {
		notice, complete = opt.Notice(why)
	}
	fctx, fcancel := FinalContext(ctx)
	defer fcancel()
	// The whole text is recorded before it is shown: if the bot dies during the final edit, the
	// restart shows it again, complete, and never marks it interrupted.
	shownFinal := opt.Prefix + final
	if j != nil {
		if jerr := s.recordFinal(fctx, t, j, Shown{Text: shownFinal, Final: true, Notice: notice, Complete: complete}); jerr != nil {
			s.deps.Log.Error("could not record the final text; the restart will finish this reply", "chat_id", t.ChatID, "err", jerr)
			return Outcome{Text: final, Err: err, FirstID: d.FirstID(), Unfinished: true, Edits: out.Edits, FirstText: out.FirstText}
		}
	}
	if ferr := d.Apply(fctx, FinalParts(r, shownFinal, notice), true, paid); ferr != nil {
		s.deps.Log.Warn("final edit failed", "chat_id", t.ChatID, "err", ferr)
		if errors.Is(ferr, errBlocked) {
			return Outcome{Err: ErrBlocked}
		}
		if j != nil && (len(d.sent) > 0 || fctx.Err() != nil) {
			return Outcome{Text: final, Err: err, FirstID: d.FirstID(), Unfinished: true, Edits: out.Edits, FirstText: out.FirstText}
		}
	}
	if j != nil && !d.Settled() {
		return Outcome{Text: final, Err: err, FirstID: d.FirstID(), Unfinished: true, Edits: out.Edits, FirstText: out.FirstText}
	}
	return Outcome{Text: final, Err: err, FirstID: d.FirstID(), Edits: out.Edits, FirstText: out.FirstText}
}

// recordFinal records the final text, trying again while the database refuses (a full disk):
// the final text is never shown before it is recorded.
func (s *Streamer) recordFinal(ctx context.Context, t Target, j Journal, final Shown) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, j.Show(ctx, final)
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
			s.deps.Log.Warn("could not record the final text; trying again", "err", err, "retry_in", wait)
			s.trouble(ctx, t, err)
		}))
	return err
}

func (s *Streamer) trouble(ctx context.Context, t Target, err error) {
	if s.deps.Trouble != nil {
		s.deps.Trouble(ctx, t, err)
	}
}

// PanicError is a panic of the model's stream (or of the code that reads it), recovered: the
// reply ends with it as its error, and the bot goes on.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// readable reports whether text is enough for a first message: a line, or a whole word and at
// least firstWord characters.
func readable(text string) bool {
	if strings.ContainsRune(text, '\n') {
		return true
	}
	t := strings.TrimLeft(text, " \t")
	n := utf8.RuneCountInString(t)
	return n >= 4*firstWord || n >= firstWord && strings.ContainsAny(t, " \t")
}

// streamingParts are the messages of a reply while it streams: the last ends with the cursor.
func streamingParts(r *render.Incremental, md string) []render.Message {
	frozen, rest := r.Render(md)
	tail := render.Split(rest, maxText-render.UTF16Len(cursor))
	if len(tail) > 0 {
		tail[len(tail)-1].Text += cursor
	}
	return append(frozen, tail...)
}

// FinalParts are the messages of a finished reply: the text, and the notice under it.
func FinalParts(r *render.Incremental, md, notice string) []render.Message {
	if r == nil {
		r = render.NewIncremental(maxText)
	}
	frozen, rest := r.Render(md)
	return append(frozen, render.Split(AppendNotice(rest, notice), maxText)...)
}

// NoticeParts are the messages of a short notice (help, a refusal): plain text, split like
// an answer when it is long.
func NoticeParts(text string) []render.Message {
	return render.Split(render.Message{Text: text}, maxText)
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// finalGrace is how long a final edit may go on once the bot has begun to cut replies short at
// shutdown; finalLimit bounds it otherwise (waiting out Telegram penalties: the final text must
// arrive).
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
