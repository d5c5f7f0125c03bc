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
