package conversation

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura/transcribe"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// Speech: a recording is stored as the user's turn without text (/retry can hear it again),
// transcribed, and answered below the transcript, so a wrong hearing shows.

// Transcriber turns speech into text (transcribe.Client).
type Transcriber interface {
	Transcribe(ctx context.Context, fileName string, audio io.Reader) (string, error)
}

const noVoice = "Voice messages are not set up on this bot: please type your message."

// onSpoken queues a recording; without a transcriber a chat is told so at most once an hour.
func (h *Handler) onSpoken(ctx context.Context, r req, m *models.Message, what, fileID string, size int64, name string) bool {
	switch {
	case h.deps.Transcriber == nil:
		return h.noVoice.due(r.t.ChatID, time.Now()) && h.tell(ctx, r, noVoice)
	case size > tg.MaxDownload:
		return h.tell(ctx, r, tooBig(what))
	}
	turn := h.userTurn(r, m, "")
	turn.Audio = history.Audio{FileID: fileID, Name: name}
	return h.queueReply(ctx, r, m, func(ctx context.Context, r req) result { return h.answerSpoken(ctx, r, turn) })
}

func (h *Handler) answerSpoken(ctx context.Context, r req, turn history.Turn) result {
	if res, over := h.atCap(ctx, r); over {
		return res
	}
	stored, res, ok := h.store(ctx, r, turn)
	if !ok {
		return res
	}
	prompt := h.prompt(ctx, r.k)
	text := stored.Content // heard already, before a restart
	if stored.Untranscribed() {
		if text, res, ok = h.transcribeTurn(ctx, r, prompt, stored); !ok {
			return res
		}
	}
	return h.respond(ctx, r, prompt, reply.Options{Prefix: transcriptPrefix(text)})
}

// transcribeTurn hears a stored spoken turn and stores its transcript; a failure is told.
func (h *Handler) transcribeTurn(ctx context.Context, r req, prompt string, turn history.Turn) (string, result, bool) {
	fail := func(msg string) (string, result, bool) { return "", h.notify(ctx, r, msg), false }
	if h.deps.Transcriber == nil {
		return fail(noVoice)
	}
	data, res, ok := h.fetch(ctx, r, turn.Audio.FileID, tg.MaxDownload, "recording", tooBig("recording"), "Send /retry to try again.")
	if !ok {
		return "", res, false
	}
	text, err := h.deps.Transcriber.Transcribe(ctx, turn.Audio.Name, bytes.NewReader(data))
	if err != nil {
		if ctx.Err() != nil {
			return "", left, false
		}
		h.deps.Log.Warn("transcription failed", "chat_id", r.t.ChatID, "err", err)
		return fail("⚠️ I could not transcribe your recording: " + transcribeFailure(err) + " Send /retry to try again.")
	}
	if text = strings.TrimSpace(text); text == "" {
		return fail("I heard no words in that recording.")
	}
	heard := turn
	heard.Content = text
	if msg := h.tooLong(prompt, heard); msg != "" {
		return fail(msg)
	}
	if err := h.retryStore(ctx, r, func(ctx context.Context) error {
		return h.deps.Store.SetTranscript(ctx, r.k, turn.ID, text)
	}); err != nil {
		return "", h.storeFailed(ctx, r, "save what I heard", err), false
	}
	return text, done, true
}

func transcribeFailure(err error) string {
	var se *transcribe.StatusError
	switch {
	case errors.As(err, &se):
		if r := se.UserReason(); r != "" {
			return "the speech-to-text server answered: " + r + "."
		}
		return "the speech-to-text server refused it."
	case errors.Is(err, transcribe.ErrTooLarge):
		return "it is longer than the speech-to-text server takes."
	case errors.Is(err, context.DeadlineExceeded):
		return "the speech-to-text server took too long."
	}
	return "I could not reach the speech-to-text server."
}

const transcriptMark = "> 🎤 "

// transcriptPrefix quotes the transcript in Markdown, ASCII punctuation escaped.
func transcriptPrefix(text string) string {
	var b strings.Builder
	b.WriteString(transcriptMark + "\"")
	sep := ""
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		b.WriteString(sep)
		sep = "\n> "
		for _, c := range l {
			if c < 0x80 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) {
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
	}
	b.WriteString("\"\n\n")
	return b.String()
}

// stripTranscript takes the transcript quote off a reply's text, leaving the answer.
func stripTranscript(text string) string {
	if !strings.HasPrefix(text, transcriptMark+"\"") {
		return text
	}
	_, rest, _ := strings.Cut(text, "\"\n\n")
	return rest
}

// audioName is the file name an audio file is transcribed under: the extension tells the format.
func audioName(a *models.Audio) string {
	if a.FileName != "" && path.Ext(a.FileName) != "" {
		return a.FileName
	}
	if exts, _ := mime.ExtensionsByType(a.MimeType); len(exts) > 0 {
		return "audio" + exts[0]
	}
	return "audio.mp3"
}
