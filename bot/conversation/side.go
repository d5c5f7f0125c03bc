package conversation

import (
	"context"
	"sync"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
)

// sideTimeout bounds one side call: a slow Telegram delays the call, never the bot.
const sideTimeout = 30 * time.Second

// maxReactionsPerChat is how many reactions may wait in one chat: one user sending thousands of
// messages gets a few, and costs the other chats nothing.
const maxReactionsPerChat = 3

// sideCalls are the Bot API calls that go out on their own, off the path that takes updates:
// reactions and answers to button presses. Reactions are paced like messages and dropped past a
// few waiting in one chat; nothing waits for them but shutdown.
type sideCalls struct {
	deps Deps

	mu      sync.Mutex
	waiting map[int64]int // reactions waiting per chat
	wg      sync.WaitGroup
}

func newSideCalls(deps Deps) *sideCalls {
	return &sideCalls{deps: deps, waiting: map[int64]int{}}
}

// react puts emoji on message msgID of chat, unless too many reactions wait there already.
func (s *sideCalls) react(ctx context.Context, chat int64, msgID int, emoji string) {
	s.mu.Lock()
	if s.waiting[chat] >= maxReactionsPerChat {
		s.mu.Unlock()
		s.deps.Log.Debug("too many reactions waiting; skipping one", "chat_id", chat)
		return
	}
	s.waiting[chat]++
	s.mu.Unlock()
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			if s.waiting[chat]--; s.waiting[chat] <= 0 {
				delete(s.waiting, chat)
			}
			s.mu.Unlock()
		}()
		cctx, cancel := tg.Background(ctx, sideTimeout)
		defer cancel()
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
	s.wg.Go(func() {
		cctx, cancel := tg.Background(ctx, sideTimeout)
		defer cancel()
		if _, err := s.deps.TG.AnswerCallbackQuery(cctx, &tgbot.AnswerCallbackQueryParams{CallbackQueryID: id, Text: text}); err != nil {
			s.deps.Log.Debug("answerCallbackQuery failed", "err", err)
		}
	})
}

// removeButtons takes the keyboard off message msgID of chat (a Stop button left on a reply
// that has ended).
func (s *sideCalls) removeButtons(ctx context.Context, chat int64, msgID int) {
	s.wg.Go(func() {
		cctx, cancel := tg.Background(ctx, sideTimeout)
		defer cancel()
		_, err := tg.Call(cctx, s.deps.Pacer, s.deps.Log, chat, func(ctx context.Context) (*models.Message, error) {
			return s.deps.TG.EditMessageReplyMarkup(ctx, &tgbot.EditMessageReplyMarkupParams{ChatID: chat, MessageID: msgID})
		})
		if err != nil && !tg.NotModified(err) {
			s.deps.Log.Debug("could not remove a stale button", "chat_id", chat, "err", err)
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

func (s *sideCalls) wait() { s.wg.Wait() }
