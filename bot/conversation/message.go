package conversation

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// req is one update being handled in a conversation.
type req struct {
	entry     int64 // its inbox entry; 0 for none
	k         history.Key
	t         reply.Target
	from      int64 // the sender; for an anonymous administrator (anonAdmin), the chat's id
	anonAdmin bool
	name      string // the sender's name in the usage figures
	quoted    int    // the message replied to, when the turn quotes all of it (quoteOf)
	album     *album // the album whose first photo this is
}

// Handle routes update u, saved as inbox entry seq; it never blocks on Telegram or on a reply.
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

// reqOf is the conversation and reply target of a message: its chat, or its topic.
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

// onMessage reports whether it queued a job that owns the update.
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

// userTurn is the turn of a user's message, the message it replies to quoted.
func (h *Handler) userTurn(r req, m *models.Message, content string) history.Turn {
	q, _ := h.quoteOf(r, m)
	return history.Turn{Role: history.RoleUser, Content: content, MessageID: int64(m.ID), Author: author(r, m), Quote: q}
}

// parseCommand splits "/cmd@bot arg"; a command to another bot is cmd "@".
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

// author is the name a group message's turn carries, so that the model can tell people apart.
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
	return cmp.Or(strings.TrimSpace(u.FirstName+" "+u.LastName), u.Username, "user "+strconv.FormatInt(u.ID, 10))
}

// A reply's turn quotes the message it replies to (history.Quote), stored or not.

// maxQuoteChars is enough to tell which message is meant, not a second copy of a long answer.
const maxQuoteChars = 1000

// quoteOf is what m's turn quotes: the part the user quoted, or the replied-to message's text
// (then also its id). Nothing for a reply to a forum topic's opening message (every one is).
func (h *Handler) quoteOf(r req, m *models.Message) (history.Quote, int) {
	rt := m.ReplyToMessage
	if rt != nil && (rt.ForumTopicCreated != nil || m.IsTopicMessage && rt.ID == m.MessageThreadID) {
		rt = nil
	}
	var q history.Quote
	whole := 0
	switch {
	case m.Quote != nil && strings.TrimSpace(m.Quote.Text) != "":
		q.Text = m.Quote.Text // the part of the message the user picked
	case rt != nil:
		q.Text, whole = messageText(rt), rt.ID
	}
	q.Text = boundQuote(q.Text)
	if q.Text == "" {
		return history.Quote{}, 0
	}
	switch {
	case rt == nil: // a quote of a message in another chat: who wrote it is not known
	case rt.From != nil && h.me.ID != 0 && rt.From.ID == h.me.ID:
		q.Bot = true
	case r.t.Group:
		q.Author = quotedAuthor(rt)
	}
	return q, whole
}

// messageText is what a quoted message says: "[a photo] caption", or its text.
func messageText(m *models.Message) string {
	text, kind := cmp.Or(m.Text, m.Caption), ""
	switch {
	case len(m.Photo) > 0:
		kind = "a photo"
	case m.Voice != nil:
		kind = "a voice message"
	case m.VideoNote != nil:
		kind = "a video message"
	case m.Audio != nil:
		kind = "an audio file"
	case m.Video != nil || m.Animation != nil:
		kind = "a video"
	case m.Document != nil:
		kind = "a file"
		if m.Document.FileName != "" {
			kind += " (" + m.Document.FileName + ")"
		}
	case m.Sticker != nil:
		kind = "a sticker " + m.Sticker.Emoji
	case m.Poll != nil:
		kind = "a poll: " + m.Poll.Question
	}
	if kind == "" {
		return strings.TrimSpace(text)
	}
	return strings.TrimSpace("[" + strings.TrimSpace(kind) + "] " + text)
}

func quotedAuthor(m *models.Message) string {
	switch {
	case m.SenderChat != nil && m.SenderChat.ID == m.Chat.ID:
		return cmp.Or(m.AuthorSignature, "an administrator")
	case m.SenderChat != nil:
		return m.SenderChat.Title
	case m.From != nil:
		return displayName(m.From)
	}
	return ""
}

// boundQuote trims text and cuts it to maxQuoteChars characters, marked "…".
func boundQuote(text string) string {
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) <= maxQuoteChars {
		return text
	}
	return strings.TrimRight(string([]rune(text)[:maxQuoteChars-1]), " \n") + "…"
}

// withoutRedundantQuote drops t's quote of all of the newest turn, which the model reads anyway.
func (h *Handler) withoutRedundantQuote(ctx context.Context, r req, t history.Turn) history.Turn {
	if t.Quote.Text == "" || r.quoted == 0 {
		return t
	}
	last, ok, err := h.deps.Store.Newest(ctx, r.k)
	if err != nil {
		h.deps.Log.Warn("could not read the newest turn; keeping the quote", "chat_id", r.k.ChatID, "err", err)
		return t
	}
	if ok && last.MessageID == int64(r.quoted) {
		t.Quote = history.Quote{}
	}
	return t
}

// A message without text is a photo (pictures.go), a recording (speech.go) or a file (files.go).

const canRead = "I read text, photos, voice and audio messages, round video messages, and text files (.txt, .md, .csv, .json, .yaml, .xml, .html, source code, logs)."

// onMedia reports whether it queued a job that owns the update.
func (h *Handler) onMedia(ctx context.Context, r req, m *models.Message) bool {
	switch {
	case len(m.Photo) > 0:
		return h.onPhoto(ctx, r, m)
	case m.Voice != nil:
		return h.onSpoken(ctx, r, m, "voice message", m.Voice.FileID, m.Voice.FileSize, "voice.ogg")
	case m.Audio != nil:
		return h.onSpoken(ctx, r, m, "audio file", m.Audio.FileID, m.Audio.FileSize, audioName(m.Audio))
	case m.VideoNote != nil:
		return h.onSpoken(ctx, r, m, "video message", m.VideoNote.FileID, int64(m.VideoNote.FileSize), "video_note.mp4")
	case m.Document != nil:
		return h.onDocument(ctx, r, m)
	}
	what := "that kind of message"
	switch {
	case m.Sticker != nil:
		what = "stickers"
	case m.Video != nil || m.Animation != nil:
		what = "videos"
	}
	return h.tell(ctx, r, "I can't use "+what+". "+canRead)
}

// caption is a media message's caption, without the bot's mentions in a group.
func (h *Handler) caption(r req, m *models.Message) string {
	c := m.Caption
	if r.t.Group {
		c, _ = h.stripMentions(c, m.CaptionEntities)
	}
	return strings.TrimSpace(c)
}

func tooBig(what string) string {
	return "That " + what + " is too big: Telegram lets bots download files up to 20 MB."
}

// fetch downloads a file of r's message, at most limit bytes; a failure is told (tooLarge, again).
func (h *Handler) fetch(ctx context.Context, r req, fileID string, limit int64, what, tooLarge, again string) ([]byte, result, bool) {
	data, err := h.deps.TG.Download(ctx, fileID, limit)
	switch {
	case err == nil:
		return data, done, true
	case tooLarge != "" && errors.Is(err, tg.ErrFileTooBig):
		return nil, h.notify(ctx, r, tooLarge), false
	case ctx.Err() != nil:
		return nil, left, false
	}
	h.deps.Log.Warn("could not download a "+what, "chat_id", r.t.ChatID, "err", err)
	return nil, h.notify(ctx, r, "⚠️ I could not download your "+what+" from Telegram. "+again), false
}
