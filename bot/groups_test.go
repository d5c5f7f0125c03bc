package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// In a group admitted with ALLOWED_CHATS, any member may talk to the bot, but only an allowed
// user or an administrator may change the group's system prompt or clear its history, and only
// the asker, an allowed user or an administrator may stop a reply.
func TestGroupPermissions(t *testing.T) {
	const (
		member = 11 // in the group, not in ALLOWED_USERS
		admin  = 12 // an administrator of the group
		owner  = 13 // in ALLOWED_USERS
		asker  = 14
	)
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{IDs: []int64{owner}}, AllowedChats: conversation.IDList{IDs: []int64{group}}, Models: []conversation.ModelChoice{{ID: "small"}, {ID: "large"}}}})
	e.tg.SetAdministrators(group, 99, admin)
	mention := "@" + telegramtest.BotUsername + " "

	sys := e.say(group, member, "/system Talk like a pirate.")
	e.wait(func() bool { return hasText(e.tg, group, sys, "administrators") })
	reset := e.say(group, member, "/reset")
	e.wait(func() bool { return hasText(e.tg, group, reset, "administrators") })
	view := e.say(group, member, "/system")
	e.wait(func() bool { return hasText(e.tg, group, view, "default") })
	if p, ok, _ := e.store.SystemPrompt(context.Background(), history.Key{ChatID: group}); ok {
		t.Fatalf("a member set the prompt to %q", p)
	}
	model := e.say(group, member, "/model large")
	e.wait(func() bool { return hasText(e.tg, group, model, "can see or change its model") })
	for _, who := range []int64{admin, owner} {
		id := e.say(group, who, "/system Be brief.")
		e.wait(func() bool { return hasText(e.tg, group, id, "System prompt set") })
	}
	model = e.say(group, admin, "/model large")
	e.wait(func() bool { return hasText(e.tg, group, model, "Switched to large") })

	// Stopping: a member cannot stop another's reply; the asker can.
	release := make(chan struct{})
	defer close(release)
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if !yield("A long story", nil) {
			return
		}
		select {
		case <-ctx.Done():
			yield("", ctx.Err())
		case <-release:
		}
	}
	q := e.say(group, asker, mention+"tell a story")
	e.wait(func() bool { return hasText(e.tg, group, q, "A long story") })
	stop := e.say(group, member, "/stop")
	e.wait(func() bool { return hasText(e.tg, group, stop, "Only the person who asked") })
	press := func(from int64) {
		msg := e.tg.Messages(group)
		e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
			ID: "cb" + jsonInt(int(from)), From: models.User{ID: from}, Data: stopDataOf(t, e),
			Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{
				ID: msg[len(msg)-1].ID, Date: int(time.Now().Unix()), Chat: models.Chat{ID: group, Type: models.ChatTypeSupergroup},
			}},
		}})
	}
	press(member)
	e.wait(func() bool {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if c.Params["callback_query_id"] == "cb11" {
				return strings.Contains(c.Params["text"], "Only the person who asked")
			}
		}
		return false
	})
	press(asker)
	msgs := e.final(group, q)
	if !strings.Contains(msgs[0].Text, "Stopped") {
		t.Errorf("after the asker's press: got %q, want the reply stopped", msgs[0].Text)
	}
}

// stopDataOf is the callback data of the Stop button of the newest reply.
func stopDataOf(t *testing.T, e *env) string {
	t.Helper()
	calls := e.tg.Calls("sendMessage")
	for i := len(calls) - 1; i >= 0; i-- {
		m := calls[i].Params["reply_markup"]
		if i := strings.Index(m, `"callback_data":"`); i >= 0 {
			rest := m[i+len(`"callback_data":"`):]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	t.Fatal("no Stop button was sent")
	return ""
}
