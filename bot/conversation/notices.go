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

// The words under a reply that did not end well are decided here; bot/reply only shows them.

// notice is the line under a reply that ended with err, and whether the answer is whole to the
// user: it ended by itself, or at an output limit, which the notice explains.
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
		if se.StatusCode < 300 { // an error event inside a stream that had started fine
			msg = "⚠️ The model server reported an error mid-answer"
			if reason != "" {
				msg += ": " + reason
			}
		} else if reason != "" {
			msg = "⚠️ The model server failed: " + strconv.Itoa(se.StatusCode) + " " + reason
		}
		if se.StatusCode == http.StatusNotFound { // "model 'x' not found": asking again cannot help
			return sentence(msg) + " Choose another model with /model.", false
		}
		return sentence(msg) + " Send /retry to try again.", false
	}
	return "⚠️ " + modelFailure(err).Notice + " Send /retry to try again.", false
}

const interrupted = "⚠️ Interrupted: the bot restarted. Send /retry to get a full answer."

func sentence(s string) string {
	return strings.TrimRight(s, " .!?:;,") + "."
}

// failureKind is a model server failure: the error it matches, its metric label, its notice.
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

// failure is a request the server refused for what it held: its status, and its turns.
type failure struct {
	status int
	turns  []int64 // ascending
}

// historyFault reports whether err is a refusal that may come from the history, and would come
// again: a 500 (chatbot-ui's tokenizer throws), or a 4xx that says nothing else.
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

// repeated reports whether err, the failure of k's request with turns ids, is the refusal its
// last request met, with every turn of that one carried again: /retry cannot help.
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

// noteOutcome remembers a refusal for repeated, and forgets it on any other outcome.
func (h *Handler) noteOutcome(k history.Key, err error, ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if se, ok := historyFault(err); ok {
		h.failed[k] = failure{status: se.StatusCode, turns: ids}
		return
	}
	delete(h.failed, k)
}

func repeatedNotice(err error) string {
	se, _ := historyFault(err)
	msg := "⚠️ The model server failed again with this conversation (" + strconv.Itoa(se.StatusCode)
	if reason := se.UserReason(); reason != "" {
		msg += " " + reason
	}
	return msg + "): something in its history is likely what it refuses, so /retry will not help. Send /reset to start afresh (the system prompt stays)."
}
