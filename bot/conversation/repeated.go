package conversation

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"aurabot/aura"
	"aurabot/history"
)

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

// turnIDs lists the ids of the turns of a window.
func turnIDs(window []history.Turn) []int64 {
	ids := make([]int64, len(window))
	for i, t := range window {
		ids[i] = t.ID
	}
	return ids
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
// ended any other way.
func (h *Handler) noteOutcome(k history.Key, err error, ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if se, ok := historyFault(err); ok {
		h.failed[k] = failure{status: se.StatusCode, turns: ids}
		return
	}
	delete(h.failed, k)
}

// forget drops what repeated knows of conversation k: its history is gone (/reset).
func (h *Handler) forget(k history.Key) {
	h.mu.Lock()
	delete(h.failed, k)
	h.mu.Unlock()
}

// repeatedNotice is the line under a reply that failed again the same way with the same
// history: /retry cannot help, /reset does.
func repeatedNotice(err error) string {
	se, _ := historyFault(err)
	msg := "⚠️ The model server failed again with this conversation (" + strconv.Itoa(se.StatusCode)
	if reason := se.UserReason(); reason != "" {
		msg += " " + reason
	}
	return msg + "): something in its history is likely what it refuses, so /retry will not help. Send /reset to start afresh (the system prompt stays)."
}
