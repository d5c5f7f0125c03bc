package aura

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"aurabot/aura/internal/reason"
)

// Sentinel errors a caller can branch on with errors.Is. The errors Stream
// yields wrap them with details, for example
// "aura: the reply broke off before its end: unexpected EOF".
var (
	// ErrBrokenStream means the body broke off before the reply's end: a
	// truncated chunked body, a reset connection, or an openai stream that
	// ended without [DONE] or a finish_reason.
	ErrBrokenStream = errors.New("aura: the reply broke off before its end")

	// ErrFirstByteTimeout means the server sent no response headers or no
	// first body byte within Config.FirstByteTimeout.
	ErrFirstByteTimeout = errors.New("aura: the server did not start answering in time")

	// ErrIdleTimeout means the server went silent mid-reply for longer than
	// Config.IdleTimeout.
	ErrIdleTimeout = errors.New("aura: the server stopped sending mid-reply")

	// ErrConnect means no connection could be made, even after retries. The
	// error that wraps it also wraps the last cause (a *net.OpError, say).
	ErrConnect = errors.New("aura: could not connect to the server")

	// ErrOutputLimit means the server stopped the reply at its output
	// limit (openai: finish_reason "length"). All the text was yielded
	// before it and is worth keeping; the answer is just not finished.
	ErrOutputLimit = errors.New("aura: the reply was cut at the output limit")

	// ErrImagesUnsupported means a request held images but the protocol
	// cannot send them (chatbot-ui). No request was made.
	ErrImagesUnsupported = errors.New("aura: the chatbot-ui protocol cannot send images")
)

// maxErrorBody is the most of an error response body a StatusError keeps.
const maxErrorBody = 1 << 10

// StatusError is a reply the server refused: a non-2xx status, or, in the
// openai dialect, an error event inside a 200 stream.
type StatusError struct {
	// StatusCode is the HTTP status. For an error event inside an openai
	// stream it is the error object's numeric "code" when that is a valid
	// HTTP status (llama.cpp and vLLM send one), else 200, the status of
	// the stream that carried it.
	StatusCode int
	// Reason says why. In the chatbot-ui dialect it is the reason phrase of
	// the status line ("HTTP/1.1 500 model overloaded" gives "model
	// overloaded"): that server puts its explanation nowhere else. In the
	// openai dialect it is error.message from a JSON error body when there
	// is one, else the reason phrase.
	Reason string
	// Body is the start of the response body (at most 1 KiB, cut at a
	// character boundary); for an in-stream error, the event's payload.
	Body string

	inStream bool
}

func (e *StatusError) Error() string {
	if e.inStream {
		if e.Reason == "" {
			return "aura: the server reported an error mid-reply"
		}
		return "aura: the server reported an error mid-reply: " + e.Reason
	}
	if e.Reason == "" {
		return fmt.Sprintf("aura: server answered %d", e.StatusCode)
	}
	return fmt.Sprintf("aura: server answered %d %s", e.StatusCode, e.Reason)
}

// UserReason returns Reason made fit to show a user: the first line, at
// most 200 characters, without links or anything that looks like a key or
// a token (the text after such a word is dropped too), and without
// trailing punctuation, so that the caller can end it with its own ".". A
// closing quote or bracket may end it. It is "" when nothing useful
// remains. Error and Body keep the full text for logs.
func (e *StatusError) UserReason() string {
	return reason.Sanitize(e.Reason)
}

// truncateUTF8 returns at most n bytes of s, cut so that no character is
// split.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// redactor removes configured secrets from server-supplied text before it
// goes into an error. A server may echo a key back ("Incorrect API key
// provided: sk-..."), and errors end up in logs and in chats.
type redactor struct {
	secrets []string
}

func newRedactor(key, cookies string) redactor {
	var r redactor
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	add(key)
	add(cookies)
	for part := range strings.SplitSeq(cookies, ";") {
		_, value, ok := strings.Cut(part, "=")
		if ok {
			add(value)
		}
	}
	// Longest first, so that a secret containing another is removed whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

func (r redactor) redact(s string) string {
	for _, secret := range r.secrets {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

func (r redactor) statusError(e *StatusError) *StatusError {
	e.Reason = r.redact(e.Reason)
	e.Body = r.redact(e.Body)
	return e
}

// OutputLimitError is ErrOutputLimit, with the limit the client asked for (MaxOutputTokens; 0
// when it asked for none and the server's own applied), for the user to be told which.
type OutputLimitError struct{ MaxTokens int }

func (e *OutputLimitError) Error() string {
	return ErrOutputLimit.Error() + ` (finish_reason "length")`
}
func (e *OutputLimitError) Is(target error) bool { return target == ErrOutputLimit }
