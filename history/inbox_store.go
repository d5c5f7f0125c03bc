package history

import "aurabot/history/inbox"

// Inbox returns the update inbox kept in the same database, sharing the store's connections
// (one writer: see Store). Its write errors wrap ErrStorageFull and
// ErrStorageFailing as the store's do.
func (s *Store) Inbox() *inbox.Inbox { return inbox.New(s.w, s.r, writeFailed) }
