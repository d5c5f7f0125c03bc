package conversation

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
)

// Stopping a reply: /stop, the reply's Stop button and a draft's own Stop button all use stopAs.

const (
	callbackStop = "stop"
	replyStopped = "Stopped." // what stopAs tells its caller, besides a refusal
	replyEnded   = "That reply has already ended."
)

// stopData is the callback data of the Stop button of the reply to update, and no later one.
func stopData(update int64) string { return callbackStop + ":" + strconv.FormatInt(update, 10) }

// onCallback handles a button press; the answer to the press and any edit go out on their own.
func (h *Handler) onCallback(ctx context.Context, q *models.CallbackQuery) {
	msg := q.Message.Message
	if im := q.Message.InaccessibleMessage; msg == nil && im != nil { // an old message: its chat is enough
		msg = &models.Message{ID: im.MessageID, Chat: im.Chat}
	}
	name, arg, _ := strings.Cut(q.Data, ":")
	switch {
	case msg == nil:
		h.side.answerCallback(ctx, q.ID, "")
	case !h.allowed(q.From.ID, msg.Chat.ID):
		h.side.answerCallback(ctx, q.ID, "This bot is private. Your user id is "+strconv.FormatInt(q.From.ID, 10)+".")
	case name == callbackModel:
		h.onModelPress(ctx, q, msg, arg)
	case name != callbackStop:
		h.side.answerCallback(ctx, q.ID, "")
	default:
		update, _ := strconv.ParseInt(arg, 10, 64) // 0 for a button of an older version: any reply
		r := reqOf(0, msg)
		r.from = q.From.ID
		h.stopAs(ctx, r, update, func(ctx context.Context, text string) {
			if text == replyEnded { // the button should not be there any more
				h.side.removeButtons(ctx, msg.Chat.ID, msg.ID)
			}
			h.side.answerCallback(ctx, q.ID, text)
		})
	}
}

// onGenerationStopped handles Telegram's own Stop button of a draft (private chats only).
func (h *Handler) onGenerationStopped(ctx context.Context, s *models.MessageGenerationStopped) {
	if s.Chat.Type != models.ChatTypePrivate || !h.allowed(s.Chat.ID, s.Chat.ID) {
		return
	}
	k := history.Key{ChatID: s.Chat.ID, ThreadID: int64(s.MessageThreadID)}
	a := h.activeIn(k)
	if a == nil || a.draft == 0 || a.draft != int64(s.DraftID) {
		h.deps.Log.Debug("a stop of a draft no reply streams through now", "chat_id", s.Chat.ID, "draft_id", s.DraftID)
		return
	}
	r := req{k: k, t: reply.Target{ChatID: s.Chat.ID, ThreadID: s.MessageThreadID}, from: s.Chat.ID}
	h.stopAs(ctx, r, a.update, func(context.Context, string) {}) // the stopped reply says so itself
}

// stopAs stops, for r's sender, the reply streaming in r.k (update 0: any, else only the reply
// to update) if they asked it or steer; answer is told the outcome, maybe from a side call.
func (h *Handler) stopAs(ctx context.Context, r req, update int64, answer func(ctx context.Context, text string)) {
	a := h.activeIn(r.k)
	switch {
	case a == nil && update == 0:
		answer(ctx, "Nothing is streaming right now.")
		return
	case a == nil || update != 0 && a.update != update:
		answer(ctx, replyEnded)
		return
	}
	if h.steersWithoutAsking(r, a.asker) {
		a.stop()
		answer(ctx, replyStopped)
		return
	}
	h.side.run(ctx, func(cctx context.Context) {
		// The answer is queued with the handler's ctx, not cctx, which ends with this call.
		if h.steers(cctx, r, a.asker) {
			a.stop()
			answer(ctx, replyStopped)
			return
		}
		answer(ctx, "Only the person who asked, the bot's allowed users or this group's administrators can stop this reply.")
	})
}
