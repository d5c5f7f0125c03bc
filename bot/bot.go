// Package bot is aurabot's Telegram side. It wires the rooms a message travels through, in the
// order it visits them:
//
//   - intake: updates come in (long polling or webhook), are decoded one by one and saved in the
//     inbox before Telegram is told they arrived;
//   - conversation: who may use the bot, commands, and the queue that answers each conversation
//     one message at a time;
//   - reply: the answer streamed into Telegram, a live message (or draft) that grows, rendered
//     by render, paced by pace, recorded in a journal before every call;
//   - ops: /healthz, /metrics and the HTTP listener.
//
// tg holds what they share about the Bot API. The package knows nothing of SQL or of the model's
// wire format: it declares the Store and Model it needs and main wires the real ones in.
package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/conversation"
	"aurabot/bot/intake"
	"aurabot/bot/ops"
	"aurabot/bot/pace"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history/inbox"
)

// Store keeps conversations and the update inbox. history.Store implements it.
type Store interface {
	conversation.Store
	ops.Store
	Inbox() *inbox.Inbox
}

// Model streams an answer to a conversation, from the model the conversation chose, with the
// server's count of the request; lists the models the server offers, asks about others, and
// says what a model can do. aura.Client implements it.
type Model interface {
	conversation.Model
}

// Transcriber turns voice messages into text. transcribe.Client implements it.
type Transcriber = conversation.Transcriber

// ModelChoice is a model /model offers: its id, and the name people see ("" for the id).
type ModelChoice = conversation.ModelChoice

// Stream modes (reply.Config.StreamMode).
const (
	StreamEdit  = reply.StreamEdit
	StreamDraft = reply.StreamDraft
)

// Config is what the bot needs: the settings of each room it wires, as that room declares them,
// and the bot's own. Zero values take the documented defaults. main has validated the user's
// settings; New trusts them.
type Config struct {
	Telegram     tg.Config
	Conversation conversation.Config
	Reply        reply.Config

	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// ListenAddr is where GET /healthz, GET /metrics and the webhook are served; "" serves
	// nothing. main reads LISTEN_ADDR, whose empty value is not its default.
	ListenAddr   string
	MetricsToken string `env:"METRICS_TOKEN"` // the bearer token GET /metrics asks for, if set
	// WebhookURL switches from long polling to a webhook: Telegram posts updates to this URL,
	// which must reach ListenAddr at the same path, with WebhookSecret.
	WebhookURL    string `env:"WEBHOOK_URL"`
	WebhookSecret string `env:"WEBHOOK_SECRET"`

	// Not settings: what main (or a test) hands the bot.

	// Transcriber transcribes voice messages, audio files and video notes; nil: voice
	// messages get a notice that they are not set up.
	Transcriber Transcriber
	// Pacing. Defaults: 1s per private chat, 3s per group, 30 calls/s for the whole bot, of
	// which 24 may go at once after a quiet spell (GlobalBurst): the first texts of many chats
	// that start together come out at once, with a margin of 6 below the 30 Telegram lets pass.
	PrivateInterval, GroupInterval time.Duration
	GlobalRate                     float64
	GlobalBurst                    int
	PollTimeout                    time.Duration // long-polling timeout, default 50s
	// ProbeEvery is how often Telegram is asked something when no call has been answered for
	// that long, so that health sees a silent Telegram within seconds. Default 5s.
	ProbeEvery time.Duration
	// HealthDiskEvery is the least time between two real writes of /healthz (default
	// ops.DefaultDiskEvery).
	HealthDiskEvery time.Duration
	// Force, when closed, cuts a shutdown short: replies still streaming are interrupted at
	// once instead of being given ShutdownTimeout (a second SIGTERM).
	Force  <-chan struct{}
	Logger *slog.Logger
	// Redactor is the redaction point Logger writes through (main's); nil: one is put in front
	// of Logger. The bot adds the token to it, and /healthz shows nothing it has not passed.
	Redactor   *ops.Redactor
	HTTPClient *http.Client // for the Bot API; default one with sane timeouts
}

func (c *Config) setDefaults() {
	orDefault(&c.Conversation.MaxConcurrentReplies, 32)
	orDefault(&c.Reply.MaxAnswerChars, 65536)
	orDefault(&c.ShutdownTimeout, 10*time.Second)
	orDefault(&c.PrivateInterval, time.Second)
	orDefault(&c.GroupInterval, 3*time.Second)
	orDefault(&c.GlobalRate, 30)
	orDefault(&c.GlobalBurst, int(c.GlobalRate*0.8))
	orDefault(&c.PollTimeout, 50*time.Second)
	orDefault(&c.ProbeEvery, 5*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Redactor == nil {
		c.Redactor = ops.NewRedactor(c.Logger.Handler())
		c.Logger = slog.New(c.Redactor)
	}
	c.Redactor.Add(ops.TokenSecrets(c.Telegram.Token)...)
	c.HTTPClient = cmp.Or(c.HTTPClient, &http.Client{Timeout: c.PollTimeout + 15*time.Second})
}

// orDefault sets *v to def unless it is positive.
func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Bot is a running aurabot. Create it with New and start it with Run.
type Bot struct {
	cfg   Config
	log   *slog.Logger
	tg    *tg.Client
	inbox *inbox.Inbox
	pace  *pace.Pacer

	registry *reply.Registry
	searcher *reply.Searcher
	streamer *reply.Streamer
	handler  *conversation.Handler
	metrics  *ops.Metrics
	health   *ops.Health
	webhook  *intake.Webhook

	addr atomic.Value // the HTTP listener's address, a string, once it listens
}

// New builds a bot. It makes no network calls; Run does.
func New(cfg Config, store Store, model Model) (*Bot, error) {
	cfg.setDefaults()
	b := &Bot{
		cfg:      cfg,
		log:      cfg.Logger,
		inbox:    store.Inbox(),
		pace:     pace.New(cfg.PrivateInterval, cfg.GroupInterval, cfg.GlobalRate).WithBurst(cfg.GlobalBurst),
		registry: reply.NewRegistry(),
	}
	b.metrics = ops.NewMetrics(func() float64 { return float64(b.handler.Queued()) })
	b.health = ops.NewHealth(store, cfg.PollTimeout, cfg.HealthDiskEvery)
	client, err := tg.New(cfg.Telegram, cfg.PollTimeout, ops.Instrument(cfg.HTTPClient, b.metrics, b.health), b.log)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	b.tg = client
	b.searcher = reply.NewSearcher(client, b.pace, b.registry, lostStore{b.inbox}, b.log)
	trouble := func(ctx context.Context, t reply.Target, err error) { b.handler.StorageTrouble(ctx, t, err) }
	b.streamer = reply.NewStreamer(reply.Deps{TG: client, Pacer: b.pace, Log: b.log, Registry: b.registry, Searcher: b.searcher, Trouble: trouble}, cfg.Reply)
	b.handler = conversation.New(cfg.Conversation, conversation.Deps{
		TG: client, Pacer: b.pace, Streamer: b.streamer, Registry: b.registry,
		Store: store, Journal: b.inbox, Model: model, Metrics: b.metrics, Log: b.log,
		Transcriber: cfg.Transcriber,
	})
	return b, nil
}

// intakeDeps is what the poller and the webhook need.
func (b *Bot) intakeDeps() intake.Deps {
	return intake.Deps{TG: b.tg, Inbox: b.inbox, Handle: b.handler.Handle, Log: b.log, SaveFailed: b.handler.SaveFailed}
}

// Run connects to Telegram and serves updates until ctx ends, then shuts down gracefully:
// it stops taking updates, lets streaming replies finish for up to ShutdownTimeout (or until
// Force closes) and marks the rest as interrupted.
//
// Updates come by long polling, or by webhook when WebhookURL is set. The HTTP listener (health,
// metrics, webhook) opens first, as Telegram may call a webhook left set by the previous run as
// soon as it can, and closes last; webhook requests wait until the updates left from before a
// restart are queued, so that every conversation keeps its order.
func (b *Bot) Run(ctx context.Context) error {
	return b.cfg.Redactor.Error(b.run(ctx))
}

func (b *Bot) run(ctx context.Context) error {
	if b.cfg.WebhookURL != "" {
		b.webhook = intake.NewWebhook(b.intakeDeps(), b.cfg.WebhookSecret, b.metrics.WebhookRequest)
		defer b.webhook.Close()
	}
	srv, err := b.listen()
	if err != nil {
		return err
	}
	defer srv.Shutdown(b.log)
	me, err := b.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before Telegram could be reached
		}
		return err
	}
	b.handler.SetMe(*me)
	mode := "polling"
	if b.webhook != nil {
		mode = "webhook"
	}
	b.log.Info("bot started", "username", me.Username, "stream_mode", cmp.Or(b.cfg.Reply.StreamMode, StreamEdit), "updates", mode)

	// Replies live in their own context so that a shutdown can give them time to finish.
	replyCtx, cancelReplies := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelReplies(reply.ErrShutdown)

	probeCtx, stopProbe := context.WithCancel(ctx)
	var probing sync.WaitGroup
	probing.Go(func() { b.probe(probeCtx) })
	probing.Go(func() { b.prune(probeCtx) })
	defer probing.Wait()
	defer stopProbe()

	// Searches for lost messages stop with the shutdown, once the replies are done; the journal
	// keeps where they were.
	searchCtx, stopSearches := context.WithCancel(replyCtx)
	defer b.searcher.Wait()
	defer stopSearches()

	err = b.recover(replyCtx, searchCtx)
	if err == nil {
		if b.webhook != nil {
			b.webhook.Open(replyCtx)
			select {
			case <-ctx.Done():
			case <-srv.Stopped():
				err = fmt.Errorf("bot: the webhook server stopped: %w", srv.Err())
			}
		} else {
			err = intake.NewPoller(b.intakeDeps(), b.cfg.PollTimeout).Run(ctx, replyCtx)
		}
	}
	if b.webhook != nil {
		b.webhook.Close() // no update reaches the queues from here on
	}
	b.handler.Close()

	b.log.Info("shutting down: waiting for replies", "timeout", b.cfg.ShutdownTimeout)
	drained := make(chan struct{})
	go func() { b.handler.Wait(); b.streamer.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("shutdown timeout: interrupting replies still streaming")
		cancelReplies(reply.ErrShutdown)
		<-drained
	case <-b.cfg.Force:
		b.log.Warn("second signal: interrupting replies now")
		cancelReplies(reply.ErrShutdown)
		<-drained
	}
	return err
}

// recover loads what the inbox knows and hands the updates left from before a restart to the
// conversations, in order, and the searches for lost messages to the searcher. Nothing is sent
// before: a reply whose send had no answer keeps its chat's send gate until it is resumed.
func (b *Bot) recover(ctx, searchCtx context.Context) error {
	known, err := b.inbox.KnownMessages(ctx)
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	for chat, ids := range known {
		for _, id := range ids {
			b.registry.Add(chat, int(id))
		}
	}
	pending, err := b.inbox.Pending(ctx)
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	lost, err := b.inbox.LostSends(ctx)
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	if len(pending) > 0 {
		b.log.Info("resuming updates from before the restart", "count", len(pending))
	}
	b.handler.Recover(ctx, pending)
	searches := make([]reply.Lost, 0, len(lost))
	for _, l := range lost {
		searches = append(searches, fromInbox(l))
	}
	b.searcher.Start(searchCtx, searches)
	return nil
}

// pruneEvery is how often handled inbox entries older than inbox.Keep are forgotten.
const pruneEvery = 10 * time.Minute

// prune forgets handled inbox entries older than inbox.Keep, at start and every pruneEvery,
// until ctx ends: the inbox holds about two days of updates however long the bot runs.
func (b *Bot) prune(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if n, err := b.inbox.Prune(ctx, time.Now().Add(-inbox.Keep)); err != nil && ctx.Err() == nil {
			b.log.Warn("could not prune the inbox", "err", err)
		} else if n > 0 {
			b.log.Debug("pruned the inbox", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lostStore keeps the searches for lost messages in the inbox.
type lostStore struct{ in *inbox.Inbox }

func (s lostStore) AddLost(ctx context.Context, l reply.Lost) (int64, error) {
	return s.in.AddLost(ctx, inbox.Lost{ChatID: l.ChatID, Floor: int64(l.Floor), Ceiling: int64(l.Ceiling), Sent: l.Wire, Copies: l.Copies})
}

func (s lostStore) Searched(ctx context.Context, id int64, lo, hi, copies int) error {
	return s.in.Searched(ctx, id, int64(lo), int64(hi), copies)
}

func (s lostStore) SearchDone(ctx context.Context, id int64) error { return s.in.SearchDone(ctx, id) }

func fromInbox(l inbox.Lost) reply.Lost {
	return reply.Lost{ID: l.ID, ChatID: l.ChatID, Floor: int(l.Floor), Ceiling: int(l.Ceiling), Wire: l.Sent,
		Copies: l.Copies, Lo: int(l.Lo), Hi: int(l.Hi)}
}

// listen opens ListenAddr (if set) with /healthz, /metrics and, in webhook mode, the webhook.
func (b *Bot) listen() (*ops.Server, error) {
	if b.cfg.ListenAddr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", b.health.Handler(b.cfg.Redactor))
	mux.Handle("GET /metrics", ops.Bearer(b.cfg.MetricsToken, b.metrics.Handler()))
	if b.webhook != nil {
		p, err := intake.WebhookPath(b.cfg.WebhookURL)
		if err != nil {
			return nil, fmt.Errorf("bot: WEBHOOK_URL: %w", err)
		}
		if p == "/" {
			p = "/{$}" // only "/" itself, not every path
		}
		mux.Handle("POST "+p, b.webhook)
	}
	srv, err := ops.Listen(b.cfg.ListenAddr, mux, b.log)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	b.addr.Store(srv.Addr())
	return srv, nil
}

// probe asks Telegram something cheap whenever no call has been answered for ProbeEvery, until
// ctx ends. A call Telegram leaves unanswered shows in health within seconds (see ops.Health).
func (b *Bot) probe(ctx context.Context) {
	t := time.NewTicker(b.cfg.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !b.health.Quiet(b.cfg.ProbeEvery) {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, b.cfg.PollTimeout)
		if b.webhook != nil {
			info, err := b.tg.GetWebhookInfo(pctx)
			if err == nil && info.LastErrorMessage != "" && time.Since(time.Unix(int64(info.LastErrorDate), 0)) < time.Minute {
				b.log.Warn("Telegram cannot deliver to the webhook", "error", info.LastErrorMessage)
			}
		} else {
			_, _ = b.tg.GetMe(pctx)
		}
		cancel()
	}
}

// connect checks the token, sets the webhook (webhook mode) or clears it (polling: a webhook
// makes getUpdates fail), and registers the commands. A shutdown leaves the webhook set, so
// Telegram keeps updates for the next run.
func (b *Bot) connect(ctx context.Context) (*models.User, error) {
	me, err := b.getMe(ctx)
	if err != nil {
		return nil, err
	}
	if b.webhook != nil {
		if _, err := b.tg.SetWebhook(ctx, &tgbot.SetWebhookParams{
			URL:            b.cfg.WebhookURL,
			SecretToken:    b.cfg.WebhookSecret,
			AllowedUpdates: intake.AllowedUpdates,
		}); err != nil {
			return nil, fmt.Errorf("bot: setWebhook: %w", err)
		}
	} else if _, err := b.tg.DeleteWebhook(ctx, &tgbot.DeleteWebhookParams{}); err != nil {
		return nil, fmt.Errorf("bot: deleteWebhook: %w", err)
	}
	var cmds []models.BotCommand
	for _, c := range conversation.Commands() {
		cmds = append(cmds, models.BotCommand{Command: c.Name, Description: c.Short})
	}
	if _, err := b.tg.SetMyCommands(ctx, &tgbot.SetMyCommandsParams{Commands: cmds}); err != nil {
		// Not fatal: the bot works without the command menu.
		b.log.Warn("setMyCommands failed", "err", err)
	}
	return me, nil
}

// getMe checks the token and learns the bot's username. A network failure or a Telegram outage
// is waited out, so a bot that starts before the network is up still comes up; a rejected token
// is final.
func (b *Bot) getMe(ctx context.Context) (*models.User, error) {
	return backoff.Retry(ctx, func() (*models.User, error) {
		me, err := b.tg.GetMe(ctx)
		if errors.Is(err, tgbot.ErrorUnauthorized) || errors.Is(err, tgbot.ErrorNotFound) {
			return nil, backoff.Permanent(errors.New("bot: Telegram rejected TELEGRAM_TOKEN (401 Unauthorized): check the token from @BotFather"))
		}
		return me, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 30 * time.Second}),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
			b.log.Warn("cannot reach Telegram; trying again", "err", err, "retry_in", wait)
		}))
}
