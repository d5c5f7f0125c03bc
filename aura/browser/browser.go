// Package browser takes the cookies and the User-Agent that a model server's page gives a real
// browser, for servers that sit behind a browser check (a script that sets a cookie before the
// site answers). It is what the reference provider did with a webdriver, done with a headless
// Chromium driven over the DevTools protocol.
//
// A Capturer runs the browser only during a capture: it starts Chromium with a fresh profile in
// a temporary folder, opens the page, waits for the cookies to settle, reads them, and closes
// the browser, killing any process left and deleting the profile. Between captures no browser
// runs. A Capturer is the aura.Credentials of an aura.Client.
//
// It is not a general browser automation package, and it never downloads a browser: Chromium
// must be installed.
package browser

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Defaults for zero Options fields.
const (
	DefaultRefresh = 30 * time.Minute
	DefaultTimeout = 30 * time.Second
)

// ErrClosed is returned by Credentials after Close.
var ErrClosed = errors.New("browser: closed")

// Options configures a Capturer.
type Options struct {
	// Browser is Auto or a Chromium-family binary, looked up at each capture.
	Browser string `env:"AURA_BROWSER"`
	// URL is the page to open: the model server's base URL (main sets AURA_URL).
	URL string
	// Proxy, when set, is the proxy the browser goes through (main sets AURA_PROXY); Chromium
	// cannot log in to a SOCKS5 one.
	Proxy string
	// Refresh is how long captured cookies are used before a request captures new ones.
	Refresh time.Duration `env:"AURA_BROWSER_REFRESH" envDefault:"30m"`
	// Timeout bounds a capture from the browser's start to the cookies read (closing the
	// browser may take a few seconds more).
	Timeout time.Duration `env:"AURA_BROWSER_TIMEOUT" envDefault:"30s"`
	// Logger receives the captures' records (never cookies); nil discards them.
	Logger *slog.Logger
	// Captured, when set, is told each capture's cookies and User-Agent before anyone else
	// sees them (main's redactor learns them there).
	Captured func(cookie, userAgent string)
}

// Capturer supplies captured cookies and User-Agent, capturing them when there are none yet,
// when they are older than Options.Refresh, and on a caller's refresh. One capture runs at a
// time, and callers that come meanwhile wait for it. After a failure, callers get it at once
// until a backoff has passed. It is safe for concurrent use.
type Capturer struct {
	capture  func(ctx context.Context) (captured, error)
	captured func(cookie, userAgent string) // Options.Captured; nil: nobody
	now      func() time.Time
	log      *slog.Logger

	refresh                time.Duration
	minGap                 time.Duration // cookies younger are kept on refresh: one capture serves replies refused together
	backoffMin, backoffMax time.Duration // the wait after a failure, doubled per failure in a row

	life context.Context // ends at Close; the parent of every capture
	stop context.CancelFunc
	wg   sync.WaitGroup // the capture goroutine

	mu       sync.Mutex
	cur      *captured // the last good capture
	at       time.Time // when cur was captured
	inflight *call
	failure  error // the last capture's error, until retryAt
	retryAt  time.Time
	retry    *backoff.ExponentialBackOff // since the last success; nil before a failure
	closed   bool
}

// call is one capture in progress and the callers waiting for it.
type call struct {
	done    chan struct{} // closed when res and err are set
	res     captured
	err     error
	waiters int
	cancel  context.CancelFunc
}

// New checks opts and returns a Capturer. No browser starts until the first call of Credentials.
func New(opts Options) (*Capturer, error) {
	if opts.Browser == "" {
		return nil, errors.New("browser: no browser set (use auto or a path)")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, errors.New("browser: the page URL is not an http(s) URL with a host")
	}
	proxy, proxyUser, proxyPassword, err := proxyServer(opts.Proxy)
	if err != nil {
		return nil, err
	}
	if opts.Refresh < 0 || opts.Timeout < 0 {
		return nil, errors.New("browser: refresh and timeout must not be negative")
	}
	opts.Refresh, opts.Timeout = cmp.Or(opts.Refresh, DefaultRefresh), cmp.Or(opts.Timeout, DefaultTimeout)
	log := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	cfg := captureConfig{
		browser: opts.Browser, url: opts.URL, host: u.Hostname(),
		proxy: proxy, proxyUser: proxyUser, proxyPassword: proxyPassword,
		timeout: opts.Timeout, settle: min(2*time.Second, opts.Timeout/4), poll: 200 * time.Millisecond,
		closeGrace: 5 * time.Second, log: log, sandbox: newSandboxCheck(),
	}
	c := newCapturer(func(ctx context.Context) (captured, error) { return capture(ctx, cfg) }, opts.Refresh, log)
	c.captured = opts.Captured
	return c, nil
}

func newCapturer(capture func(context.Context) (captured, error), refresh time.Duration, log *slog.Logger) *Capturer {
	life, stop := context.WithCancel(context.Background())
	return &Capturer{
		capture:    capture,
		now:        time.Now,
		log:        log,
		refresh:    refresh,
		minGap:     min(15*time.Second, refresh),
		backoffMin: 5 * time.Second,
		backoffMax: 2 * time.Minute,
		life:       life,
		stop:       stop,
	}
}

// Credentials returns the captured Cookie header value and User-Agent, capturing them first when
// needed (see Capturer); refresh: the server refused the current cookies. A capture that every
// waiter has given up on is stopped. Its errors never contain a cookie.
func (c *Capturer) Credentials(ctx context.Context, refresh bool) (cookie, userAgent string, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", "", ErrClosed
	}
	stale := c.cur
	// A periodic capture that failed leaves the cookies in hand, which may still work (a
	// refused reply asks again).
	orStale := func(err error) (string, string, error) {
		if stale != nil && !refresh && !errors.Is(err, ErrClosed) {
			return stale.cookie, stale.userAgent, nil
		}
		return "", "", err
	}
	cl := c.inflight
	if cl == nil {
		now := c.now()
		if stale != nil {
			age := now.Sub(c.at)
			if (!refresh && age < c.refresh) || (refresh && age < c.minGap) {
				c.mu.Unlock()
				return stale.cookie, stale.userAgent, nil
			}
		}
		if c.failure != nil && now.Before(c.retryAt) {
			err := fmt.Errorf("browser: the last capture failed, next try in %s: %w", c.retryAt.Sub(now).Round(time.Second), c.failure)
			c.mu.Unlock()
			return orStale(err)
		}
		cl = c.start()
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		cl.waiters--
		if cl.waiters == 0 {
			// Nobody wants it any more: kill it, and let the next caller start afresh
			// instead of joining a dying capture.
			cl.cancel()
			if c.inflight == cl {
				c.inflight = nil
			}
		}
		c.mu.Unlock()
		return "", "", fmt.Errorf("browser: waiting for the capture: %w", ctx.Err())
	}
	if cl.err != nil {
		return orStale(cl.err)
	}
	return cl.res.cookie, cl.res.userAgent, nil
}

// start begins a capture in a goroutine that Close waits for. c.mu is held.
func (c *Capturer) start() *call {
	ctx, cancel := context.WithCancel(c.life)
	cl := &call{done: make(chan struct{}), cancel: cancel}
	c.inflight = cl
	c.wg.Go(func() {
		defer cancel()
		began := time.Now()
		c.log.DebugContext(ctx, "browser: capturing cookies")
		res, err := c.capture(ctx)
		took := time.Since(began)
		if err == nil && c.captured != nil {
			c.captured(res.cookie, res.userAgent) // before any log line, and before any waiter
		}

		c.mu.Lock()
		if c.inflight == cl {
			c.inflight = nil
		}
		switch {
		case ctx.Err() != nil:
			// Every waiter gave up, or Close: not the capture's failure, nothing to back off.
			err = ErrClosed
			if !c.closed {
				err = fmt.Errorf("browser: capture stopped: %w", context.Canceled)
			}
			c.log.InfoContext(ctx, "browser: capture stopped", "took", took)
		case err == nil:
			c.cur, c.at = &res, c.now()
			c.failure, c.retry = nil, nil
			if res.settled {
				c.log.InfoContext(ctx, "browser: captured cookies", "cookies", res.cookies, "took", took)
			} else {
				c.log.WarnContext(ctx, "browser: captured cookies that were still changing at the timeout", "cookies", res.cookies, "took", took)
			}
		default:
			if c.retry == nil {
				c.retry = &backoff.ExponentialBackOff{InitialInterval: c.backoffMin, Multiplier: 2, MaxInterval: c.backoffMax}
			}
			wait := c.retry.NextBackOff()
			c.failure, c.retryAt = err, c.now().Add(wait)
			c.log.ErrorContext(ctx, "browser: capture failed", "err", err, "took", took, "next_try_in", wait)
		}
		cl.res, cl.err = res, err
		c.mu.Unlock()
		close(cl.done)
	})
	return cl
}

// Close stops a capture in progress (killing its browser) and waits for it to end. Later calls
// of Credentials return ErrClosed.
func (c *Capturer) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
}

// Check checks AURA_BROWSER: empty (off), auto, a command on PATH or an executable's path (of
// any name: a wrapper script is as good).
func Check(s string) error {
	if s == "" || s == "auto" {
		return nil
	}
	if !strings.ContainsRune(s, os.PathSeparator) {
		if _, err := exec.LookPath(s); err != nil {
			return fmt.Errorf("%q is not auto, a path, nor a command on PATH", s)
		}
		return nil
	}
	fi, err := os.Stat(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q: no such file (want empty, auto, or the path of a Chromium-family browser)", s)
	case fi.IsDir():
		return fmt.Errorf("%q is a folder: give the browser's executable inside it", s)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%q is not executable", s)
	}
	return nil
}
