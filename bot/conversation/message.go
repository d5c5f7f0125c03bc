package conversation

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/history"
)

// req is one update being handled in a conversation.
type req struct {
	entry int64 // its inbox entry; 0 for none
	k     history.Key
	t     reply.Target
	// from is the user who sent it; for an anonymous administrator (anonAdmin), the chat's id.
	from      int64
	anonAdmin bool
	name      string // how the sender is named in the usage figures
	// quoted is the message the update replies to, when its turn quotes the whole of it (see
	// quoteOf); 0 otherwise.
	quoted int
	album  *album // the album whose first photo this is (see settleAlbum)
}

// Handle routes one update, saved as inbox entry seq. It never blocks on Telegram or on a
// reply: answers are queued per conversation, and the runner finishes the entry once its job is
// done.
func (h *Handler) Handle(ctx context.Context, seq int64, u *models.Update) {
	h.intake(ctx, seq, u, func() bool {
		switch {
		case u.Message != nil:
			return h.onMessage(ctx, seq, u.Message)
		case u.CallbackQuery != nil:
			h.onCallback(ctx, u.CallbackQuery)
		case u.StoppedMessageGeneration != nil:
			h.onGenerationStopped(ctx, u.StoppedMessageGeneration)
		}
		return false // anything else is ignored: the bot asks Telegram only for what it handles
	})
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

// onMessage handles a message; it reports whether it queued a job that owns the update.
func (h *Handler) onMessage(ctx context.Context, entry int64, m *models.Message) bool {
	h.deps.Registry.Add(m.Chat.ID, m.ID)
	r := reqOf(entry, m)
	cmd, arg, isCmd := h.parseCommand(m.Text)
	inAlbum := h.albums.isOpen(r.k, m)
	if !h.listens(r, m, cmd, isCmd || inAlbum) {
		return false
	}
	user := r.from
	if r.anonAdmin {
		user = 0
	}
	if !h.allowed(user, m.Chat.ID) {
		return h.refuse(ctx, r)
	}
	if !inAlbum && cmd != "stop" {
		if over, taken := h.overRate(ctx, r); over {
			return taken
		}
	}
	if isCmd {
		return h.onCommand(ctx, r, cmd, arg)
	}
	_, r.quoted = h.quoteOf(r, m)
	if m.Text == "" {
		return h.onMedia(ctx, r, m)
	}
	text := m.Text
	if r.t.Group {
		text, _ = h.stripMentions(text, m.Entities)
		if text = strings.TrimSpace(text); text == "" {
			return h.tell(ctx, r, "Yes? Mention me with a question, or reply to one of my messages.")
		}
	}
	turn := h.userTurn(r, m, text)
	return h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answer(ctx, r, turn) })
}

// userTurn is the turn of a user's message with the given content, and the message it replies
// to quoted (see quoteOf).
func (h *Handler) userTurn(r req, m *models.Message, content string) history.Turn {
	q, _ := h.quoteOf(r, m)
	return history.Turn{Role: history.RoleUser, Content: content, MessageID: int64(m.ID), Author: author(r, m), Quote: q}
}

// parseCommand splits "/cmd@bot arg". A command addressed to another bot is cmd "@" (see
// listens).
func (h *Handler) parseCommand(text string) (cmd, arg string, isCmd bool) {
	if !strings.HasPrefix(text, "/") {
		return "", "", false
	}
	head, arg, _ := strings.Cut(text[1:], " ")
	if i := strings.IndexByte(head, '\n'); i >= 0 {
		arg = head[i+1:] + " " + arg
		head = head[:i]
	}
	cmd, at, hasAt := strings.Cut(head, "@")
	switch {
	case cmd == "":
		return "", "", false
	case hasAt && !strings.EqualFold(at, h.me.Username):
		return "@", "", true
	}
	return strings.ToLower(cmd), strings.TrimSpace(arg), true
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
