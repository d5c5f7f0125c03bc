package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/history"
)

// allowedUpdates are the update types the bot asks Telegram for.
var allowedUpdates = []string{"message", "edited_message", "callback_query"}

// poll long-polls getUpdates until ctx ends. go-telegram/bot's own poller confirms an update as
// soon as it is queued, before anything handled it; this one advances the offset only after an
// update has been handed to the bot, so nothing Telegram delivered is skipped.
func (b *Bot) poll(ctx, replyCtx context.Context) error {
	last, err := b.store.LastUpdateID(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped at once
		}
		return fmt.Errorf("bot: %w", err)
	}
	offset := last + 1
	if last == 0 {
		offset = 0
	}
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		updates, err := b.getUpdates(ctx, offset)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Code == http.StatusUnauthorized {
				return errors.New("bot: Telegram rejected TELEGRAM_TOKEN (401 Unauthorized)")
			}
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			b.log.Warn("getUpdates failed", "err", b.scrub(err), "retry_in", backoff)
			continue
		}
		backoff = 0
		if len(updates) == 0 {
			continue
		}
		fresh, err := b.save(ctx, updates)
		if err != nil {
			// Not confirmed to Telegram: it sends them again on the next call.
			backoff = time.Second
			b.log.Error("could not save updates; Telegram will send them again", "err", err)
			continue
		}
		for _, u := range fresh {
			b.handleUpdate(replyCtx, u)
		}
		offset = updates[len(updates)-1].ID + 1
	}
}

// save stores updates in the inbox and returns those not seen before.
func (b *Bot) save(ctx context.Context, updates []*models.Update) ([]*models.Update, error) {
	recs := make([]history.Update, 0, len(updates))
	byID := make(map[int64]*models.Update, len(updates))
	for _, u := range updates {
		raw, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("encode update %d: %w", u.ID, err)
		}
		recs = append(recs, history.Update{ID: u.ID, Payload: raw})
		byID[u.ID] = u
	}
	ids, err := b.store.SaveUpdates(ctx, recs)
	if err != nil {
		return nil, err
	}
	fresh := make([]*models.Update, 0, len(ids))
	for _, id := range ids {
		fresh = append(fresh, byID[id])
	}
	return fresh, nil
}

// recover handles what the inbox holds from before a crash or stop: updates never handled are
// handled now; replies that were streaming are finalised with an "interrupted" notice.
func (b *Bot) recover(ctx context.Context) error {
	pending, err := b.store.PendingUpdates(ctx)
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	if len(pending) > 0 {
		b.log.Info("resuming updates from before the restart", "count", len(pending))
	}
	for _, p := range pending {
		var u models.Update
		if err := json.Unmarshal(p.Payload, &u); err != nil {
			b.log.Error("dropping an undecodable update from the inbox", "update_id", p.ID, "err", err)
			b.finish(ctx, p.ID, history.Key{}, nil)
			continue
		}
		u.ID = p.ID
		if len(p.MessageIDs) > 0 && u.Message != nil {
			b.resumeInterrupted(ctx, p, u.Message)
			continue
		}
		b.handleUpdate(ctx, &u)
	}
	return nil
}

type apiError struct {
	Code        int
	Description string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("telegram: %d %s", e.Code, e.Description)
}

func (b *Bot) getUpdates(ctx context.Context, offset int64) ([]*models.Update, error) {
	body, _ := json.Marshal(map[string]any{
		"offset":          offset,
		"timeout":         int(b.cfg.PollTimeout / time.Second),
		"allowed_updates": allowedUpdates,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.APIURL+"/bot"+b.cfg.Token+"/getUpdates", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", b.scrub(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", b.scrub(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: read: %w", b.scrub(err))
	}
	var r struct {
		OK          bool             `json:"ok"`
		Result      []*models.Update `json:"result"`
		ErrorCode   int              `json:"error_code"`
		Description string           `json:"description"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("getUpdates: HTTP %d, undecodable body: %w", resp.StatusCode, err)
	}
	if !r.OK {
		return nil, fmt.Errorf("getUpdates: %w", &apiError{Code: r.ErrorCode, Description: r.Description})
	}
	return r.Result, nil
}
