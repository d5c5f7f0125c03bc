package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// health remembers the outcome of the last Bot API call, for GET /healthz.
//
// A call counts as good when Telegram answered it, even with a refusal that concerns that one
// call (400 "message is not modified", 403 "blocked by the user") or with 429 flood control:
// those show Telegram is reachable and takes the token, and a health check that failed on them
// would have a container restarted for a user blocking the bot. A call is bad when Telegram
// could not be reached, failed (5xx), or refused the bot itself: 401/404 (the token) or 409
// (another instance is polling, or a webhook is set while this one polls).
type health struct {
	mu     sync.Mutex
	reason string    // "" while the last call was good
	at     time.Time // zero until the first call
}

func (h *health) telegram(method string, resp *http.Response, err error) {
	reason := ""
	switch {
	case err != nil:
		reason = fmt.Sprintf("telegram: %s: unreachable: %v", method, err)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusNotFound:
		reason = fmt.Sprintf("telegram: %s: %d: Telegram rejects TELEGRAM_TOKEN", method, resp.StatusCode)
	case resp.StatusCode == http.StatusConflict:
		reason = fmt.Sprintf("telegram: %s: 409 conflict: another instance uses this token, or a webhook is set", method)
	case resp.StatusCode >= 500:
		reason = fmt.Sprintf("telegram: %s: answered %d", method, resp.StatusCode)
	}
	h.mu.Lock()
	h.reason, h.at = reason, time.Now()
	h.mu.Unlock()
}

// check returns "" when the bot is healthy, else a one-line reason.
func (b *Bot) check(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.store.Ping(ctx); err != nil {
		return "database: " + oneLine(err.Error())
	}
	h := &b.health
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.at.IsZero():
		return "telegram: not called yet"
	case h.reason != "":
		return oneLine(h.reason) + " (" + time.Since(h.at).Round(time.Second).String() + " ago)"
	}
	return ""
}

func (b *Bot) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if reason := b.check(r.Context()); reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, b.scrub(errors.New(reason)))
		return
	}
	fmt.Fprintln(w, "ok")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// CheckHealth asks the bot listening on listenAddr for GET /healthz over loopback and returns its
// one-line answer; an error when it is unreachable or unhealthy. It backs the binary's
// -healthcheck flag, for Docker's HEALTHCHECK in an image without curl.
func CheckHealth(ctx context.Context, listenAddr string) (string, error) {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: LISTEN_ADDR %q is not host:port", listenAddr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every interface: loopback is one of them
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	reason := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("healthcheck: %d: %s", resp.StatusCode, reason)
	}
	return reason, nil
}
