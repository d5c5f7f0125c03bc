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

// cmdMemory shows the conversation's summary: what the model is told of the turns it no longer
// sees.
func (h *Handler) cmdMemory(ctx context.Context, r req) result {
	if !h.cfg.Budget.Summaries {
		return h.notify(ctx, r, "Summaries are off on this bot (SUMMARIES=off): when this conversation outgrows the model's context window, "+
			"its oldest messages are dropped. /system shows how much of it the model sees.")
	}
	sum, err := h.deps.Store.Summary(ctx, r.k)
	if err != nil {
		return h.storeFailed(ctx, r, "read the summary", err)
	}
	if sum.Text == "" {
		return h.notify(ctx, r, "There is no summary of this conversation yet. Once it outgrows the model's context window, "+
			"its oldest messages are summarised, and the summary is sent to the model in their place."+h.coverage(ctx, r.k, h.prompt(ctx, r.k)))
	}
	return h.notify(ctx, r, fmt.Sprintf("What the model is told of the first %d messages of this conversation, which it no longer sees "+
		"(a summary written %s UTC; /reset forgets it with the history):\n\n%s", sum.Turns, sum.At.UTC().Format("2 Jan 15:04"), sum.Text))
}

// maxUsageLines bounds the users /usage all lists.
const maxUsageLines = 50

// cmdUsage shows the sender's token usage today and this month (UTC), with the caps; "all"
// shows every user's, to the users named in ALLOWED_USERS.
func (h *Handler) cmdUsage(ctx context.Context, r req, arg string) result {
	now := time.Now().UTC()
	switch strings.ToLower(arg) {
	case "":
	case "all":
		if !h.named(r.from) {
			return h.notify(ctx, r, "Only the bot's owners (the users named in ALLOWED_USERS) can see everyone's usage. /usage shows yours.")
		}
		all, err := h.deps.Store.UsageAll(ctx, now)
		if err != nil {
			return h.storeFailed(ctx, r, "read the usage", err)
		}
		return h.notify(ctx, r, usageAllText(all, now))
	default:
		return h.notify(ctx, r, "Send /usage for your own figures, or /usage all for everyone's (the bot's owners only).")
	}
	u, err := h.deps.Store.UsageOf(ctx, r.from, now)
	if err != nil {
		return h.storeFailed(ctx, r, "read your usage", err)
	}
	var sb strings.Builder
	sb.WriteString("Your tokens (in + out), over every chat:\n")
	fmt.Fprintf(&sb, "Today (UTC): %s\n", usageLine(u.Day, u.DaySummaries))
	fmt.Fprintf(&sb, "This month: %s\n", usageLine(u.Month, u.MonthSummaries))
	if d := h.cfg.UserDailyTokens; d > 0 {
		fmt.Fprintf(&sb, "\nYou may use %s a day (%s left); it resets at midnight UTC, in %s.", thousands(d), thousands(max(d-u.Day.Total(), 0)), until(nextDay(now).Sub(now)))
	}
	if m := h.cfg.UserMonthlyTokens; m > 0 {
		fmt.Fprintf(&sb, "\nYou may use %s a month (%s left); it resets on %s, in %s.", thousands(m), thousands(max(m-u.Month.Total(), 0)), nextMonth(now).Format("2 January"), until(nextMonth(now).Sub(now)))
	}
	sb.WriteString("\n\nThe figures are the model server's count when it gives one, else the bot's own.")
	return h.notify(ctx, r, sb.String())
}

// usageLine is a period's figures: "1,234 in + 567 out = 1,801 (3 requests; 200 for summaries)".
func usageLine(t, summaries history.Tokens) string {
	s := fmt.Sprintf("%s in + %s out = %s (%s)", thousands(t.In), thousands(t.Out), thousands(t.Total()), plural(t.Requests, "request"))
	if summaries.Requests > 0 {
		s = strings.TrimSuffix(s, ")") + fmt.Sprintf("; %s of them for summaries)", thousands(summaries.Total()))
	}
	return s
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(n) + " " + what + "s"
}

// usageAllText lists every user's figures this month, the most first.
func usageAllText(all []history.UserUsage, now time.Time) string {
	if len(all) == 0 {
		return "Nobody has used the model this month."
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Tokens (in + out) by user, %s (UTC): today / this month\n", now.Format("January 2006"))
	var day, month history.Tokens
	for i, u := range all {
		day.In, day.Out, day.Requests = day.In+u.Day.In, day.Out+u.Day.Out, day.Requests+u.Day.Requests
		month.In, month.Out, month.Requests = month.In+u.Month.In, month.Out+u.Month.Out, month.Requests+u.Month.Requests
		if i >= maxUsageLines {
			continue
		}
		name := u.Name
		if name == "" {
			name = "user"
		}
		fmt.Fprintf(&sb, "\n%s (%d): %s / %s", name, u.User, thousands(u.Day.Total()), thousands(u.Month.Total()))
	}
	if len(all) > maxUsageLines {
		fmt.Fprintf(&sb, "\n… and %d more", len(all)-maxUsageLines)
	}
	fmt.Fprintf(&sb, "\n\nAll users: %s / %s (%s this month).", thousands(day.Total()), thousands(month.Total()), plural(month.Requests, "request"))
	return sb.String()
}

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
func (h *Handler) cmdExport(ctx context.Context, r req) result {
	if r.entry != 0 {
		if u, err := h.deps.Journal.Get(ctx, r.entry); err == nil && u.Reply.Final && u.Reply.Text == exportSent {
			return done // sent before a restart
		}
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
