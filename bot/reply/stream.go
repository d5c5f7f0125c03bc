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
//   - A send with no answer keeps the gate and is sent again at once, exactly as it was: the
//     user sees the reply go on. The new message's id is the ceiling: Telegram numbers a chat's
//     messages in the order it posts them, so the lost send's message, if any, lies strictly
//     between floor and ceiling, where no other message of the bot's can be.
//   - In the background, paced behind every other call, Searcher edits each unknown id of that
//     range with exactly what the lost send carried: only its copy answers "message is not
//     modified", and is deleted. Nothing else can change.
//   - A restart gives each chat with a send of unknown outcome to the reply that made it until
//     that reply has sent again, and takes floors from the journal, not from the chat.
//
// Lost has the argument in full. The package knows nothing of conversations, commands or
// storage: the caller hands it a stream of text (the answer, and a reasoning model's thinking,
// shown above it: see thinking.go) and a journal, and stores what it returns.
package reply

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"aurabot/bot/render"
)

const (
	cursor  = " ▍"
	maxText = 4096 // Telegram's limit, UTF-16 units
	// The first text waits up to firstWait for a whole word (firstWord characters): three bytes
	// and a second of silence read worse than a moment's wait.
	firstWait  = 200 * time.Millisecond
	firstWord  = 8
	retryPause = 500 * time.Millisecond // a failed update is tried again this soon without new text
)

// Config is how replies stream.
type Config struct {
	StreamMode     string `env:"STREAM_MODE" envDefault:"edit"`       // StreamEdit, or StreamDraft (private chats)
	MaxAnswerChars int    `env:"MAX_ANSWER_CHARS" envDefault:"65536"` // longer answers are cut (ErrTooLong)
	Thinking       string `env:"SHOW_THINKING" envDefault:"on"`       // "off": only how long the model thought
}

// Stream modes.
const (
	StreamEdit  = "edit"
	StreamDraft = "draft"
)

// Streamer streams replies. It is safe for concurrent use: each StreamWith is one reply.
type Streamer struct {
	deps     Deps
	cfg      Config
	draftIDs atomic.Int64
	side     sync.WaitGroup // typing indicators still running
}

// NewStreamer returns a Streamer.
func NewStreamer(deps Deps, cfg Config) *Streamer {
	s := &Streamer{deps: deps, cfg: cfg}
	s.draftIDs.Store(time.Now().UnixMilli() % 1e9) // non-zero, and new after a restart
	return s
}

// Wait waits for what replies left running (typing indicators finishing a call).
func (s *Streamer) Wait() { s.side.Wait() }

// Outcome is what a streamed reply ended with.
type Outcome struct {
	Text    string // the answer the model sent, as the user sees it (its thinking left out)
	Err     error  // why the stream ended early; nil when it completed
	FirstID int    // the first Telegram message of the reply
	// Unfinished: the final text could not be shown (or recorded) in time; the journal holds it.
	Unfinished bool
	Edits      int           // live updates shown before the final message
	FirstText  time.Duration // from the start to the first text on screen; 0 if none
}

// Control is how the caller reaches a reply while it streams.
type Control struct {
	Stop    func() // stops the reply (ErrStopped): /stop, the Stop button, Telegram's own stop
	DraftID int64  // the draft_id Telegram's own Stop button names; 0 when streaming by edits
}

// Options are what a reply shows besides the model's answer.
type Options struct {
	// Prefix (Markdown: a voice message's transcript, say) tops the reply, above the thinking;
	// it is not part of Outcome.Text nor counted against MaxAnswerChars.
	Prefix string
	// Notice gives the line under a reply that ended with err (ErrEmpty: nothing sent; nil:
	// none), and whether the answer is whole all the same (an output limit). nil: no line.
	Notice func(err error) (notice string, complete bool)
}

// StreamWith shows the answer chunks yields as it grows, in a reply to t, with the model's
// thinking above it. stopData is the Stop button's callback data ("": none); started, if not nil,
// gets the reply's Control. chunks must end when the context it is given ends.
func (s *Streamer) StreamWith(ctx context.Context, t Target, j Journal, stopData string, started func(Control), chunks func(ctx context.Context) iter.Seq2[Chunk, error], opt Options) Outcome {
	st := &stream{s: s, ctx: ctx, t: t, j: j, opt: opt, start: time.Now(), r: render.NewIncremental(maxText),
		gotText: make(chan struct{}), dirty: make(chan struct{}, 1), done: make(chan struct{}), typingDone: make(chan struct{})}
	st.sctx, st.cancel = context.WithCancelCause(ctx)
	defer st.cancel(nil)
	if s.cfg.StreamMode == StreamDraft && !t.Group {
		st.dr = &draft{s: s, t: t, id: s.draftIDs.Add(1)}
	}
	if started != nil {
		c := Control{Stop: func() { st.cancel(ErrStopped) }}
		if st.dr != nil {
			c.DraftID = st.dr.id
		}
		started(c)
	}
	if opt.Prefix != "" {
		st.poke() // shown at once
	}
	go st.read(chunks)
	// The typing indicator is not waited for (Wait does, at shutdown); a draft shows Telegram's
	// "Thinking…" placeholder instead (see live).
	defer close(st.typingDone)
	if st.dr == nil {
		st.typing()
	}
	st.d = NewDisplay(s.deps, t, j, stopData)
	defer st.d.Close()
	if !st.live() {
		return Outcome{Err: ErrBlocked}
	}
	return st.end()
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
