package intake

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sync"
	"time"

	"aurabot/bot/ops"
)

const (
	maxWebhookBody = 1 << 20                           // the largest update accepted; Telegram's are a few KiB
	secretHeader   = "X-Telegram-Bot-Api-Secret-Token" // carries setWebhook's secret_token
)

// WebhookPath is the path the webhook is served at for a WEBHOOK_URL: the URL's own, so that a
// reverse proxy can pass requests through unchanged. It refuses a path that is not clean, which
// the HTTP mux would serve as another route or none.
func WebhookPath(webhookURL string) (string, error) {
	u, err := url.Parse(webhookURL)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch p := cmp.Or(u.EscapedPath(), "/"); {
	case path.Clean(p) != p:
		return "", fmt.Errorf("path %q is not clean (no //, no . or .. segments, no trailing /)", p)
	case p == "/healthz" || p == "/metrics":
		return "", errors.New("path " + p + " is taken by the bot's own endpoint")
	default:
		return p, nil
	}
}

// Webhook takes updates that Telegram posts, once Open is called (after the updates left from
// before a restart are queued), one at a time in the order they arrive, as polling does, though
// Telegram may call over several connections at once.
type Webhook struct {
	deps   Deps
	secret string
	count  func(code int) // counts requests by status, for metrics
	// refused logs wrong secrets once a minute: anyone who finds the URL could loop them.
	refused *ops.Repeated

	mu        sync.Mutex // held while an update is saved and handed on
	open      chan struct{}
	closed    chan struct{}
	handleCtx context.Context // set before open is closed
	stopped   bool
}

// NewWebhook returns a webhook handler that checks secret; count, if set, gets every status.
func NewWebhook(deps Deps, secret string, count func(code int)) *Webhook {
	return &Webhook{
		deps: deps, secret: secret, count: count, open: make(chan struct{}), closed: make(chan struct{}),
		refused: ops.NewRepeated(deps.Log, slog.LevelWarn, "webhook requests with a wrong or missing secret", time.Minute),
	}
}

// Open lets requests in: from now on updates are handled with handleCtx.
func (wh *Webhook) Open(handleCtx context.Context) {
	wh.handleCtx = handleCtx
	close(wh.open)
}

// Close turns requests away (503, so Telegram sends them again after the restart). It waits for
// the request being handed on, so that no update is handled after it returns.
func (wh *Webhook) Close() {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if !wh.stopped {
		wh.stopped = true
		close(wh.closed)
	}
	wh.refused.Close()
}

// ServeHTTP takes one update, answering 200 only once it is saved (or kept raw): Telegram sends
// again what the bot could not keep. A wrong secret is refused before the body is read.
func (wh *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := wh.take(w, r)
	if wh.count != nil {
		wh.count(code)
	}
	if code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (wh *Webhook) take(w http.ResponseWriter, r *http.Request) int {
	if got := r.Header.Get(secretHeader); got == "" || !ops.SameSecret(got, wh.secret) {
		wh.refused.Log("remote", r.RemoteAddr)
		return http.StatusUnauthorized
	}
	if r.ContentLength > maxWebhookBody {
		return http.StatusRequestEntityTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	if err != nil {
		return http.StatusBadRequest
	}
	var id struct {
		ID int64 `json:"update_id"`
	}
	if err := json.Unmarshal(raw, &id); err != nil || id.ID == 0 {
		wh.deps.Log.Warn("webhook request is not an update", "err", err)
		return http.StatusBadRequest
	}

	select {
	case <-wh.open:
	case <-wh.closed:
		return http.StatusServiceUnavailable
	case <-r.Context().Done():
		return http.StatusServiceUnavailable
	}
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if wh.stopped {
		return http.StatusServiceUnavailable
	}
	if _, err := wh.deps.take(r.Context(), wh.handleCtx, []json.RawMessage{raw}); err != nil {
		wh.deps.Log.Error("could not save an update; Telegram will send it again", "update_id", id.ID, "err", err)
		return http.StatusInternalServerError
	}
	return http.StatusOK
}
