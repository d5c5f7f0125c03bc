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
	"aurabot/bot/render"
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

// tell answers r's message with a short notice and finishes the update. The notice is sent from
// the conversation's notice queue, never from the goroutine that takes updates: a chat under a
// Telegram penalty must not hold up the others. It reports true: the update is taken care of.
func (b *Bot) tell(ctx context.Context, r req, text string) bool {
	b.queue.submit(ctx, r.k, job{notice: true, run: func(ctx context.Context) {
		if b.closing.Load() {
			return // left in the inbox: told after the restart
		}
		b.notify(ctx, r.t, text)
		b.finish(ctx, r.update, r.k, nil)
	}})
	return true
}

// reqOf is the conversation and reply target of a message: its chat, or its topic in a chat
// with topics.
func reqOf(update int64, m *models.Message) req {
	r := req{update: update, k: history.Key{ChatID: m.Chat.ID}, t: target{chatID: m.Chat.ID, replyTo: m.ID, group: isGroup(m.Chat)}}
	if m.IsTopicMessage {
		r.k.ThreadID = int64(m.MessageThreadID)
		r.t.threadID = m.MessageThreadID
	}
	return r
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
	r := reqOf(update, m)
	if !b.allowed(m.From.ID, m.Chat.ID) {
		return b.refuse(ctx, r, m)
	}
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
		return b.tell(ctx, r, "I read text only, so I can't use "+what+". Please send your question as text.")
	}
	if group {
		text = strings.TrimSpace(b.mention.ReplaceAllString(text, ""))
		if text == "" {
			return b.tell(ctx, r, "Yes? Mention me with a question, or reply to one of my messages.")
		}
	}
	author := ""
	if group {
		author = displayName(m.From)
	}
	turn := history.Turn{Role: history.RoleUser, Content: text, Author: author, MessageID: int64(m.ID)}
	if b.enqueue(ctx, r, true, func(ctx context.Context, r req) { b.answer(ctx, r, turn) }) {
		// The user sees the message was received while the previous reply still streams.
		b.react(ctx, r.t.chatID, m.ID, "👀")
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

// refuse tells a stranger, at most once an hour per chat, how the owner can let them in. It
// reports whether it queued that notice (which finishes the update).
func (b *Bot) refuse(ctx context.Context, r req, m *models.Message) bool {
	b.mu.Lock()
	last, seen := b.refused[m.Chat.ID]
	now := time.Now()
	if seen && now.Sub(last) < refusalEvery {
		b.mu.Unlock()
		return false
	}
	b.refused[m.Chat.ID] = now
	b.mu.Unlock()

	text := fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d: the owner can allow you by adding it to ALLOWED_USERS.", m.From.ID)
	if isGroup(m.Chat) {
		text = fmt.Sprintf("Sorry, this bot is private. Your Telegram user id is %d and this chat's id is %d: the owner can allow you with ALLOWED_USERS, or this whole chat with ALLOWED_CHATS.", m.From.ID, m.Chat.ID)
	}
	b.log.Info("refused a stranger", "user_id", m.From.ID, "chat_id", m.Chat.ID)
	return b.tell(ctx, r, text)
}

// onCommand runs a command; it reports whether it queued a job that finishes the update.
func (b *Bot) onCommand(ctx context.Context, r req, cmd, arg string) bool {
	switch cmd {
	case "start", "help":
		return b.tell(ctx, r, b.helpText(cmd == "start"))
	case "stop":
		if !b.stop(r.k) {
			return b.tell(ctx, r, "Nothing is streaming right now.")
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
		return b.tell(ctx, r, "I don't know /"+cmd+". Send /help to see what I can do.")
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
	b.respond(ctx, r, b.prompt(ctx, r.k))
}

func (b *Bot) storeFailed(ctx context.Context, t target, what string, err error) {
	b.log.Error("store failed", "what", what, "chat_id", t.chatID, "err", err)
	b.notify(ctx, t, "Sorry, I could not "+what+": the bot's database failed. Please try again later.")
}

// answer stores a user's message and answers it. A message stored before a crash is not stored
// again: Append ignores a Telegram message it already has.
func (b *Bot) answer(ctx context.Context, r req, turn history.Turn) {
	// The prompt is read here, in turn, so that a /system queued before this message applies.
	prompt := b.prompt(ctx, r.k)
	if n := utf8.RuneCountInString(prompt) + utf8.RuneCountInString(turn.Content); n > b.cfg.ContextBudget {
		b.notify(ctx, r.t, fmt.Sprintf("That message is too long for the model: with the system prompt it is %d characters, and the limit is %d. Please send a shorter one.", n, b.cfg.ContextBudget))
		b.finish(ctx, r.update, r.k, nil)
		return
	}
	if _, _, err := b.store.Append(ctx, r.k, turn); err != nil {
		b.storeFailed(ctx, r.t, "save your message", err)
		b.finish(ctx, r.update, r.k, nil)
		return
	}
	b.respond(ctx, r, prompt)
}

// respond asks the model about the conversation as stored, shows the answer live, and stores it
// while finishing the update.
func (b *Bot) respond(ctx context.Context, r req, prompt string) {
	k, t := r.k, r.t
	var answer *history.Turn
	unfinished := false
	defer func() {
		if !unfinished {
			b.finish(ctx, r.update, k, answer)
		}
	}()

	window, err := b.store.Window(ctx, k, history.Budget{Chars: b.cfg.ContextBudget}, prompt)
	var tooLong *history.TooLongError
	if errors.As(err, &tooLong) {
		b.notify(ctx, t, fmt.Sprintf("That message is too long for the model: it is %d characters, and with the system prompt it may be at most %d.", tooLong.Chars, tooLong.MaxChars))
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
	if out.unfinished {
		unfinished = true // the restart shows the final text, and stores it
		return
	}
	if out.text == "" {
		return
	}
	status := history.StatusDone
	if out.err != nil {
		status = history.StatusCut
	}
	answer = &history.Turn{Role: history.RoleAssistant, Content: out.text, MessageID: int64(out.firstID), Status: status}
}

// notify sends a short plain message in reply to the user's message, through the same path as
// a reply's final text: Telegram penalties are waited out, other failures retried, but within
// the final context's bounds (a shutdown cuts it short).
func (b *Bot) notify(ctx context.Context, t target, text string) {
	fctx, cancel := finalContext(ctx)
	defer cancel()
	d := &display{b: b, t: t}
	if err := d.apply(fctx, []render.Message{{Text: text}}, true, false); err != nil {
		b.log.Warn("could not send a notice", "chat_id", t.chatID, "err", b.scrub(err))
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
	if b.stop(reqOf(0, msg).k) {
		answer("Stopped.")
		return
	}
	answer("Nothing is streaming.")
}
