// Package bot is aurabot's Telegram side. It wires the rooms a message travels through, in the
// order it visits them:
//
//   - intake: updates come in (long polling or webhook), are decoded one by one and saved in the
//     inbox before Telegram is told they arrived;
//   - conversation: who may use the bot, commands, and the queue that answers each conversation
//     one message at a time;
//   - reply: the answer streamed into Telegram, a live message (or draft) that grows, rendered
//     by render, paced by pace, recorded in a journal before every call;
//   - ops: /healthz, /metrics, the HTTP listener, and the one redaction point that keeps
//     secrets out of the log and of the errors that leave the process.
//
// tg holds what they share about the Bot API. The package knows nothing of SQL or of the model's
// wire format: it declares the Store and Model it needs and main wires the real ones in.
package bot

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

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

// Model is the model server, as conversation uses it. aura.Client implements it.
type Model = conversation.Model

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

	// Transcriber transcribes voice messages, audio files and video notes (transcribe.Client);
	// nil: voice messages get a notice that they are not set up.
	Transcriber conversation.Transcriber
	// Pacing. Defaults: 1s per private chat, 3s per group, 30 calls/s for the whole bot, of
	// which 24 may go at once after a quiet spell (GlobalBurst), 6 below what Telegram lets pass.
	PrivateInterval, GroupInterval time.Duration
	GlobalRate                     float64
	GlobalBurst                    int
	PollTimeout                    time.Duration // long-polling timeout, default 50s
	ProbeEvery                     time.Duration // see probe; default 5s
	HealthDiskEvery                time.Duration // least time between two writes of /healthz; default ops.DefaultDiskEvery
	// Force, when closed, cuts a shutdown short: replies still streaming are interrupted at
	// once instead of being given ShutdownTimeout (a second SIGTERM).
	Force  <-chan struct{}
	Logger *slog.Logger
	// Redactor is the redaction point Logger writes through (main's); nil: one is put in front
	// of Logger. The bot adds the token to it.
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

// Run connects to Telegram and serves updates until ctx ends, then shuts down gracefully: it
// stops taking updates, lets streaming replies finish for up to ShutdownTimeout (or until Force
// closes) and marks the rest as interrupted. The HTTP listener opens first, as Telegram may call
// a webhook left set by the previous run at once, and closes last; webhook requests wait until
// the updates left from before a restart are queued, so that every conversation keeps its order.
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
	b.log.Info("bot started", "username", me.Username, "stream_mode", cmp.Or(b.cfg.Reply.StreamMode, reply.StreamEdit), "updates", mode)

	// Replies live in their own context so that a shutdown can give them time to finish.
	replyCtx, cancelReplies := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelReplies(reply.ErrShutdown)

	upkeepCtx, stopUpkeep := context.WithCancel(ctx)
	var upkeep sync.WaitGroup
	upkeep.Go(func() { every(upkeepCtx, 10*time.Minute, b.prune) })
	upkeep.Go(func() { every(upkeepCtx, b.cfg.ProbeEvery, b.probe) })
	defer upkeep.Wait()
	defer stopUpkeep()

	// Searches for lost messages stop with the shutdown, once the replies are done; the journal
	// keeps where they were.
	searchCtx, stopSearches := context.WithCancel(replyCtx)
	defer b.searcher.Wait()
	defer stopSearches()

	err = b.recover(replyCtx, searchCtx)
	switch {
	case err != nil:
	case b.webhook == nil:
		err = intake.Poll(ctx, replyCtx, b.intakeDeps(), b.cfg.PollTimeout)
	default:
		b.webhook.Open(replyCtx)
		select {
		case <-ctx.Done():
		case <-srv.Stopped():
			err = fmt.Errorf("bot: the webhook server stopped: %w", srv.Err())
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
		return err
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("shutdown timeout: interrupting replies still streaming")
	case <-b.cfg.Force:
		b.log.Warn("second signal: interrupting replies now")
	}
	cancelReplies(reply.ErrShutdown)
	<-drained
	return err
}
