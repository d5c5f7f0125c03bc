package reply

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/tg"
)

// Lost is a send that may have posted messages nobody knows the ids of: Copies messages showing
// Wire may lie strictly between Floor and Ceiling in the chat.
//
// Why that range holds every copy and nothing else of the bot's it does not know: a send records
// Floor, the highest id known in the chat, holding the chat's send gate (Registry), so every
// earlier message of the bot's is at or below Floor, or known; what it posts gets a higher id.
// The gate stays held until a send of the same Wire has an answer, whose id is Ceiling: Telegram
// numbers a chat's messages in the order it posts them, and posts one bot's sends to one chat in
// the order they arrive, so a copy is lower, and no other send of the bot's can be in between.
// The range's other ids are the users' (an edit is refused: "message can't be edited"), deleted
// ("message to edit not found") or unused. An edit with exactly Wire changes nothing of a copy
// ("message is not modified"), and nothing else can be edited: a wrong guess changes nothing.
//
// Several lost sends of one reply (or lost records of them: a full disk) may have overlapping
// ranges, and an unknown message of the bot's there is a copy of another of them all the same.
// So the search looks at the whole range, whatever Copies says, and deletes every such message.
type Lost struct {
	ID             int64 // the journal's id of the search; 0 before it is recorded
	ChatID         int64
	Floor, Ceiling int
	Wire           []byte
	Copies         int
	Lo, Hi         int // the next ids to look at from each end: those below Lo and above Hi are done
}

// LostStore keeps the searches for lost messages, so that a restart goes on with them.
type LostStore interface {
	AddLost(ctx context.Context, l Lost) (int64, error)
	Searched(ctx context.Context, id int64, lo, hi, copies int) error
	SearchDone(ctx context.Context, id int64) error
}

// Searcher looks for the messages that lost sends may have posted, and deletes them (the reply
// has gone on in a message sent again): one chat's searches one after another, paced behind every
// other call (pace.WaitIdle), so that a search never delays a reply.
type Searcher struct {
	deps  Deps
	store LostStore

	mu      sync.Mutex
	ctx     context.Context // set by Start
	queues  map[int64][]Lost
	workers sync.WaitGroup
}

// NewSearcher returns a searcher that keeps its progress in store.
func NewSearcher(client *tg.Client, pacer *pace.Pacer, registry *Registry, store LostStore, log *slog.Logger) *Searcher {
	deps := Deps{TG: client, Pacer: pacer, Log: log, Registry: registry}
	return &Searcher{deps: deps, store: store, queues: map[int64][]Lost{}}
}

// Start runs pending (the searches a restart found in the journal) and later Adds until ctx ends.
func (s *Searcher) Start(ctx context.Context, pending []Lost) {
	s.mu.Lock()
	s.ctx = ctx
	queued := slices.Collect(maps.Keys(s.queues))
	s.mu.Unlock()
	for _, chat := range queued {
		s.startWorker(chat)
	}
	for _, l := range pending {
		s.Add(ctx, l)
	}
}

// Wait waits for the searches to stop (their context ended, or nothing is left).
func (s *Searcher) Wait() { s.workers.Wait() }

// Add queues a search, recorded first if it is not yet (ID 0). A nil Searcher looks for nothing.
func (s *Searcher) Add(ctx context.Context, l Lost) {
	if s == nil {
		return
	}
	if l.Copies <= 0 || l.Ceiling-l.Floor < 2 {
		s.done(ctx, l) // nothing to look at
		return
	}
	if l.Lo == 0 && l.Hi == 0 {
		l.Lo, l.Hi = l.Floor+1, l.Ceiling-1
	}
	if l.ID == 0 {
		id, err := s.store.AddLost(context.WithoutCancel(ctx), l)
		if err != nil {
			s.deps.Log.Warn("could not record a search for a lost message; looking for it all the same", "chat_id", l.ChatID, "err", err)
		}
		l.ID = id
	}
	s.mu.Lock()
	q, running := s.queues[l.ChatID]
	s.queues[l.ChatID] = append(q, l)
	started := s.ctx != nil
	s.mu.Unlock()
	if !running && started {
		s.startWorker(l.ChatID)
	}
}

func (s *Searcher) startWorker(chat int64) {
	s.workers.Go(func() {
		for {
			s.mu.Lock()
			ctx := s.ctx
			q := s.queues[chat]
			if len(q) == 0 || ctx.Err() != nil {
				delete(s.queues, chat)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			s.search(ctx, q[0])
			s.mu.Lock()
			s.queues[chat] = s.queues[chat][1:]
			s.mu.Unlock()
		}
	})
}

// search looks at every id of l's range the registry does not know, from both ends (where a copy
// most often is), and deletes every copy. It stops early only when ctx ends: the journal keeps
// the rest for the restart.
func (s *Searcher) search(ctx context.Context, l Lost) {
	w, ok := decodeWire(l.Wire)
	if !ok {
		s.done(ctx, l)
		return
	}
	s.deps.Log.Info("looking for a message whose send had no answer", "chat_id", l.ChatID, "from", l.Lo, "to", l.Hi, "copies", l.Copies)
	low := true
	wait := &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 30 * time.Second}
	for l.Lo <= l.Hi {
		id := l.Hi
		if low {
			id = l.Lo
		}
		if !s.deps.Registry.Known(l.ChatID, id) {
			found, err := s.probe(ctx, l.ChatID, id, w)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrBlocked):
				l.Lo, l.Hi = 1, 0 // nobody sees the chat any more
				continue
			case err != nil:
				d := wait.NextBackOff()
				s.deps.Log.Warn("could not look for a lost message; trying again", "chat_id", l.ChatID, "err", err, "retry_in", d)
				if pace.SleepUntil(ctx, time.Now().Add(d)) != nil {
					return
				}
				continue // the same id again
			case found:
				if err := s.remove(ctx, l.ChatID, id); err != nil {
					if ctx.Err() != nil {
						return
					}
					s.deps.Log.Warn("could not delete a message found twice; trying again", "chat_id", l.ChatID, "err", err)
					continue
				}
				s.deps.Log.Info("deleted the message a lost send had posted", "chat_id", l.ChatID, "message_id", id)
				l.Copies = max(l.Copies-1, 0)
			}
			wait.Reset()
		}
		if low {
			l.Lo++
		} else {
			l.Hi--
		}
		low = !low
		if l.ID != 0 {
			if err := s.store.Searched(ctx, l.ID, l.Lo, l.Hi, l.Copies); err != nil && ctx.Err() == nil {
				s.deps.Log.Debug("could not record how far a search has come", "chat_id", l.ChatID, "err", err)
			}
		}
	}
	s.done(ctx, l)
}

func (s *Searcher) done(ctx context.Context, l Lost) {
	if l.ID != 0 {
		if err := s.store.SearchDone(context.WithoutCancel(ctx), l.ID); err != nil {
			s.deps.Log.Warn("could not record the end of a search", "chat_id", l.ChatID, "err", err)
		}
	}
}

// probe edits message id to exactly w and reports whether it is a copy ("message is not
// modified"); nothing else can change (see Lost). An error is no answer, or ErrBlocked.
func (s *Searcher) probe(ctx context.Context, chat int64, id int, w wire) (bool, error) {
	for {
		if err := s.deps.Pacer.WaitIdle(ctx, chat); err != nil {
			return false, err
		}
		_, err := tg.Do(ctx, s.deps.Pacer, s.deps.Log, chat, func(ctx context.Context) (*models.Message, error) {
			return s.deps.TG.EditMessageText(ctx, w.edit(chat, id))
		})
		switch {
		case err == nil || tg.NotModified(err):
			return true, nil
		case tg.Blocked(err):
			return false, ErrBlocked
		case tg.Throttled(err):
			continue
		case tg.Refused(err):
			// Someone else's ("can't be edited"), deleted or unused ("not found"), any refusal: not ours.
			return false, nil
		}
		return false, err
	}
}

func (s *Searcher) remove(ctx context.Context, chat int64, id int) error {
	if err := s.deps.Pacer.WaitIdle(ctx, chat); err != nil {
		return err
	}
	return deleteOrBlank(ctx, s.deps, chat, id)
}
