package reply

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

const (
	// registryKeep: the newest message ids kept per chat; a lost message lies above the ids a send knew.
	registryKeep = 256
	// registryChats bounds the chats remembered; past it those used least recently (their gates
	// free) are forgotten: no search needs their messages, older than any the chat gets later.
	registryChats = 10000
)

// Owner names who holds a chat's send gate: an inbox entry (its seq), or, for a reply with no
// entry (a notice that cannot be recorded), a negative number unique in the process.
type Owner int64

// Registry knows, per chat, the newest message ids (the bot's and the users' it has seen) and
// who holds the send gate: sends in a chat go one at a time, and a send whose answer never came
// keeps the gate until a send of the same text has an answer (see Lost for why).
type Registry struct {
	mu    sync.Mutex
	chats map[int64]*chatState
	tick  uint64 // use counter, for forgetting the least recently used chats
}

type chatState struct {
	ids     []int // sorted
	owner   Owner // holds the send gate; 0: free
	free    chan struct{}
	lastUse uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{chats: map[int64]*chatState{}} }

// chat returns chat's state, creating it. r.mu must be held.
func (r *Registry) chat(id int64) *chatState {
	r.tick++
	c := r.chats[id]
	if c == nil {
		if len(r.chats) >= registryChats {
			r.forget()
		}
		c = &chatState{free: make(chan struct{})}
		r.chats[id] = c
	}
	c.lastUse = r.tick
	return c
}

// forget drops the tenth of the chats used least recently whose gates are free, so that its
// cost is spread over the chats that come after. r.mu must be held.
func (r *Registry) forget() {
	free := make([]int64, 0, len(r.chats))
	for id, c := range r.chats {
		if c.owner == 0 {
			free = append(free, id)
		}
	}
	slices.SortFunc(free, func(a, b int64) int { return cmp.Compare(r.chats[a].lastUse, r.chats[b].lastUse) })
	for _, id := range free[:min(len(free), max(registryChats/10, 1))] {
		delete(r.chats, id)
	}
}

// Add notes message id in chat.
func (r *Registry) Add(chat int64, id int) {
	if id == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.chat(chat)
	if i, found := slices.BinarySearch(c.ids, id); !found {
		c.ids = slices.Insert(c.ids, i, id)
		c.ids = slices.Delete(c.ids, 0, max(0, len(c.ids)-registryKeep))
	}
}

// Known reports whether message id of chat is in the registry.
func (r *Registry) Known(chat int64, id int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.chats[chat]; c != nil {
		_, found := slices.BinarySearch(c.ids, id)
		return found
	}
	return false
}

// Max is the highest message id known in chat, 0 if none.
func (r *Registry) Max(chat int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.chats[chat]; c != nil && len(c.ids) > 0 {
		return c.ids[len(c.ids)-1]
	}
	return 0
}

// Acquire waits until chat's gate is free (or owner's) and takes it, or returns ctx's error.
func (r *Registry) Acquire(ctx context.Context, chat int64, owner Owner) error {
	for {
		r.mu.Lock()
		c := r.chat(chat)
		if c.owner == 0 || c.owner == owner {
			c.owner = owner
			r.mu.Unlock()
			return nil
		}
		free := c.free
		r.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Hold gives chat's gate to owner at once (at a restart, to the reply whose send had no answer).
func (r *Registry) Hold(chat int64, owner Owner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chat(chat).owner = owner
}

// Release frees chat's gate if owner holds it.
func (r *Registry) Release(chat int64, owner Owner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.chats[chat]; c != nil && c.owner == owner {
		c.owner = 0
		close(c.free)
		c.free = make(chan struct{})
	}
}

// Holder is who holds chat's gate, 0 for nobody.
func (r *Registry) Holder(chat int64) Owner {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.chats[chat]; c != nil {
		return c.owner
	}
	return 0
}
