// Package ops is what operators see: GET /healthz, GET /metrics, the HTTP listener that serves
// them (and the webhook), and the log. One redaction point (Redactor) keeps every secret out of
// the log and of the errors that leave the process. It watches every Bot API call from under
// the HTTP client, so no call escapes it, and asks the store to really write.
//
// It reaches into no other room: the rooms report to it (Metrics), and it reports to nobody.
package ops

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Store is what health needs of the database: a real write, so that a full disk shows.
type Store interface {
	CheckWrite(ctx context.Context) error
}

// How long a Bot API call may go unanswered before health says Telegram is silent. getUpdates
// is a long poll: it gets the poll timeout on top.
const silentAfter = 5 * time.Second

// DefaultDiskEvery is how often, at most, /healthz really writes to the database: each check is
// a commit and a delete (two fsyncs) on the bot's single writer, and anyone who can reach the
// port could call it in a loop.
const DefaultDiskEvery = 5 * time.Second

// Health follows the Bot API calls, for GET /healthz. A call is good when Telegram answered it,
// even with a refusal of that one call (400, 403) or 429 flood control: Telegram is reachable and
// takes the token. It is bad when Telegram could not be reached, failed (5xx), or refused the bot
// itself: 401/404 (the token) or 409 (another instance polls, or a webhook is set). A call in
// flight for longer than silentAfter (getUpdates: its poll timeout more) is bad already.
type Health struct {
	pollTimeout, diskEvery time.Duration
	store                  Store
	now                    func() time.Time

	mu       sync.Mutex
	reason   string    // "" while the last answered call was good
	at       time.Time // when the last call was answered; zero until then
	inFlight map[*http.Request]flight

	// The last database check; diskMu is held while it writes, so that callers wait for it.
	diskMu     sync.Mutex
	diskAt     time.Time
	diskReason string
}

type flight struct {
	method string
	since  time.Time
}

// NewHealth returns a health check over store; pollTimeout is getUpdates' long-poll timeout, and
// diskEvery the least time between two real writes of the check (0: DefaultDiskEvery).
func NewHealth(store Store, pollTimeout, diskEvery time.Duration) *Health {
	if diskEvery <= 0 {
		diskEvery = DefaultDiskEvery
	}
	return &Health{store: store, pollTimeout: pollTimeout, diskEvery: diskEvery, now: time.Now, inFlight: map[*http.Request]flight{}}
}

func (h *Health) started(r *http.Request, method string) {
	h.mu.Lock()
	h.inFlight[r] = flight{method: method, since: h.now()}
	h.mu.Unlock()
}

func (h *Health) answered(r *http.Request, method string, resp *http.Response, err error) {
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
	delete(h.inFlight, r)
	h.reason, h.at = reason, h.now()
	h.mu.Unlock()
}

// forget drops a call we cancelled ourselves: it says nothing of Telegram.
func (h *Health) forget(r *http.Request) {
	h.mu.Lock()
	delete(h.inFlight, r)
	h.mu.Unlock()
}

// telegram returns "" while Telegram answers, else a one-line reason.
func (h *Health) telegram() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for _, f := range h.inFlight {
		limit := silentAfter
		if f.method == "getUpdates" {
			limit += h.pollTimeout
		}
		if waited := now.Sub(f.since); waited > limit {
			return fmt.Sprintf("telegram: %s: no answer for %s", f.method, waited.Round(time.Second))
		}
	}
	switch {
	case h.at.IsZero():
		return "telegram: not called yet"
	case h.reason != "":
		return oneLine(h.reason) + " (" + now.Sub(h.at).Round(time.Second).String() + " ago)"
	}
	return ""
}

// Quiet reports whether no call has been answered for d: time to ask Telegram something.
func (h *Health) Quiet(d time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now().Sub(h.at) >= d
}

// check returns "" when the bot is healthy, else a one-line reason.
func (h *Health) check(ctx context.Context) string {
	if reason := h.database(ctx); reason != "" {
		return reason
	}
	return h.telegram()
}

// database returns "" when a real write to the database succeeds, else a one-line reason. It
// writes at most once every diskEvery, and answers from the last write meanwhile.
func (h *Health) database(ctx context.Context) string {
	h.diskMu.Lock()
	defer h.diskMu.Unlock()
	if !h.diskAt.IsZero() && h.now().Sub(h.diskAt) < h.diskEvery {
		return h.diskReason
	}
	// Not cut by a caller who hangs up: the result is everyone's.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	h.diskReason = ""
	if err := h.store.CheckWrite(wctx); err != nil {
		h.diskReason = "database: " + oneLine(err.Error())
	}
	h.diskAt = h.now()
	return h.diskReason
}

// Handler serves GET /healthz. The reason it shows anyone who asks passes red first: a failed
// call's error quotes its URL, which holds the token.
func (h *Health) Handler(red *Redactor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if reason := h.check(r.Context()); reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, red.Redact(reason))
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// CheckHealth asks the bot listening on listenAddr for GET /healthz over loopback (-healthcheck)
// and returns its one-line answer; an error when it is unreachable or unhealthy.
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
