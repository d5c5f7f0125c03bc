package bot

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// maxWebhookBody is the largest update the webhook accepts. Telegram's updates are a few KiB.
const maxWebhookBody = 1 << 20

// secretHeader carries the secret_token given to setWebhook on every webhook call.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

var secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// ValidWebhookSecret reports whether s is a secret_token Telegram accepts: 1-256 characters of
// A-Z, a-z, 0-9, _ and -.
func ValidWebhookSecret(s string) bool { return secretPattern.MatchString(s) }

// inbox lets webhook requests in once the updates left from before a restart have been queued,
// and serialises them, so that updates are saved and dispatched in the order they arrive: the
// same guarantees as polling, though Telegram may call over several connections at once.
type inbox struct {
	mu       sync.Mutex // held while an update is saved and dispatched
	open     chan struct{}
	closed   chan struct{}
	replyCtx context.Context // set before open is closed
	stopped  bool
}

func newInbox() *inbox {
	return &inbox{open: make(chan struct{}), closed: make(chan struct{})}
}

// start lets requests in: from now on updates go to handleUpdate with replyCtx.
func (in *inbox) start(replyCtx context.Context) {
	in.replyCtx = replyCtx
	close(in.open)
}

// stop turns requests away (503, so Telegram sends them again after the restart). It waits for
// the request being dispatched, so that no update reaches the queues after it returns.
func (in *inbox) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.stopped {
		in.stopped = true
		close(in.closed)
	}
}

// takeWebhooks lets webhook requests in and waits until ctx ends or the HTTP server fails.
func (b *Bot) takeWebhooks(ctx, replyCtx context.Context, srv *server) error {
	b.inbox.start(replyCtx)
	select {
	case <-ctx.Done():
		return nil
	case <-srv.stopped():
		return fmt.Errorf("bot: the webhook server stopped: %w", srv.err)
	}
}

// setWebhook points Telegram at WebhookURL with the secret and the update types the bot handles.
func (b *Bot) setWebhook(ctx context.Context) error {
	_, err := b.api.SetWebhook(ctx, &tgbot.SetWebhookParams{
		URL:            b.cfg.WebhookURL,
		SecretToken:    b.cfg.WebhookSecret,
		AllowedUpdates: allowedUpdates,
	})
	if err != nil {
		return fmt.Errorf("bot: setWebhook: %w", b.scrub(err))
	}
	return nil
}

// serveWebhook takes one update from Telegram. It answers 200 only once the update is saved in
// the inbox, so that Telegram sends again what the bot could not keep; a request without the
// right secret is refused before its body is read.
func (b *Bot) serveWebhook(w http.ResponseWriter, r *http.Request) {
	code := b.takeWebhook(w, r)
	b.metrics.webhookRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	if code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (b *Bot) takeWebhook(w http.ResponseWriter, r *http.Request) int {
	got := sha256.Sum256([]byte(r.Header.Get(secretHeader)))
	want := sha256.Sum256([]byte(b.cfg.WebhookSecret))
	// Hashing first makes the comparison constant-time in the length too.
	if r.Header.Get(secretHeader) == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		b.log.Warn("webhook request with a wrong or missing secret", "remote", r.RemoteAddr)
		return http.StatusUnauthorized
	}
	if r.ContentLength > maxWebhookBody {
		return http.StatusRequestEntityTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	if err != nil {
		return http.StatusBadRequest
	}
	var u models.Update
	if err := json.Unmarshal(raw, &u); err != nil || u.ID == 0 {
		b.log.Warn("webhook request is not an update", "err", err)
		return http.StatusBadRequest
	}

	in := b.inbox
	select {
	case <-in.open:
	case <-in.closed:
		return http.StatusServiceUnavailable
	case <-r.Context().Done():
		return http.StatusServiceUnavailable
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return http.StatusServiceUnavailable
	}
	fresh, err := b.save(r.Context(), []*models.Update{&u})
	if err != nil {
		b.log.Error("could not save an update; Telegram will send it again", "update_id", u.ID, "err", err)
		return http.StatusInternalServerError
	}
	for _, u := range fresh {
		b.handleUpdate(in.replyCtx, u)
	}
	return http.StatusOK
}
