package conversation

import (
	"context"
	"fmt"
	"runtime/debug"
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
	// from is the user who sent it; for an anonymous administrator (anonAdmin), the chat's id.
	from      int64
	anonAdmin bool
	// name is how the sender is named in the usage figures.
	name string
	// quoted is the message the update replies to, when its turn quotes the whole of it (see
	// quoteOf); 0 otherwise.
	quoted int
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
			if m := u.Message; m != nil {
				if r := reqOf(seq, m); r.from != 0 && h.allowed(r.from, m.Chat.ID) && h.tell(ctx, r, skippedNotice) {
					return
				}
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
	case u.StoppedMessageGeneration != nil:
		h.onGenerationStopped(ctx, u.StoppedMessageGeneration) // see callback.go
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
	if id, anon, ok := sender(m); ok {
		r.from, r.anonAdmin = id, anon
	} else if m.From != nil {
		r.from = m.From.ID
	}
	if m.IsTopicMessage {
		r.k.ThreadID = int64(m.MessageThreadID)
		r.t.ThreadID = m.MessageThreadID
	}
	switch {
	case r.anonAdmin:
		r.name = author(r, m)
	case m.From != nil:
		r.name = displayName(m.From)
	}
	return r
}

func isGroup(c models.Chat) bool { return c.Type != models.ChatTypePrivate }

// onMessage handles a message; it reports whether it queued a job that finishes the update.
func (h *Handler) onMessage(ctx context.Context, entry int64, m *models.Message) bool {
	h.deps.Registry.Add(m.Chat.ID, m.ID)
	if _, _, ok := sender(m); !ok {
		return false // a bot, a channel, a linked channel's automatic forward (see access.go)
	}
	group := isGroup(m.Chat)
	r := reqOf(entry, m)
	cmd, arg, isCmd, forUs := h.parseCommand(m.Text)
	if isCmd && !forUs {
		return false // a command for another bot in the group
	}
	inAlbum := h.albums.isOpen(r.k, m)
	if group && !isCmd && !inAlbum && !h.addressed(m) {
		return false
	}
	user := r.from
	if r.anonAdmin {
		user = 0
	}
	if !h.allowed(user, m.Chat.ID) {
		return h.refuse(ctx, r, m)
	}
	if !inAlbum && (!isCmd || cmd != "stop") {
		if over, taken := h.overRate(ctx, r); over {
			return taken
		}
	}
	if isCmd {
		return h.onCommand(ctx, r, cmd, arg)
	}
	_, r.quoted = h.quoteOf(r, m)
	text := m.Text
	if text == "" {
		return h.onMedia(ctx, r, m) // see media.go
	}
	if group {
		text, _ = h.stripMentions(text, m.Entities)
		text = strings.TrimSpace(text)
		if text == "" {
			return h.tell(ctx, r, "Yes? Mention me with a question, or reply to one of my messages.")
		}
	}
	turn := h.userTurn(r, m, text)
	waited, taken := h.admit(ctx, r, true, func(ctx context.Context, r req) result { return h.answer(ctx, r, turn) })
	if waited {
		// The user sees the message was received while the previous reply still streams. The
		// reaction goes out on its own: intake does not wait for it.
		h.side.react(ctx, r.t.ChatID, m.ID, "👀")
	}
	return taken
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

// author is the name a group message's turn carries, so that the model can tell its people
// apart: the sender's name, or an anonymous administrator's signature (else the group's title).
func author(r req, m *models.Message) string {
	switch {
	case !r.t.Group:
		return ""
	case r.anonAdmin && m.AuthorSignature != "":
		return m.AuthorSignature
	case r.anonAdmin && m.Chat.Title != "":
		return m.Chat.Title + " (an administrator)"
	case r.anonAdmin || m.From == nil:
		return "an administrator"
	}
	return displayName(m.From)
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
// reports whether it queued that notice (which finishes the update). The log says so at most
// once a minute, with a count: strangers cannot fill it.
func (h *Handler) refuse(ctx context.Context, r req, m *models.Message) bool {
	h.strangers.Log("user_id", r.from, "chat_id", m.Chat.ID)
	if !h.refused.due(m.Chat.ID, time.Now()) {
		return false
	}
	var text string
	switch {
	case r.anonAdmin:
		text = fmt.Sprintf("Sorry, this bot is private. This chat's id is %d: the owner can allow this whole chat with ALLOWED_CHATS.", m.Chat.ID)
	case isGroup(m.Chat):
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d and this chat's id is %d: the owner can allow you with ALLOWED_USERS, or this whole chat with ALLOWED_CHATS.", r.from, m.Chat.ID)
	default:
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d: the owner can allow you by adding it to ALLOWED_USERS.", r.from)
	}
	return h.tell(ctx, r, text)
}
