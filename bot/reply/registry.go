package reply

import (
	"slices"
	"sync"
)

// registryKeep is how many of the newest message ids the registry keeps per chat. A reply looks
// for a lost message only above the ids it knows, so older ones are never needed.
const registryKeep = 256

// Registry knows the newest message ids of each chat: the bot's own and the users' it has seen.
// A reply that lost Telegram's answer to a send looks for its message above the ids it knows,
// and never touches a message the registry holds: that one belongs to another reply.
type Registry struct {
	mu    sync.Mutex
	chats map[int64][]int // sorted
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{chats: map[int64][]int{}} }

// Add notes message id in chat.
func (r *Registry) Add(chat int64, id int) {
	if r == nil || id == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.chats[chat]
	i, found := slices.BinarySearch(ids, id)
	if found {
		return
	}
	ids = slices.Insert(ids, i, id)
	if len(ids) > registryKeep {
		ids = slices.Delete(ids, 0, len(ids)-registryKeep)
	}
	r.chats[chat] = ids
}

// Known reports whether message id of chat is in the registry.
func (r *Registry) Known(chat int64, id int) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, found := slices.BinarySearch(r.chats[chat], id)
	return found
}

// Max is the highest message id known in chat, 0 if none.
func (r *Registry) Max(chat int64) int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.chats[chat]
	if len(ids) == 0 {
		return 0
	}
	return ids[len(ids)-1]
}
