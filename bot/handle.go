package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/history"
)

type command struct {
	name, short string
}

// commands is the command menu and the /help text, in order.
var commands = []command{
	{"start", "what this bot is"},
	{"help", "list the commands"},
	{"system", "show or set the system prompt: /system <text>, /system default"},
	{"reset", "forget this conversation's history (the system prompt stays)"},
	{"retry", "answer your last message again"},
	{"stop", "stop the reply that is streaming now"},
}

const refusalEvery = time.Hour

// req is one update being handled in a conversation.
type req struct {
	update int64 // the inbox entry to finish when done
	k      history.Key
	t      target
}

// handleUpdate routes one update. It never blocks on a reply: answers are queued per
// conversation, and the queued job finishes the update in the inbox when it is done.
func (b *Bot) handleUpdate(ctx context.Context, u *models.Update) {
	queued := false
	switch {
	case u.Message != nil:
		queued = b.onMessage(ctx, u.ID, u.Message)
	case u.CallbackQuery != nil:
		b.onCallback(ctx, u.CallbackQuery)
	}
	// Edited messages and everything else are ignored on purpose: an edit does not re-ask.
	if !queued {
		b.finish(ctx, u.ID, history.Key{}, nil)
	}
}

// finish marks an update handled, storing the answer with it (in one transaction) if there is one.
func (b *Bot) finish(ctx context.Context, update int64, k history.Key, answer *history.Turn) {
	if err := b.store.Finish(context.WithoutCancel(ctx), update, k, answer); err != nil {
		b.log.Error("could not finish an update in the inbox", "update_id", update, "err", err)
	}
}

// enqueue runs fn in conversation r.k after what is already queued there. A job that has not
// started when the bot shuts down is left in the inbox, to run after the restart.
func (b *Bot) enqueue(ctx context.Context, r req, reply bool, fn func(ctx context.Context, r req)) bool {
	return b.queue.submit(ctx, r.k, job{reply: reply, run: func(ctx context.Context) {
		if b.closing.Load() {
			return
		}
		fn(ctx, r)
	}})
}

// keyOf is the conversation a message belongs to: its chat, or its topic in a chat with topics.
func keyOf(m *models.Message) history.Key {
	k := history.Key{ChatID: m.Chat.ID}
	if m.IsTopicMessage {
		k.ThreadID = int64(m.MessageThreadID)
	}
	return k
}

func isGroup(c models.Chat) bool { return c.Type != models.ChatTypePrivate }

func (b *Bot) allowed(userID, chatID int64) bool {
	return b.cfg.AllowAll || slices.Contains(b.cfg.AllowedUsers, userID) || slices.Contains(b.cfg.AllowedChats, chatID)
}

// onMessage handles a message; it reports whether it queued a job that finishes the update.
func (b *Bot) onMessage(ctx context.Context, update int64, m *models.Message) bool {
	if m.From == nil || m.From.IsBot {
		return false
	}
	group := isGroup(m.Chat)
	cmd, arg, isCmd, forUs := b.parseCommand(m.Text)
	if isCmd && !forUs {
		return false // a command for another bot in the group
	}
	if group && !isCmd && !b.addressed(m) {
		return false
	}
	if !b.allowed(m.From.ID, m.Chat.ID) {
		b.refuse(ctx, m)
		return false
	}
	r := req{update: update, k: keyOf(m), t: target{chatID: m.Chat.ID, threadID: threadOf(m), replyTo: m.ID, group: group}}
	t := r.t
	if isCmd {
		return b.onCommand(ctx, r, cmd, arg)
	}
	text := m.Text
	if text == "" {
		what := "media"
		switch {
		case len(m.Photo) > 0:
			what = "a photo"
		case m.Sticker != nil:
			what = "a sticker"
		case m.Voice != nil:
			what = "a voice message"
		case m.Document != nil:
			what = "a file"
		}
		b.notify(ctx, t, "I read text only, so I can't use "+what+". Please send your question as text.")
		return false
	}
	if group {
		text = strings.TrimSpace(strings.ReplaceAll(text, "@"+b.me.Username, ""))
		if text == "" {
			b.notify(ctx, t, "Yes? Mention me with a question, or reply to one of my messages.")
			return false
		}
	}
	prompt := b.prompt(ctx, r.k)
	if n := utf8.RuneCountInString(prompt) + utf8.RuneCountInString(text); n > b.cfg.ContextBudget {
		b.notify(ctx, t, fmt.Sprintf("That message is too long for the model: with the system prompt it is %d characters, and the limit is %d. Please send a shorter one.", n, b.cfg.ContextBudget))
		return false
	}
	author := ""
	if group {
		author = displayName(m.From)
	}
	turn := history.Turn{Role: history.RoleUser, Content: text, Author: author, MessageID: int64(m.ID)}
	if b.enqueue(ctx, r, true, func(ctx context.Context, r req) { b.answer(ctx, r, turn) }) {
		// The user sees the message was received while the previous reply still streams.
		b.react(ctx, t.chatID, m.ID, "👀")
	}
	return true
}

// addressed reports whether a group message is for the bot: it mentions it or replies to it.
func (b *Bot) addressed(m *models.Message) bool {
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.ID == b.me.ID {
		return true
	}
	return b.me.Username != "" && strings.Contains(strings.ToLower(m.Text), "@"+strings.ToLower(b.me.Username))
}

// parseCommand splits "/cmd@bot arg". forUs is false for a command addressed to another bot.
func (b *Bot) parseCommand(text string) (cmd, arg string, isCmd, forUs bool) {
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
	forUs = !hasAt || strings.EqualFold(at, b.me.Username)
	return strings.ToLower(cmd), strings.TrimSpace(arg), true, forUs
}

func threadOf(m *models.Message) int {
	if m.IsTopicMessage {
		return m.MessageThreadID
	}
	return 0
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

func (b *Bot) refuse(ctx context.Context, m *models.Message) {
	b.mu.Lock()
	last, seen := b.refused[m.Chat.ID]
	now := time.Now()
	if seen && now.Sub(last) < refusalEvery {
		b.mu.Unlock()
		return
	}
	b.refused[m.Chat.ID] = now
	b.mu.Unlock()

	text := fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d: the owner can allow you by adding it to ALLOWED_USERS.", m.From.ID)
	if isGroup(m.Chat) {
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d and this chat's id is %d: the owner can allow you with ALLOWED_USERS, or this whole chat with ALLOWED_CHATS.", m.From.ID, m.Chat.ID)
	}
	b.log.Info("refused a stranger", "user_id", m.From.ID, "chat_id", m.Chat.ID)
	b.notify(ctx, target{chatID: m.Chat.ID, threadID: threadOf(m), replyTo: m.ID, group: isGroup(m.Chat)}, text)
}

// onCommand runs a command; it reports whether it queued a job that finishes the update.
func (b *Bot) onCommand(ctx context.Context, r req, cmd, arg string) bool {
	switch cmd {
	case "start", "help":
		b.notify(ctx, r.t, b.helpText(cmd == "start"))
	case "stop":
		if !b.stop(r.k) {
			b.notify(ctx, r.t, "Nothing is streaming right now.")
		}
	case "system", "reset":
		// These change the conversation, so they wait for the reply in progress, in order.
		b.enqueue(ctx, r, false, func(ctx context.Context, r req) {
			if cmd == "system" {
				b.cmdSystem(ctx, r.k, r.t, arg)
			} else {
				b.cmdReset(ctx, r.k, r.t)
			}
			b.finish(ctx, r.update, r.k, nil)
		})
		return true
	case "retry":
		b.enqueue(ctx, r, true, b.cmdRetry)
		return true
	default:
		b.notify(ctx, r.t, "I don't know /"+cmd+". Send /help to see what I can do.")
	}
	return false
}

func (b *Bot) helpText(start bool) string {
	var sb strings.Builder
	if start {
		sb.WriteString("Hi! I pass your messages to a language model and show its answer as it is written. ")
		sb.WriteString("I remember this conversation until you /reset it.\n\n")
	}
	sb.WriteString("Commands:\n")
	for _, c := range commands {
		fmt.Fprintf(&sb, "/%s: %s\n", c.name, c.short)
	}
	sb.WriteString("\nIn groups, mention me or reply to one of my messages.")
	return sb.String()
}

// prompt is the conversation's system prompt, or the configured default.
func (b *Bot) prompt(ctx context.Context, k history.Key) string {
	p, ok, err := b.store.SystemPrompt(ctx, k)
	if err != nil {
		b.log.Error("load system prompt", "chat_id", k.ChatID, "err", err)
	}
	if !ok || err != nil {
		return b.cfg.DefaultPrompt
	}
	return p
}

func (b *Bot) cmdSystem(ctx context.Context, k history.Key, t target, arg string) {
	switch {
	case arg == "":
		p, ok, err := b.store.SystemPrompt(ctx, k)
		if err != nil {
			b.storeFailed(ctx, t, "read the system prompt", err)
			return
		}
		if !ok {
			b.notify(ctx, t, "The system prompt is the default:\n\n"+b.cfg.DefaultPrompt+"\n\nSet your own with /system <text>.")
			return
		}
		b.notify(ctx, t, "The system prompt is:\n\n"+p+"\n\nChange it with /system <text>, or go back to the default with /system default.")
	case arg == "default":
		if err := b.store.ClearSystemPrompt(ctx, k); err != nil {
			b.storeFailed(ctx, t, "reset the system prompt", err)
			return
		}
		b.notify(ctx, t, "The system prompt is back to the default.")
	default:
		if n := utf8.RuneCountInString(arg); n > b.cfg.ContextBudget/2 {
			b.notify(ctx, t, fmt.Sprintf("That system prompt is %d characters; it can take at most half of the model's %d, so there is room for the conversation.", n, b.cfg.ContextBudget))
			return
		}
		if err := b.store.SetSystemPrompt(ctx, k, arg); err != nil {
			b.storeFailed(ctx, t, "save the system prompt", err)
			return
		}
		b.notify(ctx, t, "System prompt set. It applies from your next message.")
	}
}

func (b *Bot) cmdReset(ctx context.Context, k history.Key, t target) {
	if err := b.store.Reset(ctx, k); err != nil {
		b.storeFailed(ctx, t, "clear the history", err)
		return
	}
	b.notify(ctx, t, "Done: I forgot this conversation. The system prompt stays.")
}

func (b *Bot) cmdRetry(ctx context.Context, r req) {
	last, err := b.store.Rewind(ctx, r.k)
	if errors.Is(err, history.ErrNotFound) {
		b.notify(ctx, r.t, "There is no message of yours to answer again.")
		b.finish(ctx, r.update, r.k, nil)
		return
	}
	if err != nil {
		b.storeFailed(ctx, r.t, "load your last message", err)
		b.finish(ctx, r.update, r.k, nil)
		return
	}
	if last.MessageID != 0 {
		r.t.replyTo = int(last.MessageID)
	}
	b.respond(ctx, r)
}

func (b *Bot) storeFailed(ctx context.Context, t target, what string, err error) {
	b.log.Error("store failed", "what", what, "chat_id", t.chatID, "err", err)
	b.notify(ctx, t, "Sorry, I could not "+what+": the bot's database failed. Please try again later.")
}

// answer stores a user's message and answers it. A message stored before a crash is not stored
// again: Append ignores a Telegram message it already has.
func (b *Bot) answer(ctx context.Context, r req, turn history.Turn) {
	if _, _, err := b.store.Append(ctx, r.k, turn); err != nil {
		b.storeFailed(ctx, r.t, "save your message", err)
		b.finish(ctx, r.update, r.k, nil)
		return
	}
	b.respond(ctx, r)
}

// respond asks the model about the conversation as stored, shows the answer live, and stores it
// while finishing the update.
func (b *Bot) respond(ctx context.Context, r req) {
	k, t := r.k, r.t
	var answer *history.Turn
	defer func() { b.finish(ctx, r.update, k, answer) }()

	prompt := b.prompt(ctx, k)
	window, err := b.store.Window(ctx, k, b.cfg.ContextBudget, prompt)
	var tooLong *history.TooLongError
	if errors.As(err, &tooLong) {
		b.notify(ctx, t, fmt.Sprintf("That message is too long for the model: %d characters with the system prompt, and the limit is %d.", tooLong.Length, tooLong.Budget))
		return
	}
	if err != nil {
		b.storeFailed(ctx, t, "load the conversation", err)
		return
	}
	if len(window) == 0 {
		b.notify(ctx, t, "There is nothing to answer.")
		return
	}
	msgs := make([]aura.Message, 0, len(window)+1)
	msgs = append(msgs, aura.Message{Role: "system", Content: prompt})
	for _, turn := range window {
		content := turn.Content
		switch {
		case turn.Role == history.RoleUser && turn.Author != "":
			content = turn.Author + ": " + content
		case turn.Status == history.StatusCut:
			content += "\n\n[this answer was cut off]"
		}
		msgs = append(msgs, aura.Message{Role: string(turn.Role), Content: content})
	}

	out := b.stream(ctx, r, msgs)
	if out.text == "" {
		return
	}
	status := history.StatusDone
	if out.err != nil {
		status = history.StatusCut
	}
	answer = &history.Turn{Role: history.RoleAssistant, Content: out.text, MessageID: int64(out.firstID), Status: status}
}

// notify sends a short plain message in reply to the user's message.
func (b *Bot) notify(ctx context.Context, t target, text string) {
	ctx = context.WithoutCancel(ctx)
	if err := b.pace.wait(ctx, t.chatID); err != nil {
		return
	}
	_, err := b.api.SendMessage(ctx, &tgbot.SendMessageParams{
		ChatID:          t.chatID,
		MessageThreadID: t.threadID,
		Text:            text,
		ReplyParameters: replyTo(t.replyTo),
	})
	b.observe(t.chatID, err)
	if err != nil {
		b.log.Warn("sendMessage failed", "chat_id", t.chatID, "err", b.scrub(err))
	}
}

func (b *Bot) react(ctx context.Context, chatID int64, msgID int, emoji string) {
	_, err := b.api.SetMessageReaction(context.WithoutCancel(ctx), &tgbot.SetMessageReactionParams{
		ChatID:    chatID,
		MessageID: msgID,
		Reaction:  []models.ReactionType{{Type: models.ReactionTypeTypeEmoji, ReactionTypeEmoji: &models.ReactionTypeEmoji{Type: models.ReactionTypeTypeEmoji, Emoji: emoji}}},
	})
	if err != nil {
		b.log.Debug("setMessageReaction failed", "chat_id", chatID, "err", b.scrub(err))
	}
}

func replyTo(id int) *models.ReplyParameters {
	if id == 0 {
		return nil
	}
	return &models.ReplyParameters{MessageID: id, AllowSendingWithoutReply: true}
}

// observe feeds the outcome of a send or edit to the pacer.
func (b *Bot) observe(chatID int64, err error) {
	var tm *tgbot.TooManyRequestsError
	switch {
	case err == nil:
		b.pace.ok(chatID)
	case errors.As(err, &tm):
		b.pace.tooMany(chatID, time.Duration(max(tm.RetryAfter, 1))*time.Second)
		b.log.Warn("telegram flood limit", "chat_id", chatID, "retry_after", tm.RetryAfter)
	}
}

func (b *Bot) onCallback(ctx context.Context, q *models.CallbackQuery) {
	answer := func(text string) {
		_, _ = b.api.AnswerCallbackQuery(context.WithoutCancel(ctx), &tgbot.AnswerCallbackQueryParams{CallbackQueryID: q.ID, Text: text})
	}
	msg := q.Message.Message
	if im := q.Message.InaccessibleMessage; msg == nil && im != nil {
		// An old message (Telegram no longer sends its content): its chat is enough.
		msg = &models.Message{ID: im.MessageID, Chat: im.Chat}
	}
	if msg == nil {
		answer("")
		return
	}
	if !b.allowed(q.From.ID, msg.Chat.ID) {
		answer("This bot is private. Your user id is " + strconv.FormatInt(q.From.ID, 10) + ".")
		return
	}
	if q.Data != callbackStop {
		answer("")
		return
	}
	if b.stop(keyOf(msg)) {
		answer("Stopped.")
		return
	}
	answer("Nothing is streaming.")
}
