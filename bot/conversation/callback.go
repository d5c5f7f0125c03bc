package conversation

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
)

// onCallback handles a button press. It only queues calls: the answer to the press and any
// edit go out on their own.
func (h *Handler) onCallback(ctx context.Context, q *models.CallbackQuery) {
	msg := q.Message.Message
	if im := q.Message.InaccessibleMessage; msg == nil && im != nil {
		// An old message (Telegram no longer sends its content): its chat is enough.
		msg = &models.Message{ID: im.MessageID, Chat: im.Chat}
	}
	if msg == nil {
		h.side.answerCallback(ctx, q.ID, "")
		return
	}
	if !h.allowed(q.From.ID, msg.Chat.ID) {
		h.side.answerCallback(ctx, q.ID, "This bot is private. Your user id is "+strconv.FormatInt(q.From.ID, 10)+".")
		return
	}
	name, arg, _ := strings.Cut(q.Data, ":")
	if name == callbackModel {
		h.onModelPress(ctx, q, msg, arg) // see model.go
		return
	}
	if name != callbackStop {
		h.side.answerCallback(ctx, q.ID, "")
		return
	}
	update, _ := strconv.ParseInt(arg, 10, 64) // 0 for a button of an older version: any reply
	r := reqOf(0, msg)
	r.from = q.From.ID
	h.stopAs(ctx, r, update, func(ctx context.Context, text string) {
		if text == replyEnded {
			// The button should not be there any more.
			h.side.removeButtons(ctx, msg.Chat.ID, msg.ID)
		}
		h.side.answerCallback(ctx, q.ID, text)
	})
}

// onGenerationStopped handles a press on Telegram's own Stop button of a draft
// (stopped_message_generation, STREAM_MODE=draft): it stops the reply streaming through that
// draft exactly as /stop does (stopAs), so the reply ends the same way, recorded the same way,
// with its text so far and "⏹ Stopped.". The press names the chat, the topic and the draft,
// not who pressed: drafts are shown in private chats only, whose user it is. A press on the
// draft of a reply that has ended stops nothing.
func (h *Handler) onGenerationStopped(ctx context.Context, s *models.MessageGenerationStopped) {
	if s.Chat.Type != models.ChatTypePrivate || !h.allowed(s.Chat.ID, s.Chat.ID) {
		return
	}
	k := history.Key{ChatID: s.Chat.ID, ThreadID: int64(s.MessageThreadID)}
	h.mu.Lock()
	a := h.active[k]
	h.mu.Unlock()
	if a == nil || a.draft == 0 || a.draft != int64(s.DraftID) {
		h.deps.Log.Debug("a stop of a draft no reply streams through now", "chat_id", s.Chat.ID, "draft_id", s.DraftID)
		return
	}
	r := req{k: k, t: reply.Target{ChatID: s.Chat.ID, ThreadID: s.MessageThreadID}, from: s.Chat.ID}
	h.stopAs(ctx, r, a.update, func(context.Context, string) {
		// Nothing to answer: the stopped reply says so itself, and a press has no message.
	})
}
