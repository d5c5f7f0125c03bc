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
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/tg"
	"aurabot/history/inbox"
)

// AllowedUpdates are the update types the bot asks Telegram for.
var AllowedUpdates = []string{"message", "edited_message", "callback_query"}

// Inbox is what intake needs of the update store.
type Inbox interface {
	Save(ctx context.Context, us []inbox.Update) (fresh []int64, err error)
	SaveUndecodable(ctx context.Context, id int64, payload []byte) error
	LastUpdateID(ctx context.Context) (int64, error)
}

// Handler takes an update once it is saved. It must return without waiting on Telegram.
type Handler func(ctx context.Context, u *models.Update)

// Deps is what intake needs from the rest of the bot.
type Deps struct {
	TG     *tg.Client
	Inbox  Inbox
	Handle Handler
	Log    *slog.Logger
	// SaveFailed, if set, is told about updates that could not be saved (a full disk): they are
	// not confirmed, so Telegram sends them again, and the users may be told to wait.
	SaveFailed func(ctx context.Context, us []*models.Update, err error)
}

// Poller long-polls getUpdates. go-telegram/bot's own poller confirms an update as soon as it is
// queued, before anything handled it; this one advances the offset only after each update is
// saved.
type Poller struct {
	deps    Deps
	timeout time.Duration

	once sync.Map // update ids logged as undecodable, so each is logged once
}

// NewPoller returns a poller with the given long-polling timeout.
func NewPoller(deps Deps, timeout time.Duration) *Poller {
	return &Poller{deps: deps, timeout: timeout}
}

// Run polls until ctx ends; updates are handled with handleCtx.
func (p *Poller) Run(ctx, handleCtx context.Context) error {
	last, err := p.deps.Inbox.LastUpdateID(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("intake: %w", err)
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
		raws, err := p.getUpdates(ctx, offset)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ae *APIError
			if errors.As(err, &ae) && ae.Code == http.StatusUnauthorized {
				return errors.New("intake: Telegram rejected TELEGRAM_TOKEN (401 Unauthorized)")
			}
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			p.deps.Log.Warn("getUpdates failed", "err", err, "retry_in", backoff)
			continue
		}
		backoff = 0
		if len(raws) == 0 {
			continue
		}
		next, err := p.take(ctx, handleCtx, raws)
		if err != nil {
			// Not confirmed to Telegram: it sends them again on the next call.
			backoff = time.Second
			p.deps.Log.Error("could not save updates; Telegram will send them again", "err", err)
			continue
		}
		offset = max(offset, next)
	}
}

// take decodes, saves and hands on one batch of updates, and returns the next offset.
func (p *Poller) take(ctx, handleCtx context.Context, raws []json.RawMessage) (int64, error) {
	us, next, err := decode(ctx, p.deps, raws, &p.once)
	if err != nil {
		return 0, err
	}
	fresh, err := save(ctx, p.deps, us)
	if err != nil {
		return 0, err
	}
	for _, u := range fresh {
		p.deps.Handle(handleCtx, u)
	}
	return next, nil
}

// decode decodes each raw update on its own. One that cannot be decoded is kept raw in the
// inbox (for a later version to handle), logged once, and skipped. next is the offset past all.
func decode(ctx context.Context, deps Deps, raws []json.RawMessage, logged *sync.Map) (us []*models.Update, next int64, err error) {
	for _, raw := range raws {
		var u models.Update
		uerr := json.Unmarshal(raw, &u)
		if uerr == nil && u.ID != 0 {
			us = append(us, &u)
			next = max(next, u.ID+1)
			continue
		}
		var id struct {
			ID int64 `json:"update_id"`
		}
		if json.Unmarshal(raw, &id) != nil || id.ID == 0 {
			deps.Log.Error("skipping an update without an update_id", "err", uerr)
			continue
		}
		if err := deps.Inbox.SaveUndecodable(ctx, id.ID, raw); err != nil {
			return nil, 0, err
		}
		if _, seen := logged.LoadOrStore(id.ID, true); !seen {
			deps.Log.Error("kept an update this version cannot decode, and skipped it", "update_id", id.ID, "err", uerr)
		}
		next = max(next, id.ID+1)
	}
	return us, next, nil
}

// save stores updates in the inbox and returns those not seen before.
func save(ctx context.Context, deps Deps, updates []*models.Update) ([]*models.Update, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	recs := make([]inbox.Update, 0, len(updates))
	byID := make(map[int64]*models.Update, len(updates))
	for _, u := range updates {
		raw, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("encode update %d: %w", u.ID, err)
		}
		recs = append(recs, inbox.Update{ID: u.ID, Payload: raw})
		byID[u.ID] = u
	}
	ids, err := deps.Inbox.Save(ctx, recs)
	if err != nil {
		if deps.SaveFailed != nil {
			deps.SaveFailed(ctx, updates, err)
		}
		return nil, err
	}
	fresh := make([]*models.Update, 0, len(ids))
	for _, id := range ids {
		fresh = append(fresh, byID[id])
	}
	return fresh, nil
}

// APIError is an error answer of the Bot API to getUpdates.
type APIError struct {
	Code        int
	Description string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram: %d %s", e.Code, e.Description)
}

func (p *Poller) getUpdates(ctx context.Context, offset int64) ([]json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{
		"offset":          offset,
		"timeout":         int(p.timeout / time.Second),
		"allowed_updates": AllowedUpdates,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.deps.TG.MethodURL("getUpdates"), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", p.deps.TG.Scrub(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.deps.TG.HTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("getUpdates: %w", p.deps.TG.Scrub(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("getUpdates: read: %w", p.deps.TG.Scrub(err))
	}
	var r struct {
		OK          bool              `json:"ok"`
		Result      []json.RawMessage `json:"result"`
		ErrorCode   int               `json:"error_code"`
		Description string            `json:"description"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("getUpdates: HTTP %d, undecodable body: %w", resp.StatusCode, err)
	}
	if !r.OK {
		return nil, fmt.Errorf("getUpdates: %w", &APIError{Code: r.ErrorCode, Description: r.Description})
	}
	return r.Result, nil
}
