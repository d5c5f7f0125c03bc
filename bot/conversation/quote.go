package conversation

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/history"
)

// A message that replies to another carries that message with its turn, quoted (see
// history.Quote): "shorter, please" in reply to an answer from an hour ago means something to
// the model, also when that answer is older than the stored history (or was /reset away), as
// Telegram sends the replied-to message with the update. The quote is part of the text sent
// for the turn, so it is stored, defused and counted in the window with it.

// maxQuoteChars bounds the text of a replied-to message carried with a turn: enough for the
// model to know which message is meant (and, for an answer older than the history, what it
// said), not a second copy of a long answer in every turn.
const maxQuoteChars = 1000

// quoteOf is the message m replies to, as m's turn quotes it: the part the user quoted, or the
// message's text (a caption, or what kind of message it is), bounded by maxQuoteChars; and the
// id of the replied-to message when the quote is the whole of it (0 otherwise). The zero Quote
// when m replies to nothing, or to the message that opened its forum topic (every message of a
// topic does).
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
	case rt == nil:
		// A quote of a message in another chat: who wrote it is not known.
	case rt.From != nil && h.me.ID != 0 && rt.From.ID == h.me.ID:
		q.Bot = true
	case r.t.Group:
		q.Author = quotedAuthor(rt)
	}
	return q, whole
}

// messageText is what a quoted message says: its text or caption, after the kind of message
// for a message that is more than text ("[a photo] caption").
func messageText(m *models.Message) string {
	text := m.Text
	if text == "" {
		text = m.Caption
	}
	kind := ""
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

// quotedAuthor is the name a quoted group message goes by.
func quotedAuthor(m *models.Message) string {
	switch {
	case m.SenderChat != nil && m.SenderChat.ID == m.Chat.ID:
		if m.AuthorSignature != "" {
			return m.AuthorSignature
		}
		return "an administrator"
	case m.SenderChat != nil:
		return m.SenderChat.Title
	case m.From != nil:
		return displayName(m.From)
	}
	return ""
}

// boundQuote trims text and cuts it to maxQuoteChars characters, marking the cut with "…".
func boundQuote(text string) string {
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) <= maxQuoteChars {
		return text
	}
	n := 0
	for i := range text {
		if n == maxQuoteChars-1 {
			return strings.TrimRight(text[:i], " \n") + "…"
		}
		n++
	}
	return text
}

// withoutRedundantQuote drops t's quote when it quotes the whole of the conversation's newest
// turn (the answer just given, most often: in a group, replying to the bot's message is how one
// talks to it): the model reads that message right before the turn anyway.
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
