package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/conversation"
	"aurabot/bot/intake"
	"aurabot/bot/ops"
	"aurabot/bot/reply"
	"aurabot/history/inbox"
)

// What the bot does around the rooms: connect to Telegram, recover what a restart left, serve
// the HTTP listener, and keep up health and the inbox while it runs.

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

// every calls f now and every d after, until ctx ends.
func every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune forgets handled inbox entries older than inbox.Keep.
func (b *Bot) prune(ctx context.Context) {
	if n, err := b.inbox.Prune(ctx, time.Now().Add(-inbox.Keep)); err != nil && ctx.Err() == nil {
		b.log.Warn("could not prune the inbox", "err", err)
	} else if n > 0 {
		b.log.Debug("pruned the inbox", "entries", n)
	}
}

// probe asks Telegram something cheap if no call has been answered for ProbeEvery, so that a
// silent Telegram shows in health within seconds; in webhook mode, whether it can deliver.
func (b *Bot) probe(ctx context.Context) {
	if !b.health.Quiet(b.cfg.ProbeEvery) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PollTimeout)
	defer cancel()
	if b.webhook == nil {
		_, _ = b.tg.GetMe(ctx)
		return
	}
	info, err := b.tg.GetWebhookInfo(ctx)
	if err == nil && info.LastErrorMessage != "" && time.Since(time.Unix(int64(info.LastErrorDate), 0)) < time.Minute {
		b.log.Warn("Telegram cannot deliver to the webhook", "error", info.LastErrorMessage)
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
// is waited out (a bot may start before the network); a rejected token is final.
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
