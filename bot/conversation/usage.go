package conversation

import (
	"context"
	"iter"
	"log/slog"
	"sync"

	"aurabot/aura"
	"aurabot/bot/reply"
)

// replyChunks is a model's stream as the reply shows it: the answer's text and the model's
// thinking. What else the stream carries goes to onUsage (the server's count of the request).
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

// usageCheck compares what a server counted for a request (usage.prompt_tokens) with what the
// bot's window counted for it, and logs once per model and direction when they differ by
// more than a margin: the window is an estimate (cl100k_base tokens, AURA_TOKENS_PER_MESSAGE
// for the chat template), and a server that counts more than the bot cuts the conversation
// silently near its limit.
type usageCheck struct {
	mu   sync.Mutex
	told map[string]bool // model + direction: logged already
}

// usageMargin is how far the server's count may be from the estimate without a word: a tenth
// of it, and at least 16 tokens (a system preamble some templates add, once per request).
func usageMargin(estimate int) int { return max(estimate/10, 16) }

// check compares the server's count with the estimate of a request of n messages.
func (u *usageCheck) check(ctx context.Context, log *slog.Logger, model string, estimate, messages int, used aura.Usage) {
	log.DebugContext(ctx, "the model server's count of a request", "model", model,
		"prompt_tokens", used.PromptTokens, "estimate", estimate, "messages", messages, "completion_tokens", used.CompletionTokens)
	off := used.PromptTokens - estimate
	if used.PromptTokens <= 0 || max(off, -off) <= usageMargin(estimate) {
		return
	}
	key := model + "\x00under"
	if off < 0 {
		key = model + "\x00over"
	}
	u.mu.Lock()
	told := u.told[key]
	u.told[key] = true
	u.mu.Unlock()
	if told {
		return
	}
	attrs := []any{"model", model, "prompt_tokens", used.PromptTokens, "estimate", estimate, "messages", messages}
	if off > 0 {
		log.WarnContext(ctx, "the model server counts more tokens in a request than the bot's window does: near AURA_CONTEXT_TOKENS it will cut the conversation itself. "+
			"Raise AURA_TOKENS_PER_MESSAGE (its template adds more per message) or lower AURA_CONTEXT_TOKENS (its tokenizer counts more than cl100k_base)", attrs...)
		return
	}
	log.InfoContext(ctx, "the model server counts fewer tokens in a request than the bot's window does: the window holds less of the conversation than it could. "+
		"AURA_TOKENS_PER_MESSAGE may be lowered for this model's template", attrs...)
}
