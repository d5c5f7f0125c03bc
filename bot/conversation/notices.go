package conversation

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/history"
)

// The words a user reads under a reply that did not end well: decided here, where the
// conversation is, from what went wrong; bot/reply only shows them.

// notice is the line under a reply that ended with err (nil: none), and whether the answer is
// whole as far as the user is concerned: it ended by itself, or at an output limit, which its
// notice explains.
func notice(err error) (string, bool) {
	var se *aura.StatusError
	var tooLong *reply.TooLongError
	var cut *aura.OutputLimitError
	switch {
	case err == nil:
		return "", true
	case errors.Is(err, reply.ErrEmpty):
		return "⚠️ The model sent an empty answer. Send /retry to try again.", false
	case errors.Is(err, reply.ErrStopped):
		return "⏹ Stopped.", false
	case errors.Is(err, reply.ErrShutdown):
		return interrupted, false
	case errors.As(err, &tooLong):
		return "✂️ The answer was cut here: it passed the longest answer this bot shows (" + strconv.Itoa(tooLong.Max) + " characters).", false
	case errors.As(err, &cut) && cut.MaxTokens > 0:
		return "✂️ The answer reached the model's output limit (AURA_MAX_OUTPUT_TOKENS=" + strconv.Itoa(cut.MaxTokens) + ").", true
	case errors.Is(err, aura.ErrOutputLimit):
		return "✂️ The answer reached the model server's output limit.", true
	case errors.As(err, &se):
		msg := "⚠️ The model server failed with HTTP status " + strconv.Itoa(se.StatusCode)
		reason := se.UserReason()
		if se.StatusCode < 300 {
			// An error event inside a stream that had started fine.
			msg = "⚠️ The model server reported an error mid-answer"
			if reason != "" {
				msg += ": " + reason
			}
		} else if reason != "" {
			msg = "⚠️ The model server failed: " + strconv.Itoa(se.StatusCode) + " " + reason
		}
		if se.StatusCode == http.StatusNotFound {
			// "model 'x' not found" (Ollama, OpenAI, vLLM): asking again cannot help.
			return sentence(msg) + " Choose another model with /model.", false
		}
		return sentence(msg) + " Send /retry to try again.", false
	}
	return "⚠️ " + modelFailure(err).Notice + " Send /retry to try again.", false
}

// interrupted is the line under a reply that a shutdown or a crash cut.
const interrupted = "⚠️ Interrupted: the bot restarted. Send /retry to get a full answer."

func sentence(s string) string {
	return strings.TrimRight(s, " .!?:;,") + "."
}

// failureKind is a model server failure other than an HTTP status: the error it matches, its
// metric label, and what the user is told.
type failureKind struct {
	Err          error
	Kind, Notice string
}

var modelFailures = []failureKind{
	{aura.ErrConnect, "connect", "I could not reach the model server."},
	{aura.ErrFirstByteTimeout, "first_byte_timeout", "The model server did not start answering in time."},
	{aura.ErrIdleTimeout, "idle_timeout", "The model server stopped sending in the middle of the answer."},
	{aura.ErrBrokenStream, "broken_stream", "The model server broke off the answer."},
	{aura.ErrImagesUnsupported, "images_unsupported", "This model server takes text only: it cannot see images."},
	{aura.ErrBrowserCapture, "browser", "I could not open the model server's page in a browser to get its cookies."},
}

func modelFailure(err error) failureKind {
	for _, f := range modelFailures {
		if errors.Is(err, f.Err) {
			return f
		}
	}
	var se *aura.StatusError
	if errors.As(err, &se) {
		return failureKind{Kind: "status", Notice: "The model server failed."}
	}
	return failureKind{Kind: "other", Notice: "The answer failed."}
}

// failure is a request of a conversation that the server refused for what it held: its status,
// and the turns it carried.
type failure struct {
	status int
	turns  []int64 // ascending
}

// historyFault reports whether err is a refusal that may come from what the request held, and
// would come again with the same history: a 500 (chatbot-ui's answer to a text its token
// counter throws on), or a 4xx other than those that say something else (a key, a missing
// model, a rate limit, a timeout).
func historyFault(err error) (*aura.StatusError, bool) {
	var se *aura.StatusError
	if !errors.As(err, &se) {
		return nil, false
	}
	switch c := se.StatusCode; {
	case c == http.StatusInternalServerError:
		return se, true
	case c >= 400 && c < 500:
		return se, !slices.Contains([]int{
			http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden, http.StatusNotFound,
			http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests,
		}, c)
	}
	return se, false
}

// repeated reports whether err, the failure of a request of conversation k that carried the
// turns ids, is the one its last request met, with the same history: the same refusal, and
// every turn of that request carried again (a /retry, or a new message after it). Another
// /retry would only meet it again.
func (h *Handler) repeated(k history.Key, err error, ids []int64) bool {
	se, ok := historyFault(err)
	if !ok {
		return false
	}
	h.mu.Lock()
	last, had := h.failed[k]
	h.mu.Unlock()
	if !had || last.status != se.StatusCode {
		return false
	}
	for _, id := range last.turns {
		if _, found := slices.BinarySearch(ids, id); !found {
			return false
		}
	}
	return true
}

// noteOutcome remembers a refusal for repeated, and forgets it when the conversation's request
// ended any other way (err nil: /reset forgot the history).
func (h *Handler) noteOutcome(k history.Key, err error, ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if se, ok := historyFault(err); ok {
		h.failed[k] = failure{status: se.StatusCode, turns: ids}
		return
	}
	delete(h.failed, k)
}

// repeatedNotice: /retry cannot help, /reset does.
func repeatedNotice(err error) string {
	se, _ := historyFault(err)
	msg := "⚠️ The model server failed again with this conversation (" + strconv.Itoa(se.StatusCode)
	if reason := se.UserReason(); reason != "" {
		msg += " " + reason
	}
	return msg + "): something in its history is likely what it refuses, so /retry will not help. Send /reset to start afresh (the system prompt stays)."
}
