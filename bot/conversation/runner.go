package conversation

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history/inbox"

	"github.com/cenkalti/backoff/v5"
)

// result is what a job did with its update; the runner acts on it. Jobs never finish their
// inbox entry themselves.
type result int

const (
	// done: the update is handled. The runner finishes its inbox entry.
	done result = iota
	// unfinished: handled, its answer stored, but its reply's messages could not be brought to
	// their final text (Telegram stopped answering, or refused). The runner finishes them from
	// the journal as soon as Telegram answers again, then the entry.
	unfinished
	// left: not handled, as the bot is shutting down: the entry stays in the inbox and is
	// handled after the restart.
	left
	// panicked: the job panicked. The runner tries again, up to maxAttempts in all.
	panicked
)

// maxAttempts is how many times the handling of one update may start (after crashes, or after
// panics) before it is skipped with a notice: an update that kills the bot every time must not
// keep it in a crash loop.
const maxAttempts = 3

// skippedNotice is what the user sees under an update the bot gave up on.
const skippedNotice = "⚠️ Something went wrong while I handled this message, several times, so I skipped it. Please send it again in other words, or tell the bot's owner."

// run runs fn for r (an inbox entry, or none) and does what its result says: it counts the
// attempt first, recovers a panic (logged with the entry), tries again after one, and finishes
// the entry, leaves it, or hands it to the finisher.
func (h *Handler) run(ctx context.Context, r req, fn func(ctx context.Context, r req) result) {
	for {
		if h.closing.Load() {
			return // left in the inbox, for the restart
		}
		if r.entry != 0 {
			n, err := h.deps.Journal.Attempt(ctx, r.entry)
			if err != nil {
				h.deps.Log.Warn("could not count an attempt at an update", "entry", r.entry, "err", err)
			}
			if n > maxAttempts {
				h.skip(ctx, r)
				return
			}
		}
		res := h.protect(ctx, r, fn)
		switch res {
		case done:
			h.finish(ctx, r.entry)
		case unfinished:
			h.finishLater(ctx, r)
		case panicked:
			if r.entry == 0 {
				return
			}
			// Again, as after a restart: a reply the user may have seen is finished from its
			// journal, never asked of the model again.
			if u, err := h.deps.Journal.Get(ctx, r.entry); err == nil {
				if rec := recorded(u.Reply); rec.Seen() {
					fn = func(ctx context.Context, r req) result { return h.resume(ctx, r, rec) }
				}
			}
			continue
		}
		return
	}
}

// protect runs fn, turning a panic into the result panicked.
func (h *Handler) protect(ctx context.Context, r req, fn func(ctx context.Context, r req) result) (res result) {
	defer func() {
		if v := recover(); v != nil {
			h.deps.Log.Error("panic while handling an update", "entry", r.entry, "chat_id", r.t.ChatID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res = panicked
		}
	}()
	return fn(ctx, r)
}

// skip gives up on r's update: its reply (if any) shows what it had, with a notice saying so,
// and the entry is finished.
func (h *Handler) skip(ctx context.Context, r req) {
	h.deps.Log.Error("skipping an update whose handling failed too often", "entry", r.entry, "chat_id", r.t.ChatID, "attempts", maxAttempts)
	u, err := h.deps.Journal.Get(ctx, r.entry)
	if err != nil {
		h.deps.Log.Warn("could not read a skipped update's journal", "entry", r.entry, "err", err)
	}
	rec := recorded(u.Reply)
	if rec.Plain { // a notice was on its way: the skip's replaces it
		rec.Text, rec.Plain = "", false
	}
	rec.Final = false
	_, _, _, err = h.deps.Streamer.Resume(ctx, r.t, h.journal(r), rec, skippedNotice)
	if errors.Is(err, reply.ErrUnfinished) {
		h.finishLater(ctx, r)
		return
	}
	h.finish(ctx, r.entry)
}

// maxFinishRefusals is how many times in a row Telegram may refuse to finish a reply (a 400 that
// waiting does not cure) before the bot gives up on it: its answer is stored, only its messages
// keep what they showed.
const maxFinishRefusals = 10

// finishLater finishes the reply of r from its journal, in the background, as soon as Telegram
// answers again, and then the entry. A shutdown leaves it to the restart.
func (h *Handler) finishLater(ctx context.Context, r req) {
	h.finishing.Go(func() {
		refusals := 0
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			u, err := h.deps.Journal.Get(ctx, r.entry)
			if err == nil {
				_, _, _, err = h.deps.Streamer.Resume(ctx, r.t, h.journal(r), recorded(u.Reply), interrupted)
			}
			if refusals++; !tg.Refused(err) {
				refusals = 0
			}
			if refusals >= maxFinishRefusals {
				h.deps.Log.Error("Telegram keeps refusing to finish a reply; giving up on it", "chat_id", r.t.ChatID, "err", err)
				return struct{}{}, nil
			}
			if errors.Is(err, reply.ErrBlocked) {
				return struct{}{}, nil
			}
			return struct{}{}, err
		}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: time.Minute}),
			backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
				h.deps.Log.Warn("could not finish a reply yet; trying again", "chat_id", r.t.ChatID, "err", err, "retry_in", wait)
			}))
		if err == nil {
			h.finish(ctx, r.entry) // a shutdown leaves it to the restart
		}
	})
}

// recorded is the reply journal of an inbox entry, as the reply package reads it.
func recorded(j inbox.Reply) reply.Recorded {
	rec := reply.Recorded{Shown: reply.Shown{Text: j.Text, Final: j.Final, Notice: j.Notice, Plain: j.Plain, Complete: j.Complete}}
	for _, p := range j.Parts {
		rec.Parts = append(rec.Parts, reply.RecordedPart{ID: int(p.ID), Floor: int(p.Floor), Wire: p.Sent, Tries: p.Tries})
	}
	return rec
}

// notify sends a notice in reply to r's message, recorded in r's journal, and says what became
// of r's update.
func (h *Handler) notify(ctx context.Context, r req, text string) result {
	err := h.deps.Streamer.Notify(ctx, r.t, h.journal(r), text)
	switch {
	case err == nil:
		return done
	case errors.Is(err, reply.ErrUnfinished):
		return unfinished
	case ctx.Err() != nil && !errors.Is(err, reply.ErrBlocked):
		return left
	}
	h.deps.Log.Warn("could not send a notice", "chat_id", r.t.ChatID, "err", err)
	return done
}

// journal is the reply journal of r's inbox entry; nil for none.
func (h *Handler) journal(r req) reply.Journal {
	if r.entry == 0 {
		return nil
	}
	return entryJournal{j: h.deps.Journal, entry: r.entry, chat: r.t.ChatID}
}

// entryJournal records one inbox entry's reply.
type entryJournal struct {
	j     Journal
	entry int64
	chat  int64
}

func (e entryJournal) Owner() reply.Owner { return reply.Owner(e.entry) }

func (e entryJournal) Show(ctx context.Context, s reply.Shown) error {
	return e.j.RecordText(ctx, e.entry, inbox.Reply{Text: s.Text, Final: s.Final, Notice: s.Notice, Plain: s.Plain, Complete: s.Complete})
}

func (e entryJournal) Sending(ctx context.Context, idx int, s reply.Sending) error {
	return e.j.RecordSending(ctx, e.entry, idx, inbox.Part{ChatID: e.chat, Floor: int64(s.Floor), Sent: s.Wire, Tries: s.Tries})
}

func (e entryJournal) Sent(ctx context.Context, idx, id int, lost *reply.Lost) (int64, error) {
	var l *inbox.Lost
	if lost != nil {
		l = &inbox.Lost{ChatID: lost.ChatID, Floor: int64(lost.Floor), Ceiling: int64(lost.Ceiling), Sent: lost.Wire, Copies: lost.Copies}
	}
	return e.j.RecordSent(ctx, e.entry, idx, int64(id), l)
}

func (e entryJournal) Removed(ctx context.Context, idx int) error {
	return e.j.RecordRemoved(ctx, e.entry, idx)
}
