package conversation

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/history"
)

// answer stores a user's message and answers it.
func (h *Handler) answer(ctx context.Context, r req, turn history.Turn) result {
	if res, over := h.atCap(ctx, r); over {
		return res // neither stored nor answered
	}
	prompt := h.prompt(ctx, r.k) // read in turn: a /system queued before this message applies
	turn = h.withoutRedundantQuote(ctx, r, turn)
	r.quoted = 0 // looked at: store need not again
	if msg := h.tooLong(prompt, turn); msg != "" {
		return h.notify(ctx, r, msg)
	}
	if _, res, ok := h.store(ctx, r, turn); !ok {
		return res
	}
	h.settleAlbum(ctx, r) // an album is one stored turn now: only its first photo may come back
	return h.respond(ctx, r, prompt, reply.Options{})
}

// store appends t to r's conversation; when it cannot (!ok), res is what became of the update.
func (h *Handler) store(ctx context.Context, r req, t history.Turn) (stored history.Turn, res result, ok bool) {
	t = h.withoutRedundantQuote(ctx, r, t)
	if err := h.retryStore(ctx, r, func(ctx context.Context) (err error) {
		stored, _, err = h.deps.Store.Append(ctx, r.k, t) // stored before a crash: that turn
		return err
	}); err != nil {
		return stored, h.storeFailed(ctx, r, "save your message", err), false
	}
	return stored, done, true
}

// storeAnswer stores an answer shown as the reply to r: cut unless complete.
func (h *Handler) storeAnswer(ctx context.Context, r req, text string, firstID int, complete bool) error {
	status := history.StatusCut
	if complete {
		status = history.StatusDone
	}
	t := history.Turn{Role: history.RoleAssistant, Content: text, MessageID: int64(firstID), Status: status, Entry: r.entry}
	return h.retryStore(ctx, r, func(ctx context.Context) error {
		_, _, err := h.deps.Store.Append(ctx, r.k, t)
		return err
	})
}

// respond asks the model about the conversation as stored, shows the answer live, and stores it.
func (h *Handler) respond(ctx context.Context, r req, prompt string, opt reply.Options) result {
	request, err := h.deps.Store.Request(ctx, r.k, h.cfg.Budget, prompt)
	window := request.Turns
	var long *history.TooLongError
	switch {
	case errors.As(err, &long):
		return h.notify(ctx, r, tooLongNotice(long))
	case err != nil:
		return h.storeFailed(ctx, r, "load the conversation", err)
	case len(window) == 0:
		return h.notify(ctx, r, "There is nothing to answer.")
	}
	model := h.model(ctx, r.k)
	// Pictures go only to a model that can see them: the newest turn's are refused, older ones left out.
	blind := h.cfg.TextOnly
	if !blind && hasImages(window) {
		if msg := h.cannotSee(ctx, model); msg != "" {
			if len(window[len(window)-1].Images) > 0 {
				return h.notify(ctx, r, msg)
			}
			blind = true
		}
	}
	msgs, images := requestMessages(request.Lead, window, blind)
	ids := make([]int64, len(window))
	for i, t := range window {
		ids[i] = t.ID
	}
	opt.Notice = func(err error) (string, bool) {
		if images == 0 && h.repeated(r.k, err, ids) {
			return repeatedNotice(err), false
		}
		if line := imagesRefused(err); images > 0 && line != "" {
			return line, false
		}
		return notice(err)
	}
	counted := h.cfg.Budget
	if blind {
		counted.ImageTokens = 0 // the pictures are not sent
	}
	estimate := counted.RequestTokens(request.Lead, window)
	var used atomic.Pointer[aura.Usage]
	onUsage := func(u aura.Usage) {
		used.Store(&u)
		// Pictures count a guess (AURA_IMAGE_TOKENS): only a request without any is checked.
		if h.cfg.Budget.Tokens > 0 && !hasImages(window) {
			h.usage.check(ctx, h.deps.Log, model, estimate, len(msgs), u)
		}
	}
	defer h.summarizeLater(ctx, r, model, prompt, request)() // asked for once the answer has ended

	start := time.Now()
	h.deps.Metrics.ReplyStarted()
	started := func(c reply.Control) {
		h.mu.Lock()
		h.active[r.k] = &activeReply{update: r.entry, asker: r.from, stop: c.Stop, draft: c.DraftID}
		h.mu.Unlock()
	}
	out := h.deps.Streamer.StreamWith(ctx, r.t, h.journal(r), stopData(r.entry), started,
		func(ctx context.Context) iter.Seq2[reply.Chunk, error] {
			return replyChunks(h.deps.Model.Chat(ctx, model, msgs), onUsage)
		}, opt)
	h.mu.Lock()
	if a := h.active[r.k]; a != nil && a.update == r.entry {
		delete(h.active, r.k)
	}
	h.mu.Unlock()
	h.ended(r, out, time.Since(start))
	h.noteOutcome(r.k, out.Err, ids)
	h.countUsage(ctx, r, history.UsageChat, used.Load(), estimate, out.Text, out.Text != "" || out.Err == nil)

	// Stored even when the reply is not final yet: the next turn comes after it.
	if _, complete := notice(out.Err); out.Text != "" && h.storeAnswer(ctx, r, out.Text, out.FirstID, complete) != nil {
		return left // the restart stores it, from the journal
	}
	if out.Unfinished {
		return unfinished
	}
	return done
}

// requestMessages is what the model is sent for a window, its pictures (images) unless blind.
func requestMessages(lead string, window []history.Turn, blind bool) (msgs []aura.Message, images int) {
	msgs = append(make([]aura.Message, 0, len(window)+1), aura.Message{Role: aura.RoleSystem, Content: history.Defuse(lead)})
	for _, turn := range window {
		if !turn.IsSent() {
			continue // a voice message not heard yet: nothing to send
		}
		m := aura.Message{Role: string(turn.Role), Content: turn.Sent()}
		if !blind {
			for _, im := range turn.Images {
				m.Images = append(m.Images, aura.Image{MIME: im.MIME, Data: im.Data})
			}
		}
		images += len(m.Images)
		msgs = append(msgs, m)
	}
	return msgs, images
}

// ended records how a reply ended, in the metrics and in one log line. It never logs the text.
func (h *Handler) ended(r req, out reply.Outcome, took time.Duration) {
	result, failed := replyResult(out)
	kind := ""
	if result == "model" {
		kind = modelFailure(out.Err).Kind
	}
	first := out.FirstText
	if first == 0 && out.Text != "" {
		first = took // nothing was shown while streaming: the final message is the first text
	}
	h.deps.Metrics.ReplyEnded(result, failed, kind, took, first)
	attrs := []any{
		"chat_id", r.k.ChatID, "thread_id", r.k.ThreadID,
		"duration", took.Round(time.Millisecond), "chars", utf8.RuneCountInString(out.Text), "edits", out.Edits,
		"outcome", result,
	}
	if out.Err != nil {
		attrs = append(attrs, "err", out.Err)
	}
	h.deps.Log.Info("reply", attrs...)
	var p *reply.PanicError
	if errors.As(out.Err, &p) {
		h.deps.Log.Error("panic while streaming a reply", "entry", r.entry, "chat_id", r.k.ChatID, "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
	}
}

func replyResult(out reply.Outcome) (string, bool) {
	switch {
	case errors.Is(out.Err, reply.ErrBlocked):
		return "blocked", true
	case errors.Is(out.Err, reply.ErrStopped):
		return "stopped", false
	case errors.Is(out.Err, reply.ErrShutdown):
		return "interrupted", false
	case errors.Is(out.Err, reply.ErrTooLong), errors.Is(out.Err, aura.ErrOutputLimit):
		return "done", false
	case out.Err != nil:
		return "model", true
	case out.Text == "":
		return "empty", true
	}
	return "done", false
}

// replyChunks is a model's stream as the reply shows it; the server's count goes to onUsage.
func replyChunks(chunks iter.Seq2[aura.Chunk, error], onUsage func(aura.Usage)) iter.Seq2[reply.Chunk, error] {
	return func(yield func(reply.Chunk, error) bool) {
		for c, err := range chunks {
			if err != nil {
				yield(reply.Chunk{}, err)
				return
			}
			if c.Usage != nil && onUsage != nil {
				onUsage(*c.Usage)
			}
			if c.Text == "" && c.Thinking == "" {
				continue
			}
			if !yield(reply.Chunk{Text: c.Text, Thinking: c.Thinking}, nil) {
				return
			}
		}
	}
}

// tooLong is a notice if turn (images at Budget.ImageTokens) cannot fit with prompt even alone.
func (h *Handler) tooLong(prompt string, t history.Turn) string {
	b, sent := h.cfg.Budget, t.Sent()
	if n := len(t.Images) * b.ImageTokens; n > 0 && b.Tokens > 0 {
		if b.Tokens -= n; b.Tokens <= max(b.ReserveTokens, 0) {
			return "That picture cannot be sent: with the system prompt it takes more of the model's context than there is."
		}
	}
	roomChars, roomTokens := b.Room(prompt)
	if within(sent, roomChars, roomTokens) {
		return ""
	}
	return tooLongNotice(&history.TooLongError{Chars: utf8.RuneCountInString(sent), MaxChars: roomChars, Tokens: history.CountTokens(sent), MaxTokens: roomTokens})
}

// within reports whether s has at most chars characters and tokens tokens (MaxInt: no bound).
func within(s string, chars, tokens int) bool {
	return utf8.RuneCountInString(s) <= chars && (tokens == math.MaxInt || history.CountTokens(s) <= tokens)
}

func tooLongNotice(e *history.TooLongError) string {
	if e.MaxChars <= 0 || e.MaxTokens <= 0 {
		return "That message cannot be sent: the system prompt leaves the model no room for it. Make the prompt shorter with /system, or go back to the default with /system default."
	}
	return "That message is too long for the model: it is " + size(e.Chars, e.Tokens, e.MaxTokens != math.MaxInt) +
		", and with the system prompt it may be at most " + limit(e.MaxChars, e.MaxTokens) + ". Please send a shorter one."
}

// PromptTooLong is a notice if a system prompt takes more than half of what may be sent.
func PromptTooLong(b history.Budget, prompt string) string {
	half := b.PromptHalf()
	if roomChars, roomTokens := half.Room(prompt); roomChars >= 0 && roomTokens >= 0 {
		return ""
	}
	maxChars, maxTokens := math.MaxInt, math.MaxInt
	if half.Chars > 0 {
		maxChars = half.Chars
	}
	if half.Tokens > 0 {
		maxTokens = half.Tokens
	}
	return "That system prompt is " + size(utf8.RuneCountInString(prompt), history.CountTokens(prompt), maxTokens != math.MaxInt) +
		"; it may take at most half of what the model is sent, " + limit(maxChars, maxTokens) + ", so that there is room for the conversation."
}

func size(chars, tokens int, withTokens bool) string {
	if !withTokens {
		return fmt.Sprintf("%d characters", chars)
	}
	return fmt.Sprintf("%d characters (%d tokens)", chars, tokens)
}

func limit(chars, tokens int) string {
	switch {
	case tokens == math.MaxInt:
		return fmt.Sprintf("%d characters", chars)
	case chars == math.MaxInt:
		return fmt.Sprintf("%d tokens (about %d characters of English)", tokens, tokens*4)
	}
	return fmt.Sprintf("%d characters and %d tokens", chars, tokens)
}
