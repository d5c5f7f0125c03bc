package conversation

import (
	"context"
	"sync"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

const (
	sideTimeout         = 30 * time.Second // a slow Telegram delays the call, never the bot
	maxReactionsPerChat = 3                // a flood of messages gets a few reactions
)

// sideCalls are the Bot API calls that go out on their own; nothing waits for them but shutdown.
type sideCalls struct {
	deps  Deps
	after time.Duration // a message whose turn comes sooner than this gets no reaction

	mu      sync.Mutex
	waiting map[int64]int // reactions waiting per chat
	wg      sync.WaitGroup
}

// react puts emoji on message msgID of chat s.after from now, unless started is closed (or
// ctx ends) by then, or too many reactions wait there already.
func (s *sideCalls) react(ctx context.Context, chat int64, msgID int, emoji string, started <-chan struct{}) {
	s.mu.Lock()
	if s.waiting[chat] >= maxReactionsPerChat {
		s.mu.Unlock()
		s.deps.Log.Debug("too many reactions waiting; skipping one", "chat_id", chat)
		return
	}
	s.waiting[chat]++
	s.mu.Unlock()
	s.run(ctx, func(cctx context.Context) {
		defer func() {
			s.mu.Lock()
			if s.waiting[chat]--; s.waiting[chat] <= 0 {
				delete(s.waiting, chat)
			}
			s.mu.Unlock()
		}()
		t := time.NewTimer(s.after)
		defer t.Stop()
		select {
		case <-started:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := tg.Call(cctx, s.deps.Pacer, s.deps.Log, chat, func(ctx context.Context) (bool, error) {
			return s.deps.TG.SetMessageReaction(ctx, &tgbot.SetMessageReactionParams{
				ChatID:    chat,
				MessageID: msgID,
				Reaction:  []models.ReactionType{{Type: models.ReactionTypeTypeEmoji, ReactionTypeEmoji: &models.ReactionTypeEmoji{Type: models.ReactionTypeTypeEmoji, Emoji: emoji}}},
			})
		})
		if err != nil {
			s.deps.Log.Debug("setMessageReaction failed", "chat_id", chat, "err", err)
		}
	})
}

// answerCallback answers a button press (Telegram shows a spinner until then) with text.
func (s *sideCalls) answerCallback(ctx context.Context, id, text string) {
	s.run(ctx, func(cctx context.Context) {
		if _, err := s.deps.TG.AnswerCallbackQuery(cctx, &tgbot.AnswerCallbackQueryParams{CallbackQueryID: id, Text: text}); err != nil {
			s.deps.Log.Debug("answerCallbackQuery failed", "err", err)
		}
	})
}

// removeButtons takes the keyboard off message msgID of chat (a stale Stop button).
func (s *sideCalls) removeButtons(ctx context.Context, chat int64, msgID int) {
	s.edit(ctx, chat, "could not remove a stale button", func(ctx context.Context) (*models.Message, error) {
		return s.deps.TG.EditMessageReplyMarkup(ctx, &tgbot.EditMessageReplyMarkupParams{ChatID: chat, MessageID: msgID})
	})
}

// editText replaces the text (and so the keyboard) of the model picker msgID in chat.
func (s *sideCalls) editText(ctx context.Context, chat int64, msgID int, text string) {
	s.edit(ctx, chat, "could not edit the model picker", func(ctx context.Context) (*models.Message, error) {
		return s.deps.TG.EditMessageText(ctx, &tgbot.EditMessageTextParams{ChatID: chat, MessageID: msgID, Text: text})
	})
}

// edit makes a paced edit in chat; a failure, "not modified" aside, is logged as failed.
func (s *sideCalls) edit(ctx context.Context, chat int64, failed string, call func(ctx context.Context) (*models.Message, error)) {
	s.run(ctx, func(cctx context.Context) {
		if _, err := tg.Call(cctx, s.deps.Pacer, s.deps.Log, chat, call); err != nil && !tg.NotModified(err) {
			s.deps.Log.Debug(failed, "chat_id", chat, "err", err)
		}
	})
}

// run runs fn on its own goroutine, bounded by sideTimeout.
func (s *sideCalls) run(ctx context.Context, fn func(ctx context.Context)) {
	s.wg.Go(func() {
		cctx, cancel := tg.Background(ctx, sideTimeout)
		defer cancel()
		fn(cctx)
	})
}
