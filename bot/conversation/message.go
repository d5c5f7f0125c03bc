package conversation

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
)

// req is one update being handled in a conversation.
type req struct {
	entry int64 // its inbox entry, finished when it is handled; 0 for none
	k     history.Key
	t     reply.Target
	from  int64 // the user who sent it
}

// Handle routes one update, saved as inbox entry seq. It never blocks on Telegram or on a
// reply: answers are queued per conversation, and the runner finishes the entry once its job is
// done.
func (h *Handler) Handle(ctx context.Context, seq int64, u *models.Update) {
	defer func() {
		if v := recover(); v != nil {
			// Never again: the update is skipped, with a notice where there is a chat to tell.
			h.deps.Log.Error("panic while taking an update; skipping it", "entry", seq, "update_id", u.ID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if m := u.Message; m != nil && m.From != nil && h.allowed(m.From.ID, m.Chat.ID) {
				h.tell(ctx, reqOf(seq, m), skippedNotice)
				return
			}
			h.finish(ctx, seq)
		}
	}()
	queued := false
	switch {
	case u.Message != nil:
		queued = h.onMessage(ctx, seq, u.Message)
	case u.CallbackQuery != nil:
		h.onCallback(ctx, u.CallbackQuery)
	}
	// Everything else is ignored on purpose (the bot asks Telegram only for what it handles).
	if !queued {
		h.finish(ctx, seq)
	}
}

// reqOf is the conversation and reply target of a message: its chat, or its topic in a chat
// with topics.
func reqOf(entry int64, m *models.Message) req {
	r := req{entry: entry, k: history.Key{ChatID: m.Chat.ID}, t: reply.Target{ChatID: m.Chat.ID, ReplyTo: m.ID, Seen: m.ID, Group: isGroup(m.Chat)}}
	if m.From != nil {
		r.from = m.From.ID
	}
	if m.IsTopicMessage {
		r.k.ThreadID = int64(m.MessageThreadID)
		r.t.ThreadID = m.MessageThreadID
	}
	return r
}

func isGroup(c models.Chat) bool { return c.Type != models.ChatTypePrivate }

func (h *Handler) allowed(userID, chatID int64) bool {
	return h.cfg.AllowAll || slices.Contains(h.cfg.AllowedUsers, userID) || slices.Contains(h.cfg.AllowedChats, chatID)
}

// onMessage handles a message; it reports whether it queued a job that finishes the update.
func (h *Handler) onMessage(ctx context.Context, entry int64, m *models.Message) bool {
	h.deps.Registry.Add(m.Chat.ID, m.ID)
	if m.From == nil || m.From.IsBot {
		return false
	}
	group := isGroup(m.Chat)
	cmd, arg, isCmd, forUs := h.parseCommand(m.Text)
	if isCmd && !forUs {
		return false // a command for another bot in the group
	}
	if group && !isCmd && !h.addressed(m) && !h.albums.isOpen(reqOf(entry, m).k, m) {
		return false
	}
	r := reqOf(entry, m)
	if !h.allowed(m.From.ID, m.Chat.ID) {
		return h.refuse(ctx, r, m)
	}
	if isCmd {
		return h.onCommand(ctx, r, cmd, arg)
	}
	text := m.Text
	if text == "" {
		return h.onMedia(ctx, r, m) // see media.go
	}
	if group {
		text = strings.TrimSpace(h.mention.ReplaceAllString(text, ""))
		if text == "" {
			return h.tell(ctx, r, "Yes? Mention me with a question, or reply to one of my messages.")
		}
	}
	author := ""
	if group {
		author = displayName(m.From)
	}
	turn := history.Turn{Role: history.RoleUser, Content: text, Author: author, MessageID: int64(m.ID)}
	if h.enqueue(ctx, r, true, func(ctx context.Context, r req) result { return h.answer(ctx, r, turn) }) {
		// The user sees the message was received while the previous reply still streams. The
		// reaction goes out on its own: intake does not wait for it.
		h.side.react(ctx, r.t.ChatID, m.ID, "👀")
	}
	return true
}

// addressed reports whether a group message is for the bot: it mentions it or replies to it.
func (h *Handler) addressed(m *models.Message) bool {
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.ID == h.me.ID {
		return true
	}
	return h.me.Username != "" && strings.Contains(strings.ToLower(m.Text+" "+m.Caption), "@"+strings.ToLower(h.me.Username))
}

// parseCommand splits "/cmd@bot arg". forUs is false for a command addressed to another bot.
func (h *Handler) parseCommand(text string) (cmd, arg string, isCmd, forUs bool) {
	if !strings.HasPrefix(text, "/") {
		return "", "", false, false
	}
	head, arg, _ := strings.Cut(text[1:], " ")
	if i := strings.IndexAny(head, "\n"); i >= 0 {
		arg = head[i+1:] + " " + arg
		head = head[:i]
	}
	cmd, at, hasAt := strings.Cut(head, "@")
	if cmd == "" {
		return "", "", false, false
	}
	forUs = !hasAt || strings.EqualFold(at, h.me.Username)
	return strings.ToLower(cmd), strings.TrimSpace(arg), true, forUs
}

func displayName(u *models.User) string {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = u.Username
	}
	if name == "" {
		name = "user " + strconv.FormatInt(u.ID, 10)
	}
	return name
}

const (
	refusalEvery = time.Hour
	// maxRefusals bounds the memory of refused chats: past it the oldest are forgotten (and may
	// be told again).
	maxRefusals = 10000
)

// refusals remembers when each chat was last told it is not allowed, for a bounded number of
// chats.
type refusals struct {
	every time.Duration
	max   int

	mu    sync.Mutex
	last  map[int64]time.Time
	order []int64 // chats in the order they were first refused (oldest first)
}

func newRefusals(every time.Duration, maxChats int) *refusals {
	return &refusals{every: every, max: maxChats, last: map[int64]time.Time{}}
}

// due reports whether chat should be told now, and notes that it is.
func (r *refusals) due(chat int64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, seen := r.last[chat]; seen {
		if now.Sub(last) < r.every {
			return false
		}
		r.last[chat] = now
		return true
	}
	for len(r.order) >= r.max {
		delete(r.last, r.order[0])
		r.order = r.order[1:]
	}
	r.last[chat] = now
	r.order = append(r.order, chat)
	return true
}

// size is how many chats are remembered.
func (r *refusals) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.last)
}

// refuse tells a stranger, at most once an hour per chat, how the owner can let them in. It
// reports whether it queued that notice (which finishes the update).
func (h *Handler) refuse(ctx context.Context, r req, m *models.Message) bool {
	if !h.refused.due(m.Chat.ID, time.Now()) {
		return false
	}
	text := fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d: the owner can allow you by adding it to ALLOWED_USERS.", m.From.ID)
	if isGroup(m.Chat) {
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d and this chat's id is %d: the owner can allow you with ALLOWED_USERS, or this whole chat with ALLOWED_CHATS.", m.From.ID, m.Chat.ID)
	}
	h.deps.Log.Info("refused a stranger", "user_id", m.From.ID, "chat_id", m.Chat.ID)
	return h.tell(ctx, r, text)
}
