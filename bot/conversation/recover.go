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
// arrived (nothing of it was shown).
func (h *Handler) Recover(ctx context.Context, pending []inbox.Update) {
	for _, p := range pending {
		var u models.Update
		if err := json.Unmarshal(p.Payload, &u); err != nil {
			h.deps.Log.Error("dropping an undecodable update from the inbox", "update_id", p.ID, "err", err)
			h.finish(ctx, p.ID)
			continue
		}
		u.ID = p.ID
		rec := recorded(p.Reply)
		if !rec.Seen() {
			h.Handle(recovered(ctx), &u) // accepted before the restart: not bounded again
			continue
		}
		m := u.Message
		if m == nil {
			h.finish(ctx, p.ID)
			continue
		}
		h.deps.Registry.Add(m.Chat.ID, m.ID)
		r := reqOf(p.ID, m)
		h.enqueue(ctx, r, false, func(ctx context.Context, r req) { h.resume(ctx, r, rec) })
	}
}

// recorded is the reply journal of an inbox entry, as the reply package reads it.
func recorded(j inbox.Reply) reply.Recorded {
	rec := reply.Recorded{Floor: int(j.Floor), Shown: reply.Shown{Text: j.Text, Final: j.Final, Notice: j.Notice, Plain: j.Plain}}
	for _, id := range j.MessageIDs {
		rec.IDs = append(rec.IDs, int(id))
	}
	return rec
}

// resume finishes a reply cut by a crash, and stores the answer it shows.
func (h *Handler) resume(ctx context.Context, r req, rec reply.Recorded) {
	text, first, complete, err := h.deps.Streamer.Resume(ctx, r.t, h.journal(r), rec)
	if err != nil {
		h.deps.Log.Warn("could not finish a reply cut by a restart", "chat_id", r.t.ChatID, "err", err)
		if ctx.Err() != nil {
			return // still in the journal: the next start tries again
		}
	}
	text = stripTranscript(text) // shown above the answer, but not part of it
	if !rec.Plain && text != "" {
		status := history.StatusCut
		if complete && reply.CompleteNotice(rec.Notice) {
			status = history.StatusDone
		}
		answer := history.Turn{Role: history.RoleAssistant, Content: text, Status: status, MessageID: int64(first)}
		if err := h.retryStore(ctx, r, func(ctx context.Context) error {
			_, _, err := h.deps.Store.Append(ctx, r.k, answer)
			return err
		}); err != nil {
			return
		}
	}
	h.finish(ctx, r.update)
}
