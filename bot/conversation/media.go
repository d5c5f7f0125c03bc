package conversation

import (
	"context"
	"errors"
	"strings"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// A message without text is a photo (pictures.go), a recording (speech.go) or a file
// (files.go); each becomes the user's turn, downloaded by the queued job, never on the path
// that takes updates. Anything else is told what the bot reads.

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

// fetch downloads a file of r's message, at most limit bytes. On failure it tells the user
// (tooLarge past limit, if set; else that their what could not be downloaded, then again) and
// reports false, with what became of the update.
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
