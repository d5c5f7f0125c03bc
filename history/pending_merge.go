package history

import "context"

// CheckWrite is a placeholder until the history branch lands; deleted at merge.
func (s *Store) CheckWrite(ctx context.Context) error { return s.Ping(ctx) }
