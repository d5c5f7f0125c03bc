package reply

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"

	"aurabot/bot/telegramtest"
)

// stallingJournal records like the inbox, except that recording a text that is not final waits
// until its context ends (a slow disk), then fails with the context's error.
type stallingJournal struct {
	mu      sync.Mutex
	stalled chan struct{} // closed when a write stalls
	once    sync.Once
}

func (j *stallingJournal) Owner() Owner { return 1 }

func (j *stallingJournal) Show(ctx context.Context, s Shown) error {
	if s.Final {
		return nil
	}
	j.once.Do(func() { close(j.stalled) })
	<-ctx.Done()
	return ctx.Err()
}

func (j *stallingJournal) Sending(context.Context, int, Sending) error          { return nil }
func (j *stallingJournal) Sent(context.Context, int, int, *Lost) (int64, error) { return 0, nil }
func (j *stallingJournal) Removed(context.Context, int) error                   { return nil }

// /stop while the journal records a text is a stop, never "the storage is full or failing".
func TestStopDuringAJournalWriteIsNoStorageTrouble(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	deps := newDeps(t, srv)
	var troubles atomic.Int64
	deps.Trouble = func(context.Context, Target, error) { troubles.Add(1) }
	s := NewStreamer(deps, Config{})
	j := &stallingJournal{stalled: make(chan struct{})}
	var stop func()
	started := func(c Control) { stop = c.Stop }
	chunks := func(ctx context.Context) iter.Seq2[Chunk, error] {
		return func(yield func(Chunk, error) bool) {
			if !yield(Chunk{Text: "Some words of an answer"}, nil) {
				return
			}
			<-ctx.Done()
			yield(Chunk{}, ctx.Err()) // as the model client ends a cancelled stream
		}
	}
	go func() {
		<-j.stalled
		stop()
	}()
	out := s.StreamWith(context.Background(), Target{ChatID: 77, ReplyTo: 1}, j, "stop:1", started, chunks, Options{})
	if !errors.Is(out.Err, ErrStopped) {
		t.Errorf("outcome: got %v, want stopped", out.Err)
	}
	if n := troubles.Load(); n != 0 {
		t.Errorf("storage trouble reported %d times for a stop", n)
	}
}
