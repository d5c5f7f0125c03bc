package conversation

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"
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
	if h.stop(reqOf(0, msg).k, update) {
		h.side.answerCallback(ctx, q.ID, "Stopped.")
		return
	}
	// The reply this button belongs to has ended: the button should not be there any more.
	h.side.removeButtons(ctx, msg.Chat.ID, msg.ID)
	h.side.answerCallback(ctx, q.ID, "That reply has already ended.")
}
