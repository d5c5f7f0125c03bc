package conversation

import (
	"context"
	"slices"
	"sync"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// Who may do what. In a private chat an allowed user may do everything. In a group admitted
// with ALLOWED_CHATS every member may talk to the bot, but changing the group's conversation
// (/system, /reset, /model) takes a user in ALLOWED_USERS or an administrator of the chat, and
// stopping a reply takes the person who asked, an allowed user or an administrator.

// adminsFor is how long a chat's administrators are remembered: a demoted admin keeps their
// powers at most that long.
const adminsFor = 5 * time.Minute

// maxAdminChats bounds the chats whose administrators are remembered.
const maxAdminChats = 1000

// admins caches each group's administrators.
type admins struct {
	mu    sync.Mutex
	chats map[int64]adminList
}

type adminList struct {
	ids []int64
	at  time.Time
}

// allowedUser reports whether user is named in ALLOWED_USERS (or everyone is allowed).
func (h *Handler) allowedUser(user int64) bool {
	return h.cfg.AllowAll || slices.Contains(h.cfg.AllowedUsers, user)
}

// mayConfigure reports whether the sender of r may change its conversation: anyone allowed in
// a private chat; in a group, an allowed user or an administrator of the chat. It may ask
// Telegram, so it runs in queued jobs, never on the path that takes updates.
func (h *Handler) mayConfigure(ctx context.Context, r req) bool {
	if !r.t.Group || h.allowedUser(r.from) {
		return true
	}
	return h.isAdmin(ctx, r.t.ChatID, r.from)
}

// isAdmin reports whether user administers chat, from a cache refreshed every adminsFor. When
// Telegram cannot tell, the answer is no.
func (h *Handler) isAdmin(ctx context.Context, chat, user int64) bool {
	a := h.admins
	a.mu.Lock()
	list, ok := a.chats[chat]
	a.mu.Unlock()
	if !ok || time.Since(list.at) > adminsFor {
		cctx, cancel := tg.Background(ctx, 10*time.Second)
		members, err := h.deps.TG.GetChatAdministrators(cctx, &tgbot.GetChatAdministratorsParams{ChatID: chat})
		cancel()
		if err != nil {
			h.deps.Log.Warn("could not ask Telegram for a chat's administrators", "chat_id", chat, "err", err)
			return false
		}
		list = adminList{at: time.Now()}
		for _, m := range members {
			if id := memberID(m); id != 0 {
				list.ids = append(list.ids, id)
			}
		}
		a.mu.Lock()
		if len(a.chats) >= maxAdminChats {
			for id, l := range a.chats { // forget the stale ones, or one at random
				if time.Since(l.at) > adminsFor || len(a.chats) >= maxAdminChats {
					delete(a.chats, id)
				}
				if len(a.chats) < maxAdminChats/2 {
					break
				}
			}
		}
		a.chats[chat] = list
		a.mu.Unlock()
	}
	return slices.Contains(list.ids, user)
}

// memberID is the user id of a chat member of any status.
func memberID(m models.ChatMember) int64 {
	switch {
	case m.Owner != nil && m.Owner.User != nil:
		return m.Owner.User.ID
	case m.Administrator != nil:
		return m.Administrator.User.ID
	}
	return 0
}

// mayStop reports whether user may stop a reply that asker asked for in chat: the asker, an
// allowed user, or (in a group) an administrator.
func (h *Handler) mayStop(ctx context.Context, chat int64, group bool, user, asker int64) bool {
	if user == asker || h.allowedUser(user) {
		return true
	}
	return group && h.isAdmin(ctx, chat, user)
}
