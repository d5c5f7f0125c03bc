package history

import "aurabot/history/inbox"

// Inbox returns the update inbox kept in the same database, sharing the store's connections
// (one writer: see Store).
func (s *Store) Inbox() *inbox.Inbox { return inbox.New(s.w, s.r) }
