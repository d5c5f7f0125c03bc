package conversation

import "context"

// mayConfigure reports whether r's sender may change the conversation's settings (its model).
// A stub until access.go lands with the group rules; deleted at merge.
func (h *Handler) mayConfigure(_ context.Context, r req) bool {
	return h.allowed(r.from, r.t.ChatID)
}
