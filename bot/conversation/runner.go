package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history/inbox"
)

// The runner owns each update's lifecycle: handlers and jobs say what became of an update, and
// only the runner finishes its inbox entry, leaves it for the restart, or recovers a panic.

// result is what a job did with its update.
type result int

const (
	done       result = iota // handled: the runner finishes the entry
	unfinished               // handled, but the reply is not final yet: finishLater
	left                     // not handled, as the bot is shutting down: the entry stays in the inbox
	panicked                 // the runner tries again, up to maxAttempts in all
)

// maxAttempts bounds the starts of one update's handling: one that kills the bot must not loop.
const maxAttempts = 3

const skippedNotice = "⚠️ Something went wrong while I handled this message, several times, so I skipped it. Please send it again in other words, or tell the bot's owner."

// intake runs route, which reports whether it queued a job that owns entry seq; else the entry
// is finished here. A panic skips the update, with a notice where there is a chat to tell.
func (h *Handler) intake(ctx context.Context, seq int64, u *models.Update, route func() bool) {
	taken := false
	defer func() {
		if v := recover(); v != nil {
			h.deps.Log.Error("panic while taking an update; skipping it", "entry", seq, "update_id", u.ID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if m := u.Message; m != nil {
				if r := reqOf(seq, m); r.from != 0 && h.allowed(r.from, m.Chat.ID) {
					taken = h.tell(ctx, r, skippedNotice)
				}
			}
		}
		if !taken {
			h.finish(ctx, seq)
		}
	}()
	taken = route()
}

// run runs fn for r, counting the attempt first, and does what its result says.
func (h *Handler) run(ctx context.Context, r req, fn func(ctx context.Context, r req) result) {
	for !h.closing.Load() { // once closing, left in the inbox
		var res result
		if h.attempt(ctx, r) > maxAttempts {
			res = h.skip(ctx, r)
		} else {
			res = h.protect(ctx, r, fn)
		}
		switch res {
		case done:
			h.settleAlbum(ctx, r)
			h.finish(ctx, r.entry)
		case unfinished:
			h.settleAlbum(ctx, r)
			h.finishLater(ctx, r)
		case panicked:
			if r.entry == 0 {
				return
			}
			// Again, as after a restart: a reply the user may have seen is finished from its
			// journal, never asked of the model again.
			if rec, err := h.recordedOf(ctx, r); err == nil && rec.Seen() {
				fn = func(ctx context.Context, r req) result { return h.resume(ctx, r, rec) }
			}
			continue
		}
		return
	}
}

func (h *Handler) attempt(ctx context.Context, r req) int {
	if r.entry == 0 {
		return 0
	}
	n, err := h.deps.Journal.Attempt(ctx, r.entry)
	if err != nil {
		h.deps.Log.Warn("could not count an attempt at an update", "entry", r.entry, "err", err)
	}
	return n
}

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

// settleAlbum finishes the updates of r's album's later photos, stored with the first's.
func (h *Handler) settleAlbum(ctx context.Context, r req) {
	if r.album != nil {
		for _, entry := range r.album.settle(r.entry) {
			h.finish(ctx, entry)
		}
	}
}

// skip gives up on r's update: its reply (if any) shows what it had, with a notice saying so.
func (h *Handler) skip(ctx context.Context, r req) result {
	h.deps.Log.Error("skipping an update whose handling failed too often", "entry", r.entry, "chat_id", r.t.ChatID, "attempts", maxAttempts)
	rec, err := h.recordedOf(ctx, r)
	if err != nil {
		h.deps.Log.Warn("could not read a skipped update's journal", "entry", r.entry, "err", err)
	}
	if rec.Plain { // a notice was on its way: the skip's replaces it
		rec.Text, rec.Plain = "", false
	}
	rec.Final = false
	if _, _, _, err = h.deps.Streamer.Resume(ctx, r.t, h.journal(r), rec, skippedNotice); errors.Is(err, reply.ErrUnfinished) {
		return unfinished
	}
	return done
}

// maxFinishRefusals is how many refusals in a row (a 400) make the bot give up finishing a reply.
const maxFinishRefusals = 10

// finishLater finishes r's reply from its journal once Telegram answers again, then the entry.
func (h *Handler) finishLater(ctx context.Context, r req) {
	h.finishing.Go(func() {
		refusals := 0
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			rec, err := h.recordedOf(ctx, r)
			if err == nil {
				_, _, _, err = h.deps.Streamer.Resume(ctx, r.t, h.journal(r), rec, interrupted)
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
			h.finish(ctx, r.entry)
		}
	})
}

func (h *Handler) finish(ctx context.Context, entry int64) {
	if entry == 0 {
		return
	}
	if err := h.retryStore(ctx, req{}, func(ctx context.Context) error { return h.deps.Journal.Finish(ctx, entry) }); err != nil {
		h.deps.Log.Error("could not finish an update in the inbox", "entry", entry, "err", err)
	}
}

// notify sends a notice in reply to r's message, recorded in r's journal.
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

// Recover handles what the inbox holds from before a restart, in order: a reply that may have
// been seen is finished from its journal, never asking the model again; anything else is handled
// as new, but not bounded again (see recovered).
//
// It must run before any new update is handled, and nothing may be sent before: a reply whose
// send had no answer holds its chat's send gate (reply.Registry) until it is resumed.
func (h *Handler) Recover(ctx context.Context, pending []inbox.Update) {
	for _, p := range pending {
		var u models.Update
		if err := json.Unmarshal(p.Payload, &u); err != nil {
			h.deps.Log.Error("dropping an undecodable update from the inbox", "entry", p.Seq, "err", err)
			h.finish(ctx, p.Seq)
			continue
		}
		rec, m := recorded(p.Reply), u.Message
		switch {
		case !rec.Seen():
			h.Handle(recovered(ctx), p.Seq, &u)
		case m == nil:
			h.finish(ctx, p.Seq)
		default:
			if rec.Unsettled() {
				h.deps.Registry.Hold(m.Chat.ID, reply.Owner(p.Seq))
			}
			h.deps.Registry.Add(m.Chat.ID, m.ID)
			r := reqOf(p.Seq, m)
			h.queue.submit(ctx, r.k, h.job(r, false, func(ctx context.Context, r req) result { return h.resume(ctx, r, rec) }))
		}
	}
}

// resume finishes a reply cut by a crash, and stores the answer it shows.
func (h *Handler) resume(ctx context.Context, r req, rec reply.Recorded) result {
	text, first, complete, err := h.deps.Streamer.Resume(ctx, r.t, h.journal(r), rec, interrupted)
	if err != nil {
		h.deps.Log.Warn("could not finish a reply cut by a restart", "chat_id", r.t.ChatID, "err", err)
	}
	text = stripTranscript(text) // shown above the answer, but not part of it
	if !rec.Plain && text != "" {
		if h.storeAnswer(ctx, r, text, first, complete) != nil {
			return left // stored by the next start
		}
	}
	switch {
	case err == nil:
		return done
	case ctx.Err() != nil:
		return left // still in the journal: the next start tries again
	}
	return unfinished
}

func recorded(j inbox.Reply) reply.Recorded {
	rec := reply.Recorded{Shown: reply.Shown{Text: j.Text, Final: j.Final, Notice: j.Notice, Plain: j.Plain, Complete: j.Complete}}
	for _, p := range j.Parts {
		rec.Parts = append(rec.Parts, reply.RecordedPart{ID: int(p.ID), Floor: int(p.Floor), Wire: p.Sent, Tries: p.Tries})
	}
	return rec
}

// recordedOf reads the reply journal of r's entry, if any.
func (h *Handler) recordedOf(ctx context.Context, r req) (reply.Recorded, error) {
	if r.entry == 0 {
		return reply.Recorded{}, nil
	}
	u, err := h.deps.Journal.Get(ctx, r.entry)
	return recorded(u.Reply), err
}

// journal is the reply journal of r's inbox entry, if any.
func (h *Handler) journal(r req) reply.Journal {
	if r.entry == 0 {
		return nil
	}
	return entryJournal{j: h.deps.Journal, entry: r.entry, chat: r.t.ChatID}
}

// entryJournal records one inbox entry's reply.
type entryJournal struct {
	j           Journal
	entry, chat int64
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
