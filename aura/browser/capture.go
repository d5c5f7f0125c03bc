package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"aurabot/aura/internal/reason"
)

// ErrNoBrowser means that no browser binary was found: Options.Browser is "auto" and none of the
// known names is on the PATH, or it names a file that does not exist or is not executable.
var ErrNoBrowser = errors.New("browser: no Chromium-family browser found")

// Auto is the Options.Browser value that looks for a browser on the PATH.
const Auto = "auto"

// Find returns the browser binary for an AURA_BROWSER setting: Auto looks for the known names on
// the PATH; anything else is a path, or a name on the PATH. Its errors match ErrNoBrowser.
func Find(setting string) (string, error) {
	if setting == Auto {
		names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
		for _, name := range names {
			if p, err := exec.LookPath(name); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%w on the PATH (looked for %s; install Debian's chromium package, or set AURA_BROWSER to its path)", ErrNoBrowser, strings.Join(names, ", "))
	}
	p, err := exec.LookPath(setting)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrNoBrowser, setting, errors.Unwrap(err))
	}
	return filepath.Clean(p), nil
}

type captured struct {
	cookie    string // a Cookie header value
	userAgent string
	cookies   int  // how many cookies are in cookie
	settled   bool // the cookies stopped changing before the timeout
}

// captureConfig is what a capture needs (see Options).
type captureConfig struct {
	browser string // Options.Browser
	url     string
	host    string
	proxy   string // a --proxy-server value, or empty
	// proxyUser and proxyPassword answer the proxy's authentication challenge.
	proxyUser, proxyPassword string
	timeout                  time.Duration
	// settle is how long the cookies must stay the same after the page loaded; poll is how
	// often they are read meanwhile.
	settle, poll time.Duration
	// closeGrace bounds the graceful close of the browser, before it is killed.
	closeGrace time.Duration
	log        *slog.Logger
	sandbox    *sandboxCheck // decides once whether Chromium runs in its sandbox
}

// capture runs one capture (see Capturer). Whatever happens, when it returns the browser's
// processes are gone and its profile is deleted (chromedp's ExecAllocator sees to both). Its
// errors never contain a cookie.
func capture(ctx context.Context, cfg captureConfig) (captured, error) {
	bin, err := Find(cfg.browser)
	if err != nil {
		return captured{}, err
	}
	deadline := time.Now().Add(cfg.timeout)
	life, cancelLife := context.WithDeadline(ctx, deadline.Add(cfg.closeGrace))
	defer cancelLife()

	// Chromium keeps its shared memory in files under TMPDIR (see disable-dev-shm-usage) and
	// leaves them when it is killed: give it a folder of its own, removed last. (A short name:
	// Chromium puts a socket in it, and socket paths are limited to 107 bytes.)
	tmp, err := os.MkdirTemp("", "aurabot-")
	if err != nil {
		return captured{}, fmt.Errorf("browser: %w", err)
	}
	defer os.RemoveAll(tmp)

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(bin),
		// Only what Chromium needs, never the bot's environment: it holds the bot token and
		// the keys (a .env file's values too), and the browser loads a third-party page.
		chromedp.NoInheritEnv,
		chromedp.Env(browserEnv(tmp)...),
		// (The profile is the allocator's default: a new temporary folder, deleted at the end.)
		// Look less like automation to a bot check: no navigator.webdriver, no infobar.
		chromedp.Flag("enable-automation", false),
		chromedp.Flag("disable-blink-features", "AutomationControlled"),
		chromedp.Flag("disable-gpu", true),
	)
	if cfg.proxy != "" {
		opts = append(opts, chromedp.ProxyServer(cfg.proxy),
			// Like the bot's own requests: loopback through the proxy too.
			chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	}
	if cfg.sandbox.allowed(ctx, bin, cfg.log) {
		opts = append(opts, chromedp.Flag("no-sandbox", false))
	} else {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	defer cancelAlloc() // kills every process that runs with the profile, removes the profile
	bctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		return captured{}, stepError(ctx, "start "+filepath.Base(bin), cfg.timeout, err)
	}
	cfg.log.DebugContext(ctx, "browser: started", "browser", bin, "took", time.Since(start))

	steps, cancelSteps := context.WithDeadline(bctx, deadline)
	res, err := visit(steps, cfg)
	cancelSteps()

	if ctx.Err() == nil {
		// Close gracefully, so that Chromium stops and reaps its own child processes (in a
		// container whose init does not reap, killed children would stay as zombies).
		// cancelAlloc kills whatever is left. A cancelled capture ends at once.
		closeCtx, cancelClose := context.WithTimeout(bctx, cfg.closeGrace)
		if err := chromedp.Cancel(closeCtx); err != nil {
			cfg.log.DebugContext(ctx, "browser: graceful close failed; killing it", "err", err)
		}
		cancelClose()
	}
	if err != nil {
		return captured{}, stepError(ctx, "capture", cfg.timeout, err)
	}
	return res, nil
}

// visit reads the User-Agent, opens the page and reads its cookies once they stop changing.
func visit(ctx context.Context, cfg captureConfig) (captured, error) {
	ver, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		return captured{}, fmt.Errorf("read the user agent: %w", err)
	}
	// Headless Chromium says "HeadlessChrome/..." where a desktop one says "Chrome/...": a bot
	// check refuses the first. The page and the bot's requests then send the desktop one.
	ua := strings.Replace(ver.UserAgent, "HeadlessChrome/", "Chrome/", 1)
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		return captured{}, fmt.Errorf("set the user agent: %w", err)
	}
	if cfg.proxyUser != "" || cfg.proxyPassword != "" {
		stop, err := answerProxyAuth(ctx, cfg.proxyUser, cfg.proxyPassword)
		if err != nil {
			return captured{}, fmt.Errorf("set up the proxy login: %w", err)
		}
		defer stop()
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(cfg.url)); err != nil {
		return captured{}, fmt.Errorf("open the page: %w", err)
	}

	// A browser check sets its cookie from a script, some time after the load event, and may
	// reload the page: wait until the cookies have been the same for cfg.settle.
	var last []*network.Cookie
	read := false
	stableSince := time.Now()
	tick := time.NewTicker(cfg.poll)
	defer tick.Stop()
	for {
		res, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
		if err != nil {
			if read && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The deadline fell during a read (a slow, busy page): the last cookies
				// read are still the page's latest.
				return result(last, ua, false), nil
			}
			return captured{}, fmt.Errorf("read the cookies: %w", err)
		}
		read = true
		cookies := forHost(res.Cookies, cfg.host)
		if !sameCookies(cookies, last) {
			last, stableSince = cookies, time.Now()
		} else if time.Since(stableSince) >= cfg.settle {
			return result(last, ua, true), nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The capture's deadline (the caller's context has none, and the browser's
				// life ends later): the page loaded, but its cookies kept changing.
				return result(last, ua, false), nil
			}
			return captured{}, ctx.Err()
		case <-tick.C:
		}
	}
}

func result(cookies []*network.Cookie, ua string, settled bool) captured {
	return captured{cookie: cookieHeader(cookies), userAgent: ua, cookies: len(cookies), settled: settled}
}

// stepError describes a failed step without any cookie, URL or output of the browser in it: a
// cancellation, a timeout or the step's own error.
func stepError(ctx context.Context, step string, timeout time.Duration, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("browser: %s: stopped: %w", step, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("browser: %s: the page did not load within %s: %w", step, timeout, err)
	}
	e := &oneLineError{msg: "browser: " + step + ": " + oneLine(err.Error(), 500), err: err}
	if errors.Is(err, context.Canceled) {
		// chromedp cancels its own context when the browser dies; the caller did not cancel,
		// and must not take it for its own.
		e.err = nil
	}
	return e
}

// oneLineError is an error whose text is one line of bounded length (chromedp puts the browser's
// whole output into a start error), with errors.Is and As seeing err.
type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }

// oneLine joins the non-blank lines of s with "; " and cuts the result to at most n bytes, at a
// character boundary.
func oneLine(s string, n int) string {
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if s = strings.Join(lines, "; "); len(s) <= n {
		return s
	}
	return reason.Clip(s, n) + "…"
}

// forHost returns the cookies a browser would send to host on some path: host-only cookies of
// host, and domain cookies of host or a parent of it.
func forHost(cookies []*network.Cookie, host string) []*network.Cookie {
	var out []*network.Cookie
	for _, c := range cookies {
		if c.Name != "" && domainMatch(host, c.Domain) {
			out = append(out, c)
		}
	}
	return out
}

// domainMatch reports whether a cookie of domain (CDP's spelling: a leading dot for a domain
// cookie) goes to host.
func domainMatch(host, domain string) bool {
	host, domain = strings.ToLower(host), strings.ToLower(domain)
	if d, ok := strings.CutPrefix(domain, "."); ok {
		return d != "" && (host == d || strings.HasSuffix(host, "."+d))
	}
	return host == domain
}

// sameCookies reports whether a and b hold the same cookies in the same order, values included.
func sameCookies(a, b []*network.Cookie) bool {
	return slices.EqualFunc(a, b, func(x, y *network.Cookie) bool {
		return x.Name == y.Name && x.Value == y.Value && x.Domain == y.Domain && x.Path == y.Path
	})
}

// cookieHeader joins cookies into a Cookie header value, the most specific path first, as a
// browser orders them.
func cookieHeader(cookies []*network.Cookie) string {
	sorted := slices.Clone(cookies)
	slices.SortStableFunc(sorted, func(a, b *network.Cookie) int { return len(b.Path) - len(a.Path) })
	parts := make([]string, 0, len(sorted))
	for _, c := range sorted {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}
