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
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Chunk is one element of a reply stream; exactly one field is set.
type Chunk struct {
	Text string // the next piece of the answer; never split inside a UTF-8 sequence
	// Thinking is the next piece of what a reasoning model thinks before it answers (openai's
	// delta.reasoning_content or delta.reasoning, or a <think>…</think> block that starts the
	// content). It is not part of the answer: a conversation's history keeps Text alone.
	Thinking string
	// Usage comes once, after the text, from openai servers that support include_usage.
	Usage *Usage
}

// Usage is the token count a server reports for one request; PromptTokens includes its chat
// template: the real size of the prompt.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// Chat sends msgs, asking for model ("": Config.Model; in chatbot-ui, model.id with its known
// name, else the id), and yields the reply as it is read: the answer's text, the model's thinking
// (see Chunk), then the usage the server reported, if it did. A failed reply yields (Chunk{}, err)
// last. Each iteration sends a new request; stopping it early closes the connection. A reply cut
// at the output limit (finish_reason "length") yields all its text, then ErrOutputLimit.
//
// Connection failures and 502, 503 and 504 are retried (twice, jittered exponential backoff)
// while nothing has been yielded; nothing else is. In the openai protocol it asks for the usage
// (stream_options); a server that refuses that field (a 400 or 422 naming it) is asked again
// without it, and never again from this Client.
func (c *Client) Chat(ctx context.Context, model string, msgs []Message) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		usage := !c.noUsage.Load()
		body, err := c.encode(model, msgs, usage)
		if err != nil {
			yield(Chunk{}, err)
			return
		}
		tags := thinkYield{yield: yield}
		err = c.send(ctx, body, tags.chunk)
		if usage && usageRefused(err) {
			c.noUsage.Store(true)
			c.log.InfoContext(ctx, "aura: the server refuses stream_options; asking without it from now on", "err", err)
			if body, err = c.encode(model, msgs, false); err == nil {
				err = c.send(ctx, body, tags.chunk)
			}
		}
		if tags.flush() && err != nil {
			yield(Chunk{}, err)
		}
	}
}

// usageRefused reports whether err is a 400 or 422 (FastAPI's status for an unknown field) that
// names stream_options.
func usageRefused(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) || se.inStream || se.StatusCode != http.StatusBadRequest && se.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	s := strings.ToLower(se.Reason + " " + se.Body)
	return strings.Contains(s, "stream_options") || strings.Contains(s, "include_usage") || strings.Contains(s, "extra inputs")
}

var errStopped = errors.New("aura: caller stopped reading")

// stream runs the tries for one reply: the error to yield, or nil after a clean end or a stop.
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
		select {
		case <-ctx.Done():
			return cancelError(ctx)
		case <-time.After(pause):
		}
	}
}

// retryBackoff doubles per try, jittered by [0.5, 1.5] so that clients that failed together do
// not come back together.
func (c *Client) retryBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: c.backoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Hour}
}

// connectError is a failure to get a response at all: ErrConnect once the tries are used up.
type connectError struct{ err error }

func (e *connectError) Error() string { return "aura: connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func cancelError(ctx context.Context) error {
	return fmt.Errorf("aura: request stopped: %w", ctx.Err())
}

// try makes one request and relays its body; retry: the failure may be retried if no text has
// reached the caller yet.
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
		if e := c.stopError(ctx, reqCtx); rerr != nil && e != nil {
			return false, e
		}
		se := c.statusError(resp.StatusCode, resp.Status, data)
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// A proxy could not reach the model, or it is briefly overloaded. A 500 is the
			// model's own answer (chatbot-ui's reason), not retried; nor is a browser check's
			// page here: send captures fresh cookies first.
			return !c.refused(se), se
		}
		return false, se
	}

	c.log.DebugContext(ctx, "aura: reply started", "status", resp.StatusCode, "proto", resp.Proto)
	dec := c.dialect.newDecoder()
	err = r.run(resp.Body, dec, wd, c.idle, c.drain)
	var se *StatusError
	switch {
	case errors.Is(err, errStopped):
		return false, err
	case err == nil, r.done:
		// The reply was complete; whatever broke the drain does not matter.
		used, err := dec.result()
		if used != nil && !r.yield(Chunk{Usage: used}, nil) {
			return false, errStopped
		}
		return false, err
	case errors.As(err, &se):
		return false, c.redact(se)
	case errors.Is(err, ErrBrokenStream):
		return false, err // the body ended cleanly, but too early
	}
	if e := c.stopError(ctx, reqCtx); e != nil {
		return false, e
	}
	return true, fmt.Errorf("%w: %w", ErrBrokenStream, err)
}

// stopError is the error of a request stopped by the caller or the watchdog; nil for neither.
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
