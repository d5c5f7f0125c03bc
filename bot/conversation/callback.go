package conversation

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
)

// Stopping a reply: /stop, the Stop button under a reply, and Telegram's own Stop button of a
// draft all stop it the same way (stopAs).

const (
	callbackStop = "stop"
	// What stopAs tells its caller, besides a refusal.
	replyStopped = "Stopped."
	replyEnded   = "That reply has already ended."
)

// stopData is the callback data of the Stop button of the reply to update: the button stops
// that reply only, never a later one in the same conversation.
func stopData(update int64) string { return callbackStop + ":" + strconv.FormatInt(update, 10) }

// onCallback handles a button press. The answer to the press and any edit go out on their own.
func (h *Handler) onCallback(ctx context.Context, q *models.CallbackQuery) {
	msg := q.Message.Message
	if im := q.Message.InaccessibleMessage; msg == nil && im != nil {
		// An old message (Telegram no longer sends its content): its chat is enough.
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

// onGenerationStopped handles a press on Telegram's own Stop button of a draft. It names the
// chat, the topic and the draft, not who pressed: drafts are shown in private chats only.
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
	// Nothing to answer: the stopped reply says so itself, and a press has no message.
	h.stopAs(ctx, r, a.update, func(context.Context, string) {})
}

// stopAs stops, on behalf of r's sender, the reply streaming in conversation r.k: any reply
// when update is 0 (/stop), else only the reply to update. The asker may, and whoever steers
// the conversation (see steers); answer is told the outcome. Checking an administrator asks
// Telegram, so that case finishes on its own goroutine: the caller never waits on Telegram.
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
