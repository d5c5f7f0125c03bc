package conversation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"aurabot/bot/reply"
	"aurabot/history"
)

// Command is one of the bot's commands, for the menu and /help.
type Command struct {
	Name, Short string
}

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

// enqueue runs fn in conversation r.k after what is already queued there, under the runner
// (see run), whatever its sender has waiting (admit bounds that, for updates as they come). A
// job that has not started when the bot shuts down is left in the inbox, to run after the
// restart. It reports whether the job had to wait behind others.
func (h *Handler) enqueue(ctx context.Context, r req, isReply bool, fn func(ctx context.Context, r req) result) bool {
	return h.queue.submit(ctx, r.k, h.job(r, isReply, fn))
}

// job is fn as a job of r's conversation, under the runner, counted as its sender's.
func (h *Handler) job(r req, isReply bool, fn func(ctx context.Context, r req) result) job {
	return job{reply: isReply, user: r.from, run: func(ctx context.Context) { h.run(ctx, r, fn) }}
}

// tell answers r's message with a short notice. The notice is sent from the conversation's
// notice queue, never from the goroutine that takes updates: a chat under a Telegram penalty
// must not hold up the others. A sender who already has maxWaiting notices waiting gets no more
// (a flood of /help). It reports whether it took care of the update.
func (h *Handler) tell(ctx context.Context, r req, text string) bool {
	j := h.job(r, false, func(ctx context.Context, r req) result { return h.notify(ctx, r, text) })
	j.notice = true
	if isRecovered(ctx) {
		h.queue.submit(ctx, r.k, j)
		return true
	}
	_, ok, _ := h.queue.submitCapped(ctx, r.k, j)
	return ok
}

// onCommand runs a command; it reports whether it queued a job that finishes the update.
func (h *Handler) onCommand(ctx context.Context, r req, cmd, arg string) bool {
	switch cmd {
	case "start", "help":
		return h.tell(ctx, r, h.helpText(cmd == "start"))
	case "stop":
		// The update is finished at once; a refusal, if any, is a notice of its own.
		h.stopAs(ctx, r, 0, func(ctx context.Context, text string) {
			if text != replyStopped { // a stopped reply says so itself
				h.tell(ctx, r, text)
			}
		})
		return false
	case "system", "reset", "model", "retry", "memory", "usage", "export":
		// These change the conversation (or, /retry, answer in it), or show it as it stands
		// once the reply in progress is stored, so they wait for that reply, in order; in a
		// group some take a steward (see access.go), checked before anything else, the model
		// server included, is asked.
		_, taken := h.admit(ctx, r, cmd == "retry", func(ctx context.Context, r req) result {
			if steerCommand(cmd, arg) && !h.steers(ctx, r, 0) {
				return h.notify(ctx, r, notSteward[cmd])
			}
			switch cmd {
			case "system":
				return h.cmdSystem(ctx, r, arg)
			case "model":
				return h.cmdModel(ctx, r, arg)
			case "retry":
				return h.cmdRetry(ctx, r)
			case "memory":
				return h.cmdMemory(ctx, r)
			case "usage":
				return h.cmdUsage(ctx, r, arg)
			case "export":
				return h.cmdExport(ctx, r)
			}
			return h.cmdReset(ctx, r)
		})
		return taken
	}
	return h.tell(ctx, r, "I don't know /"+cmd+". Send /help to see what I can do.")
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

// prompt is the conversation's system prompt, or the configured default.
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
	k := r.k
	switch {
	case arg == "":
		p, ok, err := h.deps.Store.SystemPrompt(ctx, k)
		if err != nil {
			return h.storeFailed(ctx, r, "read the system prompt", err)
		}
		seen := h.coverage(ctx, r.k, cmp.Or(p, h.cfg.DefaultPrompt))
		if !ok {
			return h.notify(ctx, r, "The system prompt is the default:\n\n"+h.cfg.DefaultPrompt+"\n\nSet your own with /system <text>."+seen)
		}
		return h.notify(ctx, r, "The system prompt is:\n\n"+p+"\n\nChange it with /system <text>, or go back to the default with /system default."+seen)
	case arg == "default":
		if err := h.deps.Store.ClearSystemPrompt(ctx, k); err != nil {
			return h.storeFailed(ctx, r, "reset the system prompt", err)
		}
		return h.notify(ctx, r, "The system prompt is back to the default.")
	}
	if msg := PromptTooLong(h.cfg.Budget, arg); msg != "" {
		return h.notify(ctx, r, msg)
	}
	if err := h.deps.Store.SetSystemPrompt(ctx, k, arg); err != nil {
		return h.storeFailed(ctx, r, "save the system prompt", err)
	}
	return h.notify(ctx, r, "System prompt set. It applies from your next message.")
}

// PromptTooLong returns a notice if a system prompt would take more than half of what may be
// sent to the model (leaving too little room for the conversation), saying how long it may be;
// "" if it fits.
func PromptTooLong(b history.Budget, prompt string) string {
	half := b.PromptHalf()
	roomChars, roomTokens := half.Room(prompt)
	if roomChars >= 0 && roomTokens >= 0 {
		return ""
	}
	tokens := history.CountTokens(prompt)
	maxChars, maxTokens := math.MaxInt, math.MaxInt
	if half.Chars > 0 {
		maxChars = half.Chars
	}
	if half.Tokens > 0 {
		maxTokens = half.Tokens
	}
	return "That system prompt is " + size(utf8.RuneCountInString(prompt), tokens, maxTokens != math.MaxInt) +
		"; it may take at most half of what the model is sent, " + limit(maxChars, maxTokens) + ", so that there is room for the conversation."
}

// coverage says how much of the conversation the next request carries, as a line to add to a
// notice; "" when there is nothing or the store cannot tell. It is the window of that request
// (Store.Report walks as Request does), for a short next message.
func (h *Handler) coverage(ctx context.Context, k history.Key, prompt string) string {
	rep, err := h.deps.Store.Report(ctx, k, h.cfg.Budget, prompt)
	in, total, held := rep.InWindow, rep.Total, rep.Summarized
	switch {
	case err != nil || total == 0:
		return ""
	case in >= total:
		return fmt.Sprintf("\n\nThe model sees all %d messages of this conversation.", total)
	case held > 0 && in+held >= total:
		return fmt.Sprintf("\n\nThe model sees the last %d of the %d messages of this conversation with your next message (fewer if that is long), "+
			"and a summary of the %d before them (/memory shows it).", in, total, held)
	case held > 0:
		return fmt.Sprintf("\n\nThe model sees the last %d of the %d messages of this conversation with your next message (fewer if that is long), "+
			"and a summary of the first %d (/memory shows it); the %d between them no longer fit its context window and are not in the summary yet.", in, total, held, total-in-held)
	case in == 0:
		return fmt.Sprintf("\n\nThe model sees none of the %d messages of this conversation with your next message: the last one alone fills its context window. /reset starts afresh.", total)
	case h.cfg.Budget.Summaries:
		return fmt.Sprintf("\n\nThe model sees the last %d of the %d messages of this conversation with your next message (fewer if that is long): "+
			"older ones no longer fit its context window, and are summarised in the background (/memory shows the summary once there is one). /reset starts afresh.", in, total)
	}
	return fmt.Sprintf("\n\nThe model sees the last %d of the %d messages of this conversation with your next message (fewer if that is long): older ones no longer fit its context window. /reset starts afresh.", in, total)
}

func (h *Handler) cmdReset(ctx context.Context, r req) result {
	if err := h.deps.Store.Reset(ctx, r.k); err != nil {
		return h.storeFailed(ctx, r, "clear the history", err)
	}
	h.forget(r.k)
	return h.notify(ctx, r, "Done: I forgot this conversation and its summary. The system prompt stays.")
}

func (h *Handler) cmdRetry(ctx context.Context, r req) result {
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
	if last.Untranscribed() {
		// The recording was never heard (a failed transcription): hear it now.
		text, res, ok := h.transcribeTurn(ctx, r, prompt, last)
		if !ok {
			return res
		}
		return h.respondWith(ctx, r, prompt, reply.Options{Prefix: transcriptPrefix(text)})
	}
	return h.respond(ctx, r, prompt)
}

func (h *Handler) storeFailed(ctx context.Context, r req, what string, err error) result {
	h.deps.Log.Error("store failed", "what", what, "chat_id", r.t.ChatID, "err", err)
	return h.notify(ctx, r, "Sorry, I could not "+what+": the bot's database failed. Please try again later.")
}
