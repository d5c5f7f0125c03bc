package aura

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// decoder turns raw body bytes into reply text: the answer, and the model's thinking.
type decoder interface {
	// decode adds the text in p to dst; done: the reply is complete. An error ends it.
	decode(dst *decoded, p []byte) (done bool, err error)
	// end adds what is held back when the body ends before done; nil: a clean end.
	end(dst *decoded) error
	// trail reads what follows the reply's end (an openai usage event); nil: the body ended.
	trail(p []byte)
	// result is, after a clean end, the usage the server reported (nil: none), and an error
	// wrapping ErrOutputLimit when the text is all there is but not all the model meant.
	result() (*Usage, error)
}

type textKind uint8

const (
	answerText textKind = iota
	thinkingText
)

func (k textKind) chunk(s string) Chunk {
	if k == thinkingText {
		return Chunk{Thinking: s}
	}
	return Chunk{Text: s}
}

// decoded is the text a decoder has read and the relay has not passed on yet: whole runs of one
// kind, and the newest run, which may end inside a UTF-8 sequence the next read completes.
type decoded struct {
	runs []Chunk // earlier runs, complete
	kind textKind
	text []byte // the newest run
}

// add appends s, text of kind k, closing the newest run first if it is of another kind.
func add[T string | []byte](d *decoded, k textKind, s T) {
	if len(s) == 0 {
		return
	}
	if k != d.kind && len(d.text) > 0 {
		d.runs = append(d.runs, d.kind.chunk(string(d.text)))
		d.text = d.text[:0]
	}
	d.kind = k
	d.text = append(d.text, s...)
}

const readBufSize = 4 << 10 // the size of each read of a reply's body

// relay copies one reply's text from a body to the caller, keeping its buffers across tries.
type relay struct {
	yield func(Chunk, error) bool
	buf   []byte  // raw body bytes
	out   decoded // decoded text; its newest run starts with the carried-over tail

	sent   bool // some text reached the caller
	done   bool // the decoder saw the reply's end
	total  int  // bytes yielded
	chunks int  // chunks yielded
}

// run reads body to its end (wd may be nil): nil on a clean end, errStopped if the caller
// stopped, a decoder's error, or the read error.
func (r *relay) run(body io.Reader, dec decoder, wd *watchdog, idle, drain time.Duration) error {
	if r.buf == nil {
		r.buf = make([]byte, readBufSize)
		r.out.text = make([]byte, 0, readBufSize+utf8.UTFMax)
	}
	r.out.text, r.out.runs, r.out.kind = r.out.text[:0], r.out.runs[:0], answerText
	r.done = false
	for {
		n, rerr := body.Read(r.buf)
		if wd != nil {
			wd.stop() // the caller's time with a chunk is not the server's silence
		}
		if n > 0 && r.done {
			dec.trail(r.buf[:n])
		} else if n > 0 {
			var derr error
			r.done, derr = dec.decode(&r.out, r.buf[:n])
			cut := len(r.out.text)
			if !r.done {
				cut = completeUTF8(r.out.text)
			}
			if !r.emit(cut) {
				return errStopped
			}
			if derr != nil {
				return derr
			}
		}
		if rerr == io.EOF {
			if r.done {
				dec.trail(nil)
				return nil
			}
			err := dec.end(&r.out)
			if !r.emit(len(r.out.text)) {
				return errStopped
			}
			return err
		}
		if rerr != nil {
			return rerr
		}
		if wd != nil {
			// Any bytes are the server's activity, thinking included: a model that thinks for
			// minutes before it answers is not silent.
			switch {
			case r.done:
				wd.arm(drain, errDrained)
			case n > 0 || *wd.cause.Load() != ErrFirstByteTimeout:
				wd.arm(idle, ErrIdleTimeout)
			default:
				wd.arm(0, ErrFirstByteTimeout) // keep the first-byte deadline
			}
		}
	}
}

// emit yields the complete runs and the newest run up to cut, keeping the rest; false: the
// caller stopped.
func (r *relay) emit(cut int) bool {
	for i, c := range r.out.runs {
		r.sent = true
		r.total += len(c.Text) + len(c.Thinking)
		r.chunks++
		if !r.yield(c, nil) {
			r.out.runs = r.out.runs[:0]
			return false
		}
		r.out.runs[i] = Chunk{}
	}
	r.out.runs = r.out.runs[:0]
	if cut == 0 {
		return true
	}
	r.sent = true
	r.total += cut
	r.chunks++
	ok := r.yield(r.out.kind.chunk(string(r.out.text[:cut])), nil)
	r.out.text = r.out.text[:copy(r.out.text, r.out.text[cut:])]
	return ok
}

// completeUTF8 returns the length of the longest prefix of p that does not end inside a UTF-8
// sequence that the next bytes could complete. Invalid bytes are passed on as they are.
func completeUTF8(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}

// errDrained is the watchdog's cause when a complete reply's body did not end in time; the
// reply stands.
var errDrained = errors.New("aura: body did not end after the reply")

// watchdog cancels a request when the server is silent for too long: one timer, stopped while
// the caller handles a chunk and re-armed before each read (no allocation per chunk).
type watchdog struct {
	t      *time.Timer
	cancel context.CancelCauseFunc
	cause  atomic.Pointer[error]
	start  time.Time     // when the first-byte deadline began
	first  time.Duration // and how long it is
}

func newWatchdog(cancel context.CancelCauseFunc, firstByte time.Duration) *watchdog {
	w := &watchdog{cancel: cancel, start: time.Now(), first: firstByte}
	cause := ErrFirstByteTimeout
	w.cause.Store(&cause)
	w.t = time.AfterFunc(firstByte, func() { w.cancel(*w.cause.Load()) })
	return w
}

func (w *watchdog) stop() { w.t.Stop() }

// arm restarts the timer for d with the given cause; for ErrFirstByteTimeout it resumes the
// original deadline instead.
func (w *watchdog) arm(d time.Duration, cause error) {
	if cause == ErrFirstByteTimeout {
		d = max(w.first-time.Since(w.start), time.Nanosecond)
	}
	if *w.cause.Load() != cause {
		w.cause.Store(&cause)
	}
	w.t.Reset(d)
}
