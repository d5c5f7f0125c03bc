package conversation

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/reply"
	"aurabot/history"
)

const troubleEvery = 10 * time.Minute

// StorageTrouble tells the chat of t why it waits when the reply journal fails.
func (h *Handler) StorageTrouble(ctx context.Context, t reply.Target, err error) {
	if history.StorageTrouble(err) {
		h.storageTrouble(ctx, t, err)
	}
}

// SaveFailed tells the users of updates intake could not save why they wait.
func (h *Handler) SaveFailed(ctx context.Context, us []*models.Update, err error) {
	if !history.StorageTrouble(err) {
		return
	}
	for _, u := range us {
		if m := u.Message; m != nil && m.From != nil && h.allowed(m.From.ID, m.Chat.ID) {
			h.storageTrouble(ctx, reqOf(0, m).t, err)
		}
	}
}

// storageTrouble tells t's chat, at most once every troubleEvery, that the bot cannot save.
func (h *Handler) storageTrouble(ctx context.Context, t reply.Target, err error) {
	if !h.troubled.due(t.ChatID, time.Now()) {
		return
	}
	text := "⚠️ I can't save anything right now: the bot's storage is full. I'll answer as soon as there is room again."
	if errors.Is(err, history.ErrStorageFailing) {
		h.deps.Log.Error("the database's disk is failing (I/O error): the bot answers once it works again", "err", err)
		text = "⚠️ I can't save anything right now: the bot's disk is failing. I'll answer as soon as it works again; the bot's owner has been told in its log."
	}
	h.side.run(ctx, func(cctx context.Context) {
		if err := h.deps.Streamer.Notify(cctx, t, nil, text); err != nil {
			h.deps.Log.Warn("could not tell a chat about the storage", "chat_id", t.ChatID, "err", err)
		}
	})
}

// retryStore runs a write while the storage fails, until it works or ctx ends; other errors return.
func (h *Handler) retryStore(ctx context.Context, r req, write func(ctx context.Context) error) error {
	full := &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, Multiplier: 2, MaxInterval: 10 * time.Second}
	failing := &backoff.ExponentialBackOff{InitialInterval: 5 * time.Second, Multiplier: 2, MaxInterval: 5 * time.Minute}
	for {
		err := write(context.WithoutCancel(ctx))
		if err == nil || !history.StorageTrouble(err) || ctx.Err() != nil {
			return err
		}
		wait := full.NextBackOff()
		if errors.Is(err, history.ErrStorageFailing) {
			wait = failing.NextBackOff()
		}
		if r.t.ChatID != 0 {
			h.storageTrouble(ctx, r.t, err)
		}
		h.deps.Log.Warn("a database write failed; trying again", "err", err, "retry_in", wait)
		if serr := pace.SleepUntil(ctx, time.Now().Add(wait)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// storeFailed tells the user that the store failed at what, unless shutting down.
func (h *Handler) storeFailed(ctx context.Context, r req, what string, err error) result {
	if ctx.Err() != nil {
		return left
	}
	h.deps.Log.Error("store failed", "what", what, "chat_id", r.t.ChatID, "err", err)
	return h.notify(ctx, r, "Sorry, I could not "+what+": the bot's database failed. Please try again later.")
}
