package history

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// 50 goroutines append to 50 conversations of their own and all of them to a
// shared one, while readers load windows and a redelivered message arrives
// from every goroutine at once. No write may fail (no SQLITE_BUSY), every
// turn must be there once, and each goroutine's turns in the order it wrote
// them.
func TestConcurrentAppends(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	const (
		writers = 50
		perG    = 10
	)
	shared := Key{ChatID: -100, ThreadID: 1}
	own := func(g int) Key { return Key{ChatID: int64(g + 1)} }

	var (
		wg        sync.WaitGroup
		errs      = make(chan error, writers*(2*perG+1)+16)
		redeliver atomic.Int32
	)
	for g := range writers {
		wg.Go(func() {
			for i := range perG {
				msg := int64(i + 1)
				if _, _, err := s.Append(ctx, own(g), Turn{Role: RoleUser, Content: fmt.Sprintf("g%d u%d", g, i), MessageID: msg}); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.Append(ctx, own(g), Turn{Role: RoleAssistant, Content: fmt.Sprintf("g%d a%d", g, i)}); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.Append(ctx, shared, Turn{Role: RoleUser, Content: fmt.Sprintf("g%d s%d", g, i), MessageID: int64(g*1000 + i + 1)}); err != nil {
					errs <- err
					return
				}
				if i == perG/2 {
					// The same update, delivered to every goroutine.
					_, inserted, err := s.Append(ctx, shared, Turn{Role: RoleUser, Content: "redelivered", MessageID: 999_999})
					if err != nil {
						errs <- err
						return
					}
					if inserted {
						redeliver.Add(1)
					}
				}
			}
		})
	}
	// Readers load windows while the writers run (a fixed number each:
	// readers that never pause would only measure the two CPU cores).
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Go(func() {
			for n := range 100 {
				for _, k := range []Key{own((r*13 + n) % writers), shared} {
					if _, err := s.Window(ctx, k, Budget{Chars: 200, Tokens: 200, ReserveTokens: 10}, "prompt"); err != nil {
						var tl *TooLongError
						if !errors.As(err, &tl) {
							errs <- fmt.Errorf("Window: %w", err)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}

	for g := range writers {
		got := contents(mustTurns(t, s, own(g)))
		var want []string
		for i := range perG {
			want = append(want, fmt.Sprintf("g%d u%d", g, i), fmt.Sprintf("g%d a%d", g, i))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("conversation %d: got %q, want %q", g, got, want)
		}
	}

	if n := redeliver.Load(); n != 1 {
		t.Errorf("redelivered message: got %d inserts, want 1", n)
	}
	sharedTurns := mustTurns(t, s, shared)
	if got, want := len(sharedTurns), writers*perG+1; got != want {
		t.Errorf("shared conversation: got %d turns, want %d", got, want)
	}
	next := make([]int, writers) // next i expected from each goroutine
	seen := map[string]bool{}
	for j, turn := range sharedTurns {
		if j > 0 && turn.ID <= sharedTurns[j-1].ID {
			t.Errorf("shared conversation: id %d after %d, want increasing", turn.ID, sharedTurns[j-1].ID)
		}
		if seen[turn.Content] {
			t.Errorf("shared conversation: %q stored twice", turn.Content)
		}
		seen[turn.Content] = true
		var g, i int
		if _, err := fmt.Sscanf(turn.Content, "g%d s%d", &g, &i); err != nil {
			continue // the redelivered message
		}
		if i != next[g] {
			t.Errorf("shared conversation: got g%d s%d, want s%d next from that goroutine", g, i, next[g])
		}
		next[g] = i + 1
	}
}

// Two stores on one file stand for two processes (say, a restarted bot whose
// old instance is still draining). Their writers compete for SQLite's lock;
// BEGIN IMMEDIATE plus busy_timeout must make them wait, not fail.
func TestConcurrentStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const perG = 20
	k := Key{ChatID: 1}
	errs := make(chan error, 2*4*perG)
	var wg sync.WaitGroup
	for g := range 8 {
		s := stores[g%2]
		wg.Go(func() {
			for i := range perG {
				// Append reads (the conversation, the duplicate) before it
				// writes: with deferred transactions this is where
				// SQLITE_BUSY would come from.
				if _, _, err := s.Append(t.Context(), k, Turn{Role: RoleUser, Content: fmt.Sprintf("g%d %d", g, i), MessageID: int64(g*1000 + i + 1)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Append: %v", err)
	}
	if got, want := len(mustTurns(t, stores[0], k)), 8*perG; got != want {
		t.Errorf("got %d turns, want %d", got, want)
	}
}
