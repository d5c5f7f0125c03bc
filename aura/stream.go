package aura

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v5"
)

// dialect is what differs between the wire protocols: the request and the
// decoding of the body. Everything else (transport, timeouts, retries, UTF-8
// carry-over) is shared and lives in this file.
type dialect interface {
	// path returns the endpoint path under the base URL's path.
	path(base string) string
	// setHeader adds the dialect's request headers.
	setHeader(h http.Header)
	// encode returns the request body for msgs, asking for model ("": the
	// configured one); usage asks the server to report the tokens it
	// counted, where the dialect can.
	encode(model string, msgs []Message, usage bool) ([]byte, error)
	// configuredModel returns the model asked for when none is named.
	configuredModel() string
	// listsModels reports whether the server has an openai model list.
	listsModels() bool
	// statusError describes a non-2xx response from its start line and the
	// start of its body.
	statusError(resp *http.Response, body []byte) *StatusError
	// newDecoder returns a decoder for one response body.
	newDecoder() decoder
}

// decoder turns raw body bytes into reply text.
type decoder interface {
	// decode appends the text in p, the next bytes of the body, to dst.
	// done reports that the reply is complete; later bytes are ignored.
	// An error (a *StatusError for an error event) ends the reply.
	decode(dst, p []byte) (out []byte, done bool, err error)
	// end is called when the body ends before done; it appends any text
	// still held back and says whether the end was clean.
	end(dst []byte) ([]byte, error)
	// complete is called after a clean end; a non-nil error (one wrapping
	// ErrOutputLimit) means the text is all there is but not all the model
	// meant to say.
	complete() error
	// trail reads body bytes that follow the reply's end (an openai usage
	// event after the finish_reason); they carry no text. nil means the
	// body ended there.
	trail(p []byte)
	// usage returns what the server said the request used, if it did.
	usage() (Usage, bool)
}

// Chunk is one element of a reply stream: a piece of the answer's text as
// it arrives, or (once, after the last text) what the server counted for
// the request. Exactly one field is set. It is a struct so that the stream
// can carry more kinds later (reasoning text, say) without changing its
// shape: a consumer that knows only Text skips the rest.
type Chunk struct {
	// Text is the next piece of the answer; never split inside a UTF-8
	// sequence.
	Text string
	// Usage is what the server says the request used, sent by openai
	// servers that support stream_options.include_usage (OpenAI, vLLM,
	// llama.cpp, Ollama); nil in every other chunk.
	Usage *Usage
}

// Usage is the token count a server reports for one request.
type Usage struct {
	// PromptTokens is what the server counted for the request's messages,
	// its chat template included: the real size of the prompt.
	PromptTokens int
	// CompletionTokens is what it generated.
	CompletionTokens int
}

// Stream sends msgs and yields the reply's text chunks as they are read.
// It is Chat's text alone, for the configured model.
// If the reply fails, the last pair yielded is ("", err); a clean end
// yields no error. Each iteration sends a new request. Stopping the
// iteration early closes the connection.
//
// A reply the server stopped at its output limit (openai: finish_reason
// "length", for example after Config.MaxOutputTokens tokens) yields all its
// text and then ("", err) with err wrapping ErrOutputLimit: the text is
// good to keep, but it ends mid-answer.
//
// Connection failures, and 502, 503 and 504 answers, are retried (twice, with
// a jittered exponential backoff) as long as no text has been yielded; a
// timeout, a cancellation, any other status and anything after the first
// yielded text are not.
func (c *Client) Stream(ctx context.Context, msgs []Message) iter.Seq2[string, error] {
	return c.StreamModel(ctx, "", msgs)
}

// StreamModel is Stream asking for the given model instead of Config.Model;
// "" means Config.Model. In the chatbot-ui protocol model is model.id, and
// model.name is the known name for that id, else the id itself (the
// configured MaxLength and TokenLimit stay). Models lists the names a
// server offers.
func (c *Client) StreamModel(ctx context.Context, model string, msgs []Message) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for ch, err := range c.Chat(ctx, model, msgs) {
			if err != nil {
				yield("", err)
				return
			}
			if ch.Text != "" && !yield(ch.Text, nil) {
				return
			}
		}
	}
}

// Chat is StreamModel yielding Chunks: the text, and after it the usage
// the server reported, when it did. Its errors and retries are
// StreamModel's.
//
// In the openai protocol it asks for the usage (stream_options with
// include_usage). A server that refuses that field (a 400 or 422 naming
// it) gets the request again without it, and never again from this
// Client.
func (c *Client) Chat(ctx context.Context, model string, msgs []Message) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		usage := !c.noUsage.Load()
		body, err := c.dialect.encode(model, msgs, usage)
		if err != nil {
			yield(Chunk{}, err)
			return
		}
		err = c.send(ctx, body, yield)
		if usage && usageRefused(err) {
			c.noUsage.Store(true)
			c.log.InfoContext(ctx, "aura: the server refuses stream_options; asking without it from now on", "err", err)
			if body, err = c.dialect.encode(model, msgs, false); err == nil {
				err = c.send(ctx, body, yield)
			}
		}
		if err != nil {
			yield(Chunk{}, err)
		}
	}
}

// usageRefused reports whether err is a server's refusal of the
// stream_options field: a 400 or 422 (the status FastAPI-style servers
// give a field they do not know) that names it. Such a refusal comes
// before any text.
func usageRefused(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) || se.inStream || se.StatusCode != http.StatusBadRequest && se.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	s := strings.ToLower(se.Reason + " " + se.Body)
	return strings.Contains(s, "stream_options") || strings.Contains(s, "include_usage") || strings.Contains(s, "extra inputs")
}

// errStopped reports that the caller stopped the iteration.
var errStopped = errors.New("aura: caller stopped reading")

// stream runs the tries for one reply. It returns the error to yield, or
// nil after a clean end or when the caller stopped iterating.
func (c *Client) stream(ctx context.Context, header http.Header, body []byte, yield func(Chunk, error) bool) error {
	start := time.Now()
	r := relay{yield: yield}
	wait := c.retryBackoff()
	for try := 1; ; try++ {
		retry, err := c.try(ctx, header, body, &r)
		switch {
		case err == nil:
			c.log.DebugContext(ctx, "aura: reply done", "bytes", r.total, "chunks", r.chunks, "tries", try, "took", time.Since(start))
			return nil
		case errors.Is(err, errStopped):
			c.log.DebugContext(ctx, "aura: caller stopped the reply", "bytes", r.total)
			return nil
		case !retry || r.sent || try >= c.tries:
			var ce *connectError
			if errors.As(err, &ce) {
				err = fmt.Errorf("%w: %w", ErrConnect, ce.err)
				if try > 1 {
					err = fmt.Errorf("%w after %d tries: %w", ErrConnect, try, ce.err)
				}
			}
			c.log.DebugContext(ctx, "aura: reply failed", "err", err, "tries", try, "bytes", r.total)
			return err
		}
		pause := wait.NextBackOff()
		c.log.WarnContext(ctx, "aura: retrying", "err", err, "try", try, "wait", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return cancelError(ctx)
		case <-t.C:
		}
	}
}

// retryBackoff is the wait between tries of one reply: backoff, doubled
// per try, times a random factor in [0.5, 1.5] so that clients that failed
// together do not come back together.
func (c *Client) retryBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: c.backoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Hour}
}

// connectError marks a failure to get a response at all; stream turns it
// into ErrConnect once the tries are used up.
type connectError struct{ err error }

func (e *connectError) Error() string { return "aura: connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func cancelError(ctx context.Context) error {
	return fmt.Errorf("aura: request stopped: %w", ctx.Err())
}

// try makes one request and relays its body. retry reports whether the
// failure may be retried if no text has reached the caller yet.
func (c *Client) try(ctx context.Context, header http.Header, body []byte, r *relay) (retry bool, err error) {
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(cancel, c.firstByte)
	defer wd.stop()

	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("aura: build request: %w", err)
	}
	req.Header = header.Clone()
	resp, err := c.hc.Do(req)
	if err != nil {
		if e := c.stopError(ctx, reqCtx); e != nil {
			return false, e
		}
		var cverr *tls.CertificateVerificationError
		return !errors.As(err, &cverr), &connectError{err}
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		if rerr != nil {
			if e := c.stopError(ctx, reqCtx); e != nil {
				return false, e
			}
		}
		se := c.redactor.statusError(c.dialect.statusError(resp, data))
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// A proxy or load balancer in front of the model could not
			// reach it, or it is briefly overloaded: worth another try.
			// A 500 is the model's own answer (chatbot-ui puts its reason
			// there) and is not retried. A browser check's page is not
			// retried here: send captures fresh cookies first.
			return !c.refused(se), se
		}
		return false, se
	}

	c.log.DebugContext(ctx, "aura: reply started", "status", resp.StatusCode, "proto", resp.Proto)
	dec := c.dialect.newDecoder()
	err = r.run(resp.Body, dec, wd, c.idle, c.drain)
	switch {
	case errors.Is(err, errStopped):
		return false, err
	case err == nil, r.done:
		// The reply was complete; whatever broke the drain does not matter.
		if u, ok := dec.usage(); ok && !r.yield(Chunk{Usage: &u}, nil) {
			return false, errStopped
		}
		return false, dec.complete()
	}
	var se *StatusError
	if errors.As(err, &se) {
		return false, c.redactor.statusError(se)
	}
	if errors.Is(err, ErrBrokenStream) {
		return false, err // the body ended cleanly, but too early
	}
	if e := c.stopError(ctx, reqCtx); e != nil {
		return false, e
	}
	return true, fmt.Errorf("%w: %w", ErrBrokenStream, err)
}

// stopError returns the error for a request stopped by the caller's
// context or by the watchdog, or nil if it was neither.
func (c *Client) stopError(ctx, reqCtx context.Context) error {
	if ctx.Err() != nil {
		return cancelError(ctx)
	}
	switch cause := context.Cause(reqCtx); {
	case errors.Is(cause, ErrFirstByteTimeout):
		return fmt.Errorf("%w (waited %s)", ErrFirstByteTimeout, c.firstByte)
	case errors.Is(cause, ErrIdleTimeout):
		return fmt.Errorf("%w (silent for %s)", ErrIdleTimeout, c.idle)
	}
	return nil
}

// readBufSize is the size of the buffer a reply's body is read into.
const readBufSize = 16 << 10

// relay copies one reply's text from a body to the caller, carrying an
// incomplete UTF-8 sequence over to the next read. It keeps its buffers
// across tries.
type relay struct {
	yield func(Chunk, error) bool
	buf   []byte // raw body bytes
	text  []byte // decoded text; starts with the carried-over tail

	sent   bool // some text reached the caller
	done   bool // the decoder saw the reply's end
	total  int  // bytes yielded
	chunks int  // chunks yielded
}

// run reads body to its end. wd may be nil (in tests that drive run
// directly). It returns nil on a clean end; errStopped if the caller
// stopped; a decoder's error; or the read error, unclassified.
func (r *relay) run(body io.Reader, dec decoder, wd *watchdog, idle, drain time.Duration) error {
	if r.buf == nil {
		r.buf = make([]byte, readBufSize)
		r.text = make([]byte, 0, readBufSize+utf8.UTFMax)
	}
	r.text = r.text[:0]
	r.done = false
	for {
		n, rerr := body.Read(r.buf)
		if wd != nil {
			// The caller's time with a chunk is not the server's silence.
			wd.stop()
		}
		if n > 0 && r.done {
			dec.trail(r.buf[:n])
		} else if n > 0 {
			var derr error
			r.text, r.done, derr = dec.decode(r.text, r.buf[:n])
			cut := len(r.text)
			if !r.done {
				cut = completeUTF8(r.text)
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
			var err error
			r.text, err = dec.end(r.text)
			if !r.emit(len(r.text)) {
				return errStopped
			}
			return err
		}
		if rerr != nil {
			return rerr
		}
		if wd != nil {
			switch {
			case r.done:
				wd.arm(drain, errDrained)
			case n > 0 || wd.phase() != ErrFirstByteTimeout:
				wd.arm(idle, ErrIdleTimeout)
			default:
				wd.arm(0, ErrFirstByteTimeout) // keep the first-byte deadline
			}
		}
	}
}

// emit yields r.text[:cut] and keeps the rest as the carry. It reports
// whether the caller wants more.
func (r *relay) emit(cut int) bool {
	if cut == 0 {
		return true
	}
	r.sent = true
	r.total += cut
	r.chunks++
	ok := r.yield(Chunk{Text: string(r.text[:cut])}, nil)
	r.text = r.text[:copy(r.text, r.text[cut:])]
	return ok
}

// completeUTF8 returns the length of the longest prefix of p that does not
// end inside a UTF-8 sequence that the next bytes could complete. Invalid
// bytes are not held back: they are passed on as they are.
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

// errDrained is the watchdog's cause when a complete reply's body did not
// end in time; the reply stands.
var errDrained = errors.New("aura: body did not end after the reply")

// watchdog cancels a request when the server is silent for too long. It is
// a single timer, stopped while the caller handles a chunk and re-armed
// before each read, so it costs no allocation per chunk.
type watchdog struct {
	t      *time.Timer
	cancel context.CancelCauseFunc
	cause  atomic.Pointer[error]
	// start is when the first-byte deadline began.
	start time.Time
	first time.Duration
}

func newWatchdog(cancel context.CancelCauseFunc, firstByte time.Duration) *watchdog {
	w := &watchdog{cancel: cancel, start: time.Now(), first: firstByte}
	cause := ErrFirstByteTimeout
	w.cause.Store(&cause)
	w.t = time.AfterFunc(firstByte, func() { w.cancel(*w.cause.Load()) })
	return w
}

// phase returns the cause the watchdog would cancel with.
func (w *watchdog) phase() error { return *w.cause.Load() }

// stop stops the timer.
func (w *watchdog) stop() { w.t.Stop() }

// arm restarts the timer for d with the given cause. For
// ErrFirstByteTimeout it resumes the original deadline instead.
func (w *watchdog) arm(d time.Duration, cause error) {
	if cause == ErrFirstByteTimeout {
		d = max(w.first-time.Since(w.start), time.Nanosecond)
	}
	if *w.cause.Load() != cause {
		w.cause.Store(&cause)
	}
	w.t.Reset(d)
}
