package conversation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// Who may do what: the one place it is decided.
//
// The bot may be used by the users in ALLOWED_USERS (or everyone, with *) and every member of
// a chat in ALLOWED_CHATS; others are told, at most once an hour per chat, how to get in. It
// listens to people: not to bots, automatic forwards or messages sent as a channel; an
// anonymous administrator (the group sending as itself) is a person and an administrator.
//
// In a group, the bot answers a message addressed to it (a mention entity of its @username, a
// text mention, or a reply to it; never a substring), commands not addressed to another bot,
// and an album's later photos. Steering the conversation everyone shares takes a steward (see
// steers and steerCommand): /system <text>, /reset, /retry, /model and its keyboard, stopping
// someone else's reply, and /export (messages from before a member joined included).

// allowed reports whether user (0: an anonymous administrator) in chat may use the bot.
func (h *Handler) allowed(userID, chatID int64) bool {
	return h.cfg.AllowedUsers.All || h.cfg.AllowedUsers.Has(userID) || h.cfg.AllowedChats.Has(chatID)
}

// named reports whether user is named in ALLOWED_USERS (* names nobody): the bot's owners.
func (h *Handler) named(user int64) bool { return h.cfg.AllowedUsers.Has(user) }

// listens reports whether the bot takes m; exempt (a command, an album's photo) needs no mention.
func (h *Handler) listens(r req, m *models.Message, cmd string, exempt bool) bool {
	if _, _, ok := sender(m); !ok || cmd == "@" {
		return false
	}
	return !r.t.Group || exempt || h.addressed(m)
}

// refuse tells a stranger, at most once an hour per chat, how the owner can let them in.
func (h *Handler) refuse(ctx context.Context, r req) bool {
	h.strangers.Log("user_id", r.from, "chat_id", r.t.ChatID)
	if !h.refused.due(r.t.ChatID, time.Now()) {
		return false
	}
	text := fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d: the owner can allow you by adding it to ALLOWED_USERS.", r.from)
	switch {
	case r.anonAdmin:
		text = fmt.Sprintf("Sorry, this bot is private. This chat's id is %d: the owner can allow this whole chat with ALLOWED_CHATS.", r.t.ChatID)
	case r.t.Group:
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d and this chat's id is %d: the owner can allow you with ALLOWED_USERS, or this whole chat with ALLOWED_CHATS.", r.from, r.t.ChatID)
	}
	return h.tell(ctx, r, text)
}

func steerCommand(cmd, arg string) bool {
	switch cmd {
	case "reset", "retry", "model", "export":
		return true
	case "system":
		return arg != "" // showing the prompt is open to all
	}
	return false
}

// steers reports whether r's sender may steer its conversation: in a group, an owner, an admin
// or owner (the asker of a reply). It may ask Telegram, so never on the path that takes updates.
func (h *Handler) steers(ctx context.Context, r req, owner int64) bool {
	return h.steersWithoutAsking(r, owner) || h.isAdmin(ctx, r.t.ChatID, r.from)
}

func (h *Handler) steersWithoutAsking(r req, owner int64) bool {
	return !r.t.Group || r.anonAdmin || owner != 0 && r.from == owner || h.named(r.from)
}

const (
	adminsFor     = 5 * time.Minute // a demoted admin keeps their powers at most that long
	maxAdminChats = 1000
)

// admins caches each group's administrators.
type admins struct {
	mu    sync.Mutex
	chats map[int64]adminList
}

type adminList struct {
	ids []int64
	at  time.Time
}

// isAdmin reports whether user administers chat; no when Telegram cannot tell.
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
			switch {
			case m.Owner != nil && m.Owner.User != nil:
				list.ids = append(list.ids, m.Owner.User.ID)
			case m.Administrator != nil:
				list.ids = append(list.ids, m.Administrator.User.ID)
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

func isGroup(c models.Chat) bool { return c.Type != models.ChatTypePrivate }

// sender is who sent m (an anonymous administrator: the chat); !ok for a bot, a channel, nobody.
func sender(m *models.Message) (id int64, anonAdmin, ok bool) {
	switch {
	case m.IsAutomaticForward:
		return 0, false, false
	case m.SenderChat != nil:
		if m.SenderChat.ID == m.Chat.ID && isGroup(m.Chat) {
			return m.Chat.ID, true, true
		}
		return 0, false, false
	case m.From == nil || m.From.IsBot:
		return 0, false, false
	}
	return m.From.ID, false, true
}

// addressed reports whether a group message replies to the bot or mentions it.
func (h *Handler) addressed(m *models.Message) bool {
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.ID == h.me.ID {
		return true
	}
	_, inText := h.stripMentions(m.Text, m.Entities)
	_, inCaption := h.stripMentions(m.Caption, m.CaptionEntities)
	return inText || inCaption
}

// stripMentions returns text without the bot's mentions (UTF-16 entities), and whether it had any.
func (h *Handler) stripMentions(text string, entities []models.MessageEntity) (string, bool) {
	if text == "" || len(entities) == 0 {
		return text, false
	}
	units := utf16.Encode([]rune(text))
	cut := make([]bool, len(units))
	found := false
	for _, e := range entities {
		if e.Offset < 0 || e.Length <= 0 || e.Offset > len(units) || e.Length > len(units)-e.Offset {
			continue
		}
		span := string(utf16.Decode(units[e.Offset : e.Offset+e.Length]))
		switch {
		case e.Type == models.MessageEntityTypeMention && h.me.Username != "" && strings.EqualFold(span, "@"+h.me.Username):
		case e.Type == models.MessageEntityTypeTextMention && e.User != nil && h.me.ID != 0 && e.User.ID == h.me.ID:
		default:
			continue
		}
		found = true
		for i := e.Offset; i < e.Offset+e.Length; i++ {
			cut[i] = true
		}
	}
	if !found {
		return text, false
	}
	kept := units[:0:0]
	for i, u := range units {
		if !cut[i] {
			kept = append(kept, u)
		}
	}
	return string(utf16.Decode(kept)), true
}
