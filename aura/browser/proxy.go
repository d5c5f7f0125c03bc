package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// proxyServer turns an AURA_PROXY URL into Chromium's --proxy-server value and the user name and
// password in it, if any: Chromium takes no credentials there, and capture answers the proxy's
// challenge with them (answerProxyAuth). Its errors never contain the URL.
func proxyServer(raw string) (server, user, password string, err error) {
	if raw == "" {
		return "", "", "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", "", errors.New("browser: the proxy is not a URL with a host")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "http", "https", "socks5":
	case "socks5h":
		scheme = "socks5" // Chromium resolves names through a SOCKS5 proxy anyway
	default:
		return "", "", "", fmt.Errorf("browser: proxy scheme %q is not supported", u.Scheme)
	}
	if u.User != nil {
		if scheme == "socks5" {
			return "", "", "", errors.New("browser: Chromium cannot log in to a SOCKS5 proxy; use one without a user name and password, or an http:// proxy")
		}
		user = u.User.Username()
		password, _ = u.User.Password()
	}
	return scheme + "://" + u.Host, user, password, nil
}

// answerProxyAuth makes the page's requests pause, lets them go on, and answers a proxy's
// authentication challenge with user and password (once per request: a second challenge means
// they are wrong, and the request fails). stop ends it and waits for its goroutines.
func answerProxyAuth(ctx context.Context, user, password string) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	// Subscribe before enabling, so that no event is missed.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	challenges := chromedp.Events(ctx, fetch.AuthRequired)
	handle := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle}); err != nil {
		cancel()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	})
	wg.Go(func() {
		answered := map[fetch.RequestID]bool{}
		for ev, err := range challenges {
			if err != nil {
				return
			}
			answer := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
			if ev.AuthChallenge != nil && ev.AuthChallenge.Source == fetch.AuthChallengeSourceProxy && !answered[ev.RequestID] {
				answered[ev.RequestID] = true
				answer = &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user,
					Password: password,
				}
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID, AuthChallengeResponse: answer})
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}
