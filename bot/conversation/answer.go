package conversation

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"
	"unicode/utf8"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/history"
)

// answer stores a user's message and answers it. A message stored before a crash is not stored
// again: Append ignores a Telegram message it already has.
func (h *Handler) answer(ctx context.Context, r req, turn history.Turn) {
	// The prompt is read here, in turn, so that a /system queued before this message applies.
	prompt := h.prompt(ctx, r.k)
	if n := utf8.RuneCountInString(prompt) + utf8.RuneCountInString(turn.Content); n > h.cfg.ContextBudget {
		h.notify(ctx, r, fmt.Sprintf("That message is too long for the model: with the system prompt it is %d characters, and the limit is %d. Please send a shorter one.", n, h.cfg.ContextBudget))
		h.finish(ctx, r.update)
		return
	}
	if err := retryStore(ctx, h.deps.Log, func(ctx context.Context) error {
		_, _, err := h.deps.Store.Append(ctx, r.k, turn)
		return err
	}); err != nil {
		return // shutting down: the update stays in the inbox, and is answered after the restart
	}
	h.respond(ctx, r, prompt)
}

// respond asks the model about the conversation as stored, shows the answer live, and stores it
// before finishing the update.
func (h *Handler) respond(ctx context.Context, r req, prompt string) {
	window, err := h.deps.Store.Window(ctx, r.k, h.cfg.ContextBudget, prompt)
	var tooLong *history.TooLongError
	if errors.As(err, &tooLong) {
		h.notify(ctx, r, fmt.Sprintf("That message is too long for the model: %d characters with the system prompt, and the limit is %d.", tooLong.Length, tooLong.Budget))
		h.finish(ctx, r.update)
		return
	}
	if err != nil {
		h.storeFailed(ctx, r, "load the conversation", err)
		h.finish(ctx, r.update)
		return
	}
	if len(window) == 0 {
		h.notify(ctx, r, "There is nothing to answer.")
		h.finish(ctx, r.update)
		return
	}
	msgs := make([]aura.Message, 0, len(window)+1)
	msgs = append(msgs, aura.Message{Role: aura.RoleSystem, Content: prompt})
	for _, turn := range window {
		content := turn.Content
		switch {
		case turn.Role == history.RoleUser && turn.Author != "":
			content = turn.Author + ": " + content
		case turn.Status == history.StatusCut:
			content += "\n\n[this answer was cut off]"
		}
		msgs = append(msgs, aura.Message{Role: string(turn.Role), Content: content})
	}

	start := time.Now()
	h.deps.Metrics.ReplyStarted()
	started := func(stop func()) {
		h.mu.Lock()
		h.active[r.k] = &activeReply{update: r.update, stop: stop}
		h.mu.Unlock()
	}
	out := h.deps.Streamer.Stream(ctx, r.t, h.journal(r), stopData(r.update), started,
		func(ctx context.Context) iter.Seq2[string, error] { return h.deps.Model.Stream(ctx, msgs) })
	h.mu.Lock()
	if a := h.active[r.k]; a != nil && a.update == r.update {
		delete(h.active, r.k)
	}
	h.mu.Unlock()
	h.ended(r, out, time.Since(start))

	if out.Unfinished {
		return // the journal holds the text: the restart shows it, and stores it
	}
	if out.Text != "" {
		status := history.StatusCut
		if reply.Complete(out.Err) {
			status = history.StatusDone
		}
		answer := history.Turn{Role: history.RoleAssistant, Content: out.Text, MessageID: int64(out.FirstID), Status: status}
		if err := retryStore(ctx, h.deps.Log, func(ctx context.Context) error {
			_, _, err := h.deps.Store.Append(ctx, r.k, answer)
			return err
		}); err != nil {
			return // the restart stores it, from the journal
		}
	}
	h.finish(ctx, r.update)
}

// ended records how a reply ended, in the metrics and in one log line. It never logs the text.
func (h *Handler) ended(r req, out reply.Outcome, took time.Duration) {
	result, failed := replyResult(out)
	kind := ""
	if result == "model" {
		kind = reply.ModelFailure(out.Err).Kind
	}
	first := out.FirstText
	if first == 0 && out.Text != "" {
		first = took // nothing was shown while streaming: the final message is the first text
	}
	h.deps.Metrics.ReplyEnded(result, failed, kind, took, first)
	attrs := []any{
		"chat_id", r.k.ChatID, "thread_id", r.k.ThreadID,
		"duration", took.Round(time.Millisecond), "chars", utf8.RuneCountInString(out.Text), "edits", out.Edits,
		"outcome", result,
	}
	if out.Err != nil {
		attrs = append(attrs, "err", h.deps.TG.Scrub(out.Err))
	}
	h.deps.Log.Info("reply", attrs...)
}

// replyResult names how a reply ended, and whether that is a failure.
func replyResult(out reply.Outcome) (string, bool) {
	switch {
	case errors.Is(out.Err, reply.ErrBlocked):
		return "blocked", true
	case errors.Is(out.Err, reply.ErrStopped):
		return "stopped", false
	case errors.Is(out.Err, reply.ErrShutdown):
		return "interrupted", false
	case errors.Is(out.Err, reply.ErrTooLong), errors.Is(out.Err, aura.ErrOutputLimit):
		return "done", false
	case out.Err != nil:
		return "model", true
	case out.Text == "":
		return "empty", true
	}
	return "done", false
}

// journal is the reply journal of r's update.
func (h *Handler) journal(r req) reply.Journal {
	if r.update == 0 {
		return nil
	}
	return updateJournal{j: h.deps.Journal, update: r.update, chat: r.t.ChatID}
}

// updateJournal records one update's reply in the inbox.
type updateJournal struct {
	j      Journal
	update int64
	chat   int64
}

func (u updateJournal) Show(ctx context.Context, s reply.Shown) error {
	return u.j.RecordText(ctx, u.update, s.Text, s.Final, s.Notice, s.Plain)
}

func (u updateJournal) Sending(ctx context.Context, idx, floor int) error {
	return u.j.RecordSending(ctx, u.update, u.chat, idx, int64(floor))
}

func (u updateJournal) Sent(ctx context.Context, idx, id int) error {
	return u.j.RecordSent(ctx, u.update, idx, int64(id))
}

func (u updateJournal) Removed(ctx context.Context, idx int) error {
	return u.j.RecordRemoved(ctx, u.update, idx)
}

// stopData is the callback data of the Stop button of the reply to update: the button stops
// that reply only, never a later one in the same conversation.
func stopData(update int64) string { return callbackStop + ":" + strconv.FormatInt(update, 10) }

const callbackStop = "stop"

// stop stops the reply streaming in conversation k: any reply when update is 0 (/stop), else
// only the reply to update. It reports whether it stopped one.
func (h *Handler) stop(k history.Key, update int64) bool {
	h.mu.Lock()
	a := h.active[k]
	h.mu.Unlock()
	if a == nil || update != 0 && a.update != update {
		return false
	}
	a.stop()
	return true
}
