package conversation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
	"aurabot/history/inbox"
)

// exportSent is what the journal of an /export records once the document is out: a restart
// that finds it does not send the document again.
const exportSent = "📄 The conversation was sent as a Markdown file."

// maxExportBytes is the largest file the Bot API takes from a bot.
const maxExportBytes = 50 << 20

// cmdExport sends the conversation (system prompt, summary, every turn) as a Markdown file.
//
// The file goes out under the chat's send gate and its message joins the registry (see
// reply.SendDocument). It is sent at most once per /export: once it is out, the update's
// journal records it (as a final plain text, which nothing resumes into a message), and a
// restart that finds that record finishes the update without sending it again. A crash between
// the send and the record sends it twice; a send whose answer never came is not made again.
func (h *Handler) cmdExport(ctx context.Context, r req, _ string) result {
	if rec, err := h.recordedOf(ctx, r); err == nil && rec.Final && rec.Text == exportSent {
		return done // sent before a restart
	}
	prompt := h.prompt(ctx, r.k)
	turns, err := h.deps.Store.Turns(ctx, r.k)
	if err != nil {
		return h.storeFailed(ctx, r, "read the conversation", err)
	}
	sum, err := h.deps.Store.Summary(ctx, r.k)
	if err != nil {
		return h.storeFailed(ctx, r, "read the summary", err)
	}
	now := time.Now().UTC()
	doc := exportMarkdown(prompt, sum, turns, now)
	if len(doc) > maxExportBytes {
		return h.notify(ctx, r, "This conversation is too long to send as a file (Telegram takes 50 MB at most). /reset starts afresh.")
	}
	n := 0
	for _, t := range turns {
		if t.IsSent() {
			n++
		}
	}
	name := fmt.Sprintf("conversation-%s.md", now.Format("2006-01-02-1504"))
	_, err = h.deps.Streamer.SendDocument(ctx, r.t, h.journal(r), reply.Document{
		Name: name, Data: []byte(doc), Caption: fmt.Sprintf("This conversation: %s, with the system prompt%s.", plural(int64(n), "message"), map[bool]string{true: " and the summary", false: ""}[sum.Text != ""]),
	})
	switch {
	case err == nil:
		if r.entry != 0 {
			if err := h.deps.Journal.RecordText(ctx, r.entry, inbox.Reply{Text: exportSent, Final: true, Plain: true}); err != nil {
				h.deps.Log.Warn("could not record a sent export", "chat_id", r.t.ChatID, "err", err)
			}
		}
		return done
	case errors.Is(err, reply.ErrBlocked):
		return done
	case ctx.Err() != nil:
		return left // not sent (or not known to be): after the restart, again
	case tg.Unknown(errors.Unwrap(err)):
		h.deps.Log.Warn("no answer to the export's send", "chat_id", r.t.ChatID, "err", err)
		return h.notify(ctx, r, "⚠️ Telegram did not answer while I sent the file, so it may or may not have arrived. If it did not, send /export again.")
	}
	h.deps.Log.Warn("could not send an export", "chat_id", r.t.ChatID, "err", err)
	return h.notify(ctx, r, "⚠️ Telegram refused the file. Please try /export again later.")
}

// exportMarkdown is the conversation as a Markdown document: the system prompt, the summary,
// then every turn with who wrote it and when, as stored (not as sent: no defusing).
func exportMarkdown(prompt string, sum history.Summary, turns []history.Turn, now time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Conversation\n\nExported %s UTC.\n\n", now.Format("2006-01-02 15:04"))
	sb.WriteString("## System prompt\n\n")
	if strings.TrimSpace(prompt) == "" {
		sb.WriteString("(none)\n\n")
	} else {
		sb.WriteString(prompt + "\n\n")
	}
	if sum.Text != "" {
		fmt.Fprintf(&sb, "## Summary\n\nWhat the model is told of the first %d messages (written %s UTC):\n\n%s\n\n",
			sum.Turns, sum.At.UTC().Format("2006-01-02 15:04"), sum.Text)
	}
	sb.WriteString("## Messages\n")
	if len(turns) == 0 {
		sb.WriteString("\n(none)\n")
	}
	for _, t := range turns {
		who := "Assistant"
		if t.Role == history.RoleUser {
			who = "User"
			if t.Author != "" {
				who = t.Author
			}
		}
		fmt.Fprintf(&sb, "\n### %s · %s\n\n", who, t.CreatedAt.UTC().Format("2006-01-02 15:04"))
		if q := t.Quote; q.Text != "" {
			to := "an earlier message"
			switch {
			case q.Bot:
				to = "the assistant"
			case q.Author != "":
				to = q.Author
			}
			fmt.Fprintf(&sb, "*In reply to %s:*\n\n", to)
			for line := range strings.SplitSeq(q.Text, "\n") {
				sb.WriteString("> " + line + "\n")
			}
			sb.WriteString("\n")
		}
		switch {
		case t.Audio.FileID != "" && t.Content == "":
			sb.WriteString("*(a voice message, not transcribed)*\n")
		case t.Audio.FileID != "":
			sb.WriteString("*(a voice message:)* " + t.Content + "\n")
		default:
			sb.WriteString(t.Content + "\n")
		}
		if n := t.ImageCount(); n > 0 {
			fmt.Fprintf(&sb, "\n*(%s)*\n", plural(int64(n), "picture"))
		}
		if t.Status == history.StatusCut {
			sb.WriteString("\n*(this answer was cut off)*\n")
		}
	}
	return sb.String()
}
