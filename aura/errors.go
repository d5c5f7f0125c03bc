package aura

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"aurabot/aura/internal/reason"
)

// Sentinel errors a caller can branch on with errors.Is; the errors Chat yields wrap them.
var (
	// ErrBrokenStream means the body broke off before the reply's end: a truncated chunked
	// body, a reset connection, an openai stream without [DONE] or a finish_reason.
	ErrBrokenStream = errors.New("aura: the reply broke off before its end")
	// ErrFirstByteTimeout means no headers or first body byte came within FirstByteTimeout.
	ErrFirstByteTimeout = errors.New("aura: the server did not start answering in time")
	// ErrIdleTimeout means the server went silent mid-reply for longer than Config.IdleTimeout.
	ErrIdleTimeout = errors.New("aura: the server stopped sending mid-reply")
	// ErrConnect means no connection could be made, even after retries; the error wraps the
	// last cause too.
	ErrConnect = errors.New("aura: could not connect to the server")
	// ErrOutputLimit means the server stopped the reply at its output limit (openai:
	// finish_reason "length"): the text yielded before it is worth keeping, but unfinished.
	ErrOutputLimit = errors.New("aura: the reply was cut at the output limit")
	// ErrImagesUnsupported means a request held images, which chatbot-ui cannot send; no
	// request was made.
	ErrImagesUnsupported = errors.New("aura: the chatbot-ui protocol cannot send images")
)

// maxErrorBody is the most of an error response body a StatusError keeps.
const maxErrorBody = 1 << 10

// StatusError is a reply the server refused: a non-2xx status, or, in the openai dialect, an
// error event inside a 200 stream.
type StatusError struct {
	// StatusCode is the HTTP status; for an error event, the error object's "code" when it is
	// a valid HTTP status (llama.cpp and vLLM send one), else 200, the stream's.
	StatusCode int
	// Reason says why: the status line's reason phrase (where chatbot-ui explains), or in
	// openai error.message from a JSON error body when there is one.
	Reason string
	// Body is the start of the response body (at most 1 KiB), or the error event's payload.
	Body string

	inStream bool
}

func (e *StatusError) Error() string {
	switch {
	case e.inStream && e.Reason == "":
		return "aura: the server reported an error mid-reply"
	case e.inStream:
		return "aura: the server reported an error mid-reply: " + e.Reason
	case e.Reason == "":
		return fmt.Sprintf("aura: server answered %d", e.StatusCode)
	}
	return fmt.Sprintf("aura: server answered %d %s", e.StatusCode, e.Reason)
}

// UserReason returns Reason made fit to show a user (see reason.Sanitize): one line of at most
// 200 characters, no links, nothing key-like, no trailing punctuation; "" when nothing useful
// remains. Error and Body keep the full text for logs.
func (e *StatusError) UserReason() string {
	return reason.Sanitize(e.Reason)
}

// statusError describes a non-2xx answer (status is resp.Status), redacted.
func (c *Client) statusError(code int, status string, body []byte) *StatusError {
	se := &StatusError{
		StatusCode: code,
		Reason:     strings.TrimSpace(strings.TrimPrefix(status, strconv.Itoa(code))),
		Body:       reason.Clip(string(body), maxErrorBody),
	}
	if msg, _, ok := reason.ErrorBody(body); c.openai && ok && msg != "" {
		se.Reason = msg
	}
	return c.redact(se)
}

func (c *Client) redact(se *StatusError) *StatusError {
	if c.redactText != nil {
		se.Reason, se.Body = c.redactText(se.Reason), c.redactText(se.Body)
	}
	return se
}

// streamError is the error of an openai error event.
func streamError(data []byte) *StatusError {
	se := &StatusError{StatusCode: 200, Body: reason.Clip(string(data), maxErrorBody), inStream: true}
	msg, code, ok := reason.ErrorBody(data)
	if !ok {
		// llama.cpp's "error:" field holds the error object itself.
		msg, code, ok = reason.ErrorObject(data)
	}
	if ok {
		se.Reason = msg
		if code >= 100 && code <= 599 {
			se.StatusCode = code
		}
	}
	return se
}

// OutputLimitError is ErrOutputLimit with the limit asked for (MaxOutputTokens; 0: the server's).
type OutputLimitError struct{ MaxTokens int }

func (e *OutputLimitError) Error() string {
	return ErrOutputLimit.Error() + ` (finish_reason "length")`
}
func (e *OutputLimitError) Is(target error) bool { return target == ErrOutputLimit }
