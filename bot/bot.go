// Package bot is aurabot's Telegram side: it takes updates, keeps every conversation in a Store,
// asks a Model for answers and shows them as they stream, paced so Telegram never floods.
//
// It is the only package that talks to Telegram. It knows nothing of SQL or of the model's wire
// format: it declares the Store and Model it needs and main wires the real ones in.
package bot

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/history"
)

// Store keeps conversations. history.Store implements it.
type Store interface {
	Append(ctx context.Context, k history.Key, t history.Turn) (history.Turn, bool, error)
	SystemPrompt(ctx context.Context, k history.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, k history.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, k history.Key) error
	Reset(ctx context.Context, k history.Key) error
	Rewind(ctx context.Context, k history.Key) (history.Turn, error)
	Window(ctx context.Context, k history.Key, b history.Budget, systemPrompt string) ([]history.Turn, error)
	Ping(ctx context.Context) error // for GET /healthz

	// The update inbox: every update is saved before Telegram is told it was received, and
	// finished once it has been handled, so a crash loses nothing.
	SaveUpdates(ctx context.Context, us []history.Update) (fresh []int64, err error)
	PendingUpdates(ctx context.Context) ([]history.Update, error)
	LastUpdateID(ctx context.Context) (int64, error)
	RecordReply(ctx context.Context, updateID int64, messageIDs []int64, shown string) error
	Finish(ctx context.Context, updateID int64, k history.Key, answer *history.Turn) error
}

// Model streams an answer to a conversation. aura.Client implements it.
type Model interface {
	Stream(ctx context.Context, msgs []aura.Message) iter.Seq2[string, error]
}

// Stream modes.
const (
	StreamEdit  = "edit"
	StreamDraft = "draft"
)

// Config is what the bot needs to know. Zero values take the documented defaults.
type Config struct {
	Token  string
	APIURL string // default https://api.telegram.org

	AllowAll     bool
	AllowedUsers []int64
	AllowedChats []int64

	DefaultPrompt string
	ContextBudget int // characters of prompt + history sent to the model

	StreamMode           string        // StreamEdit (default) or StreamDraft
	MaxConcurrentReplies int           // default 32
	ShutdownTimeout      time.Duration // default 10s

	// Pacing. Defaults: 1s per private chat, 3s per group, 30 calls/s for the whole bot.
	PrivateInterval time.Duration
	GroupInterval   time.Duration
	GlobalRate      float64

	PollTimeout time.Duration // long-polling timeout, default 50s

	// ListenAddr is where GET /healthz, GET /metrics and the webhook are served; "" serves
	// nothing (polling mode only).
	ListenAddr string
	// WebhookURL switches from long polling to a webhook: Telegram posts updates to this URL,
	// which must reach ListenAddr at the same path. WebhookSecret is then required.
	WebhookURL    string
	WebhookSecret string

	Logger     *slog.Logger
	HTTPClient *http.Client // for the Bot API; default one with sane timeouts
}

func (c *Config) setDefaults() {
	if c.APIURL == "" {
		c.APIURL = "https://api.telegram.org"
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.StreamMode == "" {
		c.StreamMode = StreamEdit
	}
	if c.MaxConcurrentReplies <= 0 {
		c.MaxConcurrentReplies = 32
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.PrivateInterval <= 0 {
		c.PrivateInterval = time.Second
	}
	if c.GroupInterval <= 0 {
		c.GroupInterval = 3 * time.Second
	}
	if c.GlobalRate <= 0 {
		c.GlobalRate = 30
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = 50 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.PollTimeout + 15*time.Second}
	}
}

// Bot is a running aurabot. Create it with New and start it with Run.
type Bot struct {
	cfg   Config
	log   *slog.Logger
	api   *tgbot.Bot
	store Store
	model Model
	pace  *pacer
	queue *dispatcher
	me    models.User

	mention  *regexp.Regexp // "@botusername", set once getMe has answered
	closing  atomic.Bool    // set when shutdown begins: jobs not yet started stay in the inbox
	draftIDs atomic.Int64   // sendMessageDraft ids, unique for the process

	metrics *metrics
	health  health
	inbox   *inbox       // webhook requests' way in
	addr    atomic.Value // the HTTP listener's address, a string

	mu     sync.Mutex
	active map[history.Key]*activeReply // replies streaming now, for /stop
	// refused remembers when each chat was last told it is not allowed.
	refused map[int64]time.Time
}

// New builds a bot. It makes no network calls; Run does.
func New(cfg Config, store Store, model Model) (*Bot, error) {
	cfg.setDefaults()
	if cfg.StreamMode != StreamEdit && cfg.StreamMode != StreamDraft {
		return nil, fmt.Errorf("bot: unknown stream mode %q", cfg.StreamMode)
	}
	if cfg.WebhookURL != "" {
		if cfg.ListenAddr == "" {
			return nil, errors.New("bot: a webhook needs a listen address")
		}
		if !ValidWebhookSecret(cfg.WebhookSecret) {
			return nil, errors.New("bot: the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
		}
		if _, err := WebhookPath(cfg.WebhookURL); err != nil {
			return nil, fmt.Errorf("bot: webhook URL: %w", err)
		}
	}
	b := &Bot{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   store,
		model:   model,
		pace:    newPacer(cfg.PrivateInterval, cfg.GroupInterval, cfg.GlobalRate),
		active:  map[history.Key]*activeReply{},
		refused: map[int64]time.Time{},
	}
	b.queue = newDispatcher(cfg.MaxConcurrentReplies)
	b.metrics = newMetrics(func() float64 { return float64(b.queue.pending()) })
	b.inbox = newInbox()
	b.cfg.HTTPClient = b.instrument(cfg.HTTPClient)
	b.draftIDs.Store(time.Now().UnixMilli() % 1e9) // non-zero, and new after a restart
	api, err := tgbot.New(cfg.Token,
		tgbot.WithSkipGetMe(),
		tgbot.WithServerURL(cfg.APIURL),
		tgbot.WithHTTPClient(cfg.PollTimeout, b.cfg.HTTPClient),
		tgbot.WithErrorsHandler(func(err error) {
			b.log.Warn("telegram library error", "err", b.scrub(err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", b.scrub(err))
	}
	b.api = api
	return b, nil
}

// Run connects to Telegram and serves updates until ctx ends, then shuts down gracefully:
// it stops taking updates, lets streaming replies finish for up to ShutdownTimeout and marks
// the rest as interrupted.
//
// Updates come by long polling, or by webhook when WebhookURL is set. The HTTP listener (health,
// metrics, webhook) opens first, as Telegram may call a webhook left set by the previous run as
// soon as it can, and closes last; webhook requests wait until the updates left from before a
// restart are queued, so that every conversation keeps its order.
func (b *Bot) Run(ctx context.Context) error {
	srv, err := b.listen()
	if err != nil {
		return err
	}
	defer srv.shutdown(b.log)
	defer b.inbox.stop()
	if err := b.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before Telegram could be reached
		}
		return err
	}
	mode := "polling"
	if b.cfg.WebhookURL != "" {
		mode = "webhook"
	}
	b.log.Info("bot started", "username", b.me.Username, "stream_mode", b.cfg.StreamMode, "updates", mode)

	// Replies live in their own context so that a shutdown can give them time to finish.
	replyCtx, cancelReplies := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelReplies(errShutdown)

	err = b.recover(replyCtx)
	if err == nil {
		if b.cfg.WebhookURL != "" {
			err = b.takeWebhooks(ctx, replyCtx, srv)
		} else {
			err = b.poll(ctx, replyCtx)
		}
	}
	b.inbox.stop() // no update reaches the queues from here on
	b.closing.Store(true)

	b.log.Info("shutting down: waiting for replies", "timeout", b.cfg.ShutdownTimeout)
	drained := make(chan struct{})
	go func() { b.queue.wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("shutdown timeout: interrupting replies still streaming")
		cancelReplies(errShutdown)
		<-drained
	}
	return err
}

// connect checks the token, sets the webhook (webhook mode) or clears it (polling: a webhook
// makes getUpdates fail), and registers the commands. A shutdown leaves the webhook set, so
// Telegram keeps updates for the next run.
func (b *Bot) connect(ctx context.Context) error {
	me, err := b.getMe(ctx)
	if err != nil {
		return err
	}
	b.me = *me
	// A mention is stripped from a group message before it goes to the model, in any case, as
	// Telegram matches usernames.
	b.mention = regexp.MustCompile(`(?i)@` + regexp.QuoteMeta(me.Username) + `\b`)
	if b.cfg.WebhookURL != "" {
		if err := b.setWebhook(ctx); err != nil {
			return err
		}
	} else if _, err := b.api.DeleteWebhook(ctx, &tgbot.DeleteWebhookParams{}); err != nil {
		return fmt.Errorf("bot: deleteWebhook: %w", b.scrub(err))
	}
	cmds := make([]models.BotCommand, 0, len(commands))
	for _, c := range commands {
		cmds = append(cmds, models.BotCommand{Command: c.name, Description: c.short})
	}
	if _, err := b.api.SetMyCommands(ctx, &tgbot.SetMyCommandsParams{Commands: cmds}); err != nil {
		// Not fatal: the bot works without the command menu.
		b.log.Warn("setMyCommands failed", "err", b.scrub(err))
	}
	return nil
}

// getMe checks the token and learns the bot's username. A network failure or a Telegram outage
// is waited out, so a bot that starts before the network is up still comes up; a rejected token
// is final.
func (b *Bot) getMe(ctx context.Context) (*models.User, error) {
	backoff := time.Second
	for {
		me, err := b.api.GetMe(ctx)
		if err == nil {
			return me, nil
		}
		if errors.Is(err, tgbot.ErrorUnauthorized) || errors.Is(err, tgbot.ErrorNotFound) {
			return nil, errors.New("bot: Telegram rejected TELEGRAM_TOKEN (401 Unauthorized): check the token from @BotFather")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.log.Warn("cannot reach Telegram; trying again", "err", b.scrub(err), "retry_in", backoff)
		if err := sleepUntil(ctx, time.Now().Add(backoff)); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// scrub removes the bot token from an error's text, for logs and returned errors.
func (b *Bot) scrub(err error) error {
	if err == nil || b.cfg.Token == "" || !strings.Contains(err.Error(), b.cfg.Token) {
		return err
	}
	return scrubbedError{msg: strings.ReplaceAll(err.Error(), b.cfg.Token, "<token>"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e scrubbedError) Error() string { return e.msg }
func (e scrubbedError) Unwrap() error { return e.err }
