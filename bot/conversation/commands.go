package conversation

import (
	"cmp"
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

// Command is one of the bot's commands, for the menu and /help.
type Command struct{ Name, Short string }

// Commands is the command menu and the /help text, in order.
func Commands() []Command {
	return []Command{
		{"start", "what this bot is"},
		{"help", "list the commands"},
		{"system", "show or set the system prompt: /system <text>, /system default"},
		{"reset", "forget this conversation's history and its summary (the system prompt stays)"},
		{"retry", "answer your last message again"},
		{"model", "show or choose the model: /model, /model <name>"},
		{"stop", "stop the reply that is streaming now"},
		{"memory", "show what I remember of the older part of this conversation"},
		{"usage", "show your token usage today and this month: /usage, /usage all (owners)"},
		{"export", "send this conversation as a Markdown file"},
	}
}

// onCommand runs a command; it reports whether it queued a job that owns the update.
func (h *Handler) onCommand(ctx context.Context, r req, cmd, arg string) bool {
	switch cmd {
	case "start", "help":
		return h.tell(ctx, r, h.helpText(cmd == "start"))
	case "stop": // finished at once; a refusal is a notice of its own
		h.stopAs(ctx, r, 0, func(ctx context.Context, text string) {
			if text != replyStopped { // a stopped reply says so itself
				h.tell(ctx, r, text)
			}
		})
		return false
	}
	// These wait for the reply in progress. A steward is checked before anything else is asked.
	run := map[string]func(ctx context.Context, r req, arg string) result{
		"system": h.cmdSystem, "reset": h.cmdReset, "model": h.cmdModel, "retry": h.cmdRetry,
		"memory": h.cmdMemory, "usage": h.cmdUsage, "export": h.cmdExport,
	}[cmd]
	if run == nil {
		return h.tell(ctx, r, "I don't know /"+cmd+". Send /help to see what I can do.")
	}
	_, taken := h.admit(ctx, r, cmd == "retry", func(ctx context.Context, r req) result {
		if steerCommand(cmd, arg) && !h.steers(ctx, r, 0) {
			return h.notify(ctx, r, notSteward[cmd])
		}
		return run(ctx, r, arg)
	})
	return taken
}

// notSteward is what a group member who may not steer the conversation is told, per command.
var notSteward = map[string]string{
	"system": "Only the bot's allowed users and this group's administrators can change its system prompt.",
	"reset":  "Only the bot's allowed users and this group's administrators can clear its history.",
	"retry":  "Only the bot's allowed users and this group's administrators can use /retry here: it replaces the last answer for everyone.",
	"model":  "Only the bot's allowed users and this group's administrators can see or change its model.",
	"export": "Only the bot's allowed users and this group's administrators can export this group's conversation.",
}

func (h *Handler) helpText(start bool) string {
	var sb strings.Builder
	if start {
		sb.WriteString("Hi! I pass your messages to a language model and show its answer as it is written. ")
		sb.WriteString("I remember this conversation until you /reset it.\n\n")
	}
	sb.WriteString("Commands:\n")
	for _, c := range Commands() {
		fmt.Fprintf(&sb, "/%s: %s\n", c.Name, c.Short)
	}
	sb.WriteString("\nIn groups, mention me or reply to one of my messages.")
	return sb.String()
}

func (h *Handler) prompt(ctx context.Context, k history.Key) string {
	p, ok, err := h.deps.Store.SystemPrompt(ctx, k)
	if err != nil {
		h.deps.Log.Error("load system prompt", "chat_id", k.ChatID, "err", err)
	}
	if !ok || err != nil {
		return h.cfg.DefaultPrompt
	}
	return p
}

func (h *Handler) cmdSystem(ctx context.Context, r req, arg string) result {
	switch arg {
	case "":
		p, ok, err := h.deps.Store.SystemPrompt(ctx, r.k)
		if err != nil {
			return h.storeFailed(ctx, r, "read the system prompt", err)
		}
		seen := h.coverage(ctx, r.k, cmp.Or(p, h.cfg.DefaultPrompt))
		if !ok {
			return h.notify(ctx, r, "The system prompt is the default:\n\n"+h.cfg.DefaultPrompt+"\n\nSet your own with /system <text>."+seen)
		}
		return h.notify(ctx, r, "The system prompt is:\n\n"+p+"\n\nChange it with /system <text>, or go back to the default with /system default."+seen)
	case "default":
		if err := h.deps.Store.ClearSystemPrompt(ctx, r.k); err != nil {
			return h.storeFailed(ctx, r, "reset the system prompt", err)
		}
		return h.notify(ctx, r, "The system prompt is back to the default.")
	}
	if msg := PromptTooLong(h.cfg.Budget, arg); msg != "" {
		return h.notify(ctx, r, msg)
	}
	if err := h.deps.Store.SetSystemPrompt(ctx, r.k, arg); err != nil {
		return h.storeFailed(ctx, r, "save the system prompt", err)
	}
	return h.notify(ctx, r, "System prompt set. It applies from your next message.")
}

// coverage is a line that says how much of the conversation the next request carries, or "".
func (h *Handler) coverage(ctx context.Context, k history.Key, prompt string) string {
	rep, err := h.deps.Store.Report(ctx, k, h.cfg.Budget, prompt)
	in, total, held := rep.InWindow, rep.Total, rep.Summarized
	const last = "\n\nThe model sees the last %d of the %d messages of this conversation with your next message (fewer if that is long)"
	switch {
	case err != nil || total == 0:
		return ""
	case in >= total:
		return fmt.Sprintf("\n\nThe model sees all %d messages of this conversation.", total)
	case held > 0 && in+held >= total:
		return fmt.Sprintf(last+", and a summary of the %d before them (/memory shows it).", in, total, held)
	case held > 0:
		return fmt.Sprintf(last+", and a summary of the first %d (/memory shows it); the %d between them no longer fit its context window and are not in the summary yet.", in, total, held, total-in-held)
	case in == 0:
		return fmt.Sprintf("\n\nThe model sees none of the %d messages of this conversation with your next message: the last one alone fills its context window. /reset starts afresh.", total)
	case h.cfg.Budget.Summaries:
		return fmt.Sprintf(last+": older ones no longer fit its context window, and are summarised in the background (/memory shows the summary once there is one). /reset starts afresh.", in, total)
	}
	return fmt.Sprintf(last+": older ones no longer fit its context window. /reset starts afresh.", in, total)
}

func (h *Handler) cmdReset(ctx context.Context, r req, _ string) result {
	if err := h.deps.Store.Reset(ctx, r.k); err != nil {
		return h.storeFailed(ctx, r, "clear the history", err)
	}
	h.noteOutcome(r.k, nil, nil)
	return h.notify(ctx, r, "Done: I forgot this conversation and its summary. The system prompt stays.")
}

func (h *Handler) cmdRetry(ctx context.Context, r req, _ string) result {
	if res, ok := h.atCap(ctx, r); ok {
		return res
	}
	last, err := h.deps.Store.Rewind(ctx, r.k)
	if errors.Is(err, history.ErrNotFound) {
		return h.notify(ctx, r, "There is no message of yours to answer again.")
	}
	if err != nil {
		return h.storeFailed(ctx, r, "load your last message", err)
	}
	if last.MessageID != 0 {
		r.t.ReplyTo = int(last.MessageID)
	}
	prompt := h.prompt(ctx, r.k)
	var opt reply.Options
	if last.Untranscribed() { // a recording never heard: hear it now
		text, res, ok := h.transcribeTurn(ctx, r, prompt, last)
		if !ok {
			return res
		}
		opt.Prefix = transcriptPrefix(text)
	}
	return h.respond(ctx, r, prompt, opt)
}

// cmdMemory shows what the model is told of the turns it no longer sees.
func (h *Handler) cmdMemory(ctx context.Context, r req, _ string) result {
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

const (
	exportSent     = "📄 The conversation was sent as a Markdown file." // what the journal records once it is out
	maxExportBytes = 50 << 20
)

// cmdExport sends the conversation as a Markdown file, once per /export: the journal records it
// as a final plain text, which nothing resumes (a crash before the record sends it twice).
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

// exportMarkdown is the conversation as stored (not defused), as a Markdown document.
func exportMarkdown(prompt string, sum history.Summary, turns []history.Turn, now time.Time) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Conversation\n\nExported %s UTC.\n\n", now.Format("2006-01-02 15:04"))
	if strings.TrimSpace(prompt) == "" {
		prompt = "(none)"
	}
	sb.WriteString("## System prompt\n\n" + prompt + "\n\n")
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
			who = cmp.Or(t.Author, "User")
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
