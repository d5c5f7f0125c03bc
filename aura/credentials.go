package aura

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Credentials supplies the cookies and User-Agent that a server behind a browser check expects
// (see Config.Credentials); aurabot/aura/browser takes them from a real browser.
type Credentials interface {
	// Credentials returns a Cookie header value and a User-Agent; either may be empty. refresh:
	// the server refused the last ones. It must return when ctx ends, and its errors must not
	// contain the cookies, which Config.Redact should know before they are returned.
	Credentials(ctx context.Context, refresh bool) (cookie, userAgent string, err error)
}

// ErrBrowserCapture means Config.Credentials could not supply cookies (no browser, a crash, a page
// that did not load); the error wraps the cause too. The request was not sent.
var ErrBrowserCapture = errors.New("aura: could not get the server's cookies from a browser")

// send streams one reply with c.creds' credentials, if set: a reply refused as a browser check
// would (see refused) is tried once more, with fresh ones.
func (c *Client) send(ctx context.Context, body []byte, yield func(Chunk, error) bool) error {
	if c.creds == nil {
		return c.stream(ctx, c.header, body, yield)
	}
	sent := false
	relay := func(ch Chunk, err error) bool {
		sent = true
		return yield(ch, err)
	}
	var last http.Header
	var refusal error
	for refresh := false; ; refresh = true {
		header, err := c.credentialHeader(ctx, refresh)
		if err != nil {
			return err
		}
		if refusal != nil && header.Get("Cookie") == last.Get("Cookie") && header.Get("User-Agent") == last.Get("User-Agent") {
			return refusal // nothing new to try: a capture that ran moments ago gave these
		}
		last = header
		err = c.stream(ctx, header, body, relay)
		if err == nil || refresh || sent || !c.refused(err) {
			return err
		}
		refusal = err
		c.log.InfoContext(ctx, "aura: the server refused the browser's cookies; capturing them again", "err", err)
	}
}

// credentialHeader returns the header with c.creds' credentials; configured ones win.
func (c *Client) credentialHeader(ctx context.Context, refresh bool) (http.Header, error) {
	cookie, ua, err := c.creds.Credentials(ctx, refresh)
	if err != nil {
		if ctx.Err() != nil {
			return nil, cancelError(ctx)
		}
		return nil, fmt.Errorf("%w: %w", ErrBrowserCapture, err)
	}
	if name := controlChar("cookies", cookie, "user agent", ua); name != "" {
		return nil, fmt.Errorf("%w: the captured %s contain a control character", ErrBrowserCapture, name)
	}
	h := c.header.Clone()
	if cookie != "" && !c.ownCookies {
		h.Set("Cookie", cookie)
	}
	if ua != "" && !c.ownUserAgent {
		h.Set("User-Agent", ua)
	}
	return h, nil
}

// refused reports whether err is a browser check's answer: 403, 429 or 503 with an HTML page,
// which a model server never sends. False without Config.Credentials.
func (c *Client) refused(err error) bool {
	var se *StatusError
	if c.creds == nil || !errors.As(err, &se) || se.inStream {
		return false
	}
	switch se.StatusCode {
	case http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return looksHTML(se.Body)
	}
	return false
}

// looksHTML reports whether body starts like HTML, after a byte order mark, space and comments.
func looksHTML(body string) bool {
	s := strings.TrimPrefix(body, "\ufeff")
	for {
		s = strings.TrimLeft(s, " \t\r\n\f")
		rest, ok := strings.CutPrefix(s, "<!--")
		if !ok {
			break
		}
		_, after, closed := strings.Cut(rest, "-->")
		if !closed {
			return false
		}
		s = after
	}
	return slices.ContainsFunc([]string{"<!doctype html", "<html", "<head", "<body", "<meta", "<title", "<script"},
		func(tag string) bool { return len(s) >= len(tag) && strings.EqualFold(s[:len(tag)], tag) })
}
