package history

import (
	"context"
	"fmt"
)

// Helpers of the package's tests, kept out of the production API.

// Window returns the turns of the request that answers the conversation's newest user turn:
// Request's Turns.
func (s *Store) Window(ctx context.Context, k Key, b Budget, systemPrompt string) ([]Turn, error) {
	r, err := s.Request(ctx, k, b, systemPrompt)
	if err != nil {
		return nil, err
	}
	return r.Turns, nil
}

// Coverage is Report's InWindow and Total.
func (s *Store) Coverage(ctx context.Context, k Key, b Budget, systemPrompt string) (inWindow, total int, err error) {
	r, err := s.Report(ctx, k, b, systemPrompt)
	return r.InWindow, r.Total, err
}

// Images returns the images stored with the turn that has the given id; none if it has none.
func (s *Store) Images(ctx context.Context, turnID int64) ([]Image, error) {
	byTurn, err := imagesBetween(ctx, s.r, turnID, turnID)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return byTurn[turnID], nil
}

// maxPageCount caps the pages the database file may grow to (n at most the pages in use: full
// now), as a full disk would, and returns the cap SQLite set. The setting is per connection:
// it is made on the writer's.
func (s *Store) maxPageCount(ctx context.Context, n int64) (int64, error) {
	var got int64
	err := s.w.GetContext(ctx, &got, fmt.Sprintf("PRAGMA max_page_count = %d", n))
	return got, err
}

// Backup copies the store's database to path with BackupFile.
func (s *Store) Backup(ctx context.Context, path string) error {
	var seq int
	var name, file string
	if err := s.r.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		return err
	}
	return BackupFile(ctx, file, path)
}
