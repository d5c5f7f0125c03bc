package conversation

import (
	"context"
	"encoding/json"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
	"aurabot/history/inbox"
)

// Recover handles what the inbox holds from before a crash or a stop, in order: a reply that may
// have been seen (a message was about to be sent) is finished from its journal, showing at least
// what the user saw and never asking the model again; anything else is handled as if it had just
// arrived (nothing of it was shown). An update whose handling has started maxAttempts times
// already is skipped with a notice (see run): it may be what killed the bot.
//
// It must run before any new update is handled, and before then no message may be sent:
// a reply whose send had no answer holds its chat's send gate (see reply.Registry) from here
// until it is resumed.
func (h *Handler) Recover(ctx context.Context, pending []inbox.Update) {
	for _, p := range pending {
		var u models.Update
		if err := json.Unmarshal(p.Payload, &u); err != nil {
			h.deps.Log.Error("dropping an undecodable update from the inbox", "entry", p.Seq, "err", err)
			h.finish(ctx, p.Seq)
			continue
		}
		rec := recorded(p.Reply)
		m := u.Message
		if m == nil && !rec.Seen() {
			h.Handle(recovered(ctx), p.Seq, &u) // accepted before the restart: not bounded again
			continue
		}
		if m == nil {
			h.finish(ctx, p.Seq)
			continue
		}
		r := reqOf(p.Seq, m)
		if rec.Unsettled() {
			h.deps.Registry.Hold(m.Chat.ID, reply.Owner(p.Seq))
		}
		if !rec.Seen() {
			h.Handle(recovered(ctx), p.Seq, &u)
			continue
		}
		// Its job counts the attempt (run), and skips it past maxAttempts.
		h.deps.Registry.Add(m.Chat.ID, m.ID)
		h.enqueue(ctx, r, false, func(ctx context.Context, r req) result { return h.resume(ctx, r, rec) })
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
		status := history.StatusCut
		if complete {
			status = history.StatusDone
		}
		answer := history.Turn{Role: history.RoleAssistant, Content: text, Status: status, MessageID: int64(first), Entry: r.entry}
		if err := h.retryStore(ctx, r, func(ctx context.Context) error {
			_, _, err := h.deps.Store.Append(ctx, r.k, answer)
			return err
		}); err != nil {
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
