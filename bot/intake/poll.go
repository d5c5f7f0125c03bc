// Package intake is where updates come in: by long polling (Poller) or by webhook (Webhook).
// Each update is decoded on its own, saved in the inbox before Telegram is told it arrived, and
// only then handed on, so a crash loses nothing; one that cannot be decoded is kept raw and
// skipped, so it never stops the bot.
//
// Intake waits on Telegram for getUpdates only: the handler it calls must not block on
// Telegram (it queues work and returns).
package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/bot/pace"
	"aurabot/bot/tg"
	"aurabot/history/inbox"
)

// AllowedUpdates are the update types the bot handles, so that nothing else is stored.
// stopped_message_generation is a press on a draft's own Stop button (STREAM_MODE=draft).
var AllowedUpdates = []string{models.AllowedUpdateMessage, models.AllowedUpdateCallbackQuery, models.AllowedUpdateStoppedMessageGeneration}

// Inbox is what intake needs of the update store.
type Inbox interface {
	Save(ctx context.Context, us []inbox.Incoming) (fresh []inbox.Update, err error)
	SaveUndecodable(ctx context.Context, u inbox.Incoming) (fresh bool, err error)
}

// Deps is what intake needs from the rest of the bot.
type Deps struct {
	TG    *tg.Client
	Inbox Inbox
	// Handle takes an update saved as inbox entry seq, without waiting on Telegram.
	Handle func(ctx context.Context, seq int64, u *models.Update)
	Log    *slog.Logger
	// SaveFailed, if set, is told about updates that could not be saved (a full disk): not
	// confirmed, Telegram sends them again; the users may be told to wait.
	SaveFailed func(ctx context.Context, us []*models.Update, err error)
}

// take decodes, saves and hands on (with handleCtx) a batch, and returns the offset past it. An
// update that cannot be decoded is kept raw (for a later version), logged once, and skipped.
func (d Deps) take(ctx, handleCtx context.Context, raws []json.RawMessage) (next int64, err error) {
	var recs []inbox.Incoming
	var us []*models.Update
	byID := map[int64]*models.Update{}
	for _, raw := range raws {
		var u models.Update
		uerr := json.Unmarshal(raw, &u)
		if uerr == nil && u.ID != 0 {
			recs = append(recs, inbox.Incoming{ID: u.ID, Payload: raw})
			us = append(us, &u)
			byID[u.ID] = &u
			next = max(next, u.ID+1)
			continue
		}
		var id struct {
			ID int64 `json:"update_id"`
		}
		if json.Unmarshal(raw, &id) != nil || id.ID == 0 {
			d.Log.Error("skipping an update without an update_id", "err", uerr)
			continue
		}
		fresh, err := d.Inbox.SaveUndecodable(ctx, inbox.Incoming{ID: id.ID, Payload: raw})
		if err != nil {
			return 0, err
		}
		if fresh {
			d.Log.Error("kept an update this version cannot decode, and skipped it", "update_id", id.ID, "err", uerr)
		}
		next = max(next, id.ID+1)
	}
	if len(recs) == 0 {
		return next, nil
	}
	entries, err := d.Inbox.Save(ctx, recs) // exactly as Telegram sent them; those seen before are not fresh
	if err != nil {
		if d.SaveFailed != nil {
			d.SaveFailed(ctx, us, err)
		}
		return 0, err
	}
	for _, e := range entries {
		d.Handle(handleCtx, e.Seq, byID[e.ID])
	}
	return next, nil
}

// Poll long-polls getUpdates until ctx ends; updates are handled with handleCtx. Unlike
// go-telegram/bot's poller, which confirms an update once queued, it confirms a batch once saved.
//
// It never polls from a remembered offset: an offset confirms (deletes) every update below it,
// and after a week without updates Telegram numbers the next one at random, possibly below every
// id seen. So a saved batch is confirmed by one call with its highest id + 1 right after it was
// saved (while the numbering is sequential), and every other call has no offset: Telegram then
// returns whatever is unconfirmed, whatever its id.
func Poll(ctx, handleCtx context.Context, deps Deps, timeout time.Duration) error {
	confirm := int64(0) // the offset that confirms the last batch saved; 0: none to confirm
	retry := &backoff.ExponentialBackOff{InitialInterval: 500 * time.Millisecond, Multiplier: 2, MaxInterval: 30 * time.Second}
	wait := time.Duration(0)
	for {
		if err := pace.SleepUntil(ctx, time.Now().Add(wait)); err != nil {
			return nil
		}
		poll := timeout
		if confirm != 0 {
			poll = 0 // confirming: take what is there now, and poll without an offset after
		}
		raws, err := getUpdates(ctx, deps.TG, confirm, poll)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, tgbot.ErrorUnauthorized) {
			return errors.New("intake: Telegram rejected TELEGRAM_TOKEN (401 Unauthorized)")
		}
		if err != nil {
			wait = retry.NextBackOff()
			if d, ok := tg.RetryAfter(err); ok {
				wait = d
			}
			deps.Log.Warn("getUpdates failed", "err", err, "retry_in", wait)
			continue
		}
		wait, confirm = 0, 0
		retry.Reset()
		if len(raws) == 0 {
			continue
		}
		if confirm, err = deps.take(ctx, handleCtx, raws); err != nil {
			// Not confirmed to Telegram: it sends them again on the next call.
			wait = time.Second
			deps.Log.Error("could not save updates; Telegram will send them again", "err", err)
		}
	}
}

// getUpdates asks for the updates Telegram holds, waiting up to timeout; offset 0 is left out
// (every unconfirmed update comes back). Its errors are go-telegram/bot's, for tg to tell apart.
func getUpdates(ctx context.Context, c *tg.Client, offset int64, timeout time.Duration) ([]json.RawMessage, error) {
	params := map[string]any{
		"timeout":         int(timeout / time.Second),
		"allowed_updates": AllowedUpdates,
	}
	if offset != 0 {
		params["offset"] = offset
	}
	body, _ := json.Marshal(params)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.MethodURL("getUpdates"), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: read: %w", err)
	}
	var r struct {
		OK          bool              `json:"ok"`
		Result      []json.RawMessage `json:"result"`
		ErrorCode   int               `json:"error_code"`
		Description string            `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	switch err := json.Unmarshal(raw, &r); {
	case err != nil:
		return nil, fmt.Errorf("getUpdates: HTTP %d, undecodable body: %w", resp.StatusCode, err)
	case r.OK:
		return r.Result, nil
	case r.ErrorCode == http.StatusTooManyRequests:
		return nil, &tgbot.TooManyRequestsError{Message: r.Description, RetryAfter: r.Parameters.RetryAfter}
	case r.ErrorCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("getUpdates: %w: %s", tgbot.ErrorUnauthorized, r.Description)
	}
	return nil, fmt.Errorf("getUpdates: telegram: %d %s", r.ErrorCode, r.Description)
}
