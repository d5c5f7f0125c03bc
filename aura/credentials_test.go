package aura

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeCredentials is a Credentials whose answers a test scripts.
type fakeCredentials struct {
	mu    sync.Mutex
	calls []bool // the refresh argument of each call
	fn    func(ctx context.Context, refresh bool) (string, string, error)
}

func (f *fakeCredentials) Credentials(ctx context.Context, refresh bool) (string, string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, refresh)
	f.mu.Unlock()
	return f.fn(ctx, refresh)
}

func (f *fakeCredentials) refreshes() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.calls...)
}

// rotating returns credentials that change on each refresh: "check=old"
// first, then "check=new".
func rotating() *fakeCredentials {
	return &fakeCredentials{fn: func(_ context.Context, refresh bool) (string, string, error) {
		if refresh {
			return "check=new-cookie-value", "Browser/2", nil
		}
		return "check=old-cookie-value", "Browser/1", nil
	}}
}

const checkPage = "<!DOCTYPE html><html><body>Checking your browser...</body></html>"

// checkServer answers like a site behind a browser check: the reply only
// with the wanted cookie and User-Agent, else status and an HTML page.
func checkServer(t *testing.T, status int, cookie, ua string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(t, r)
		n.Add(1)
		if r.Header.Get("Cookie") != cookie || r.Header.Get("User-Agent") != ua {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(checkPage))
			return
		}
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestCredentialsAreSent(t *testing.T) {
	srv, _ := checkServer(t, http.StatusForbidden, "check=old-cookie-value", "Browser/1")
	creds := rotating()
	c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: creds})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	if r.err != nil || r.text() != "hello" {
		t.Fatalf("got (%q, %v), want (\"hello\", nil)", r.text(), r.err)
	}
	if got := creds.refreshes(); len(got) != 1 || got[0] {
		t.Errorf("got Credentials calls with refresh %v, want [false]", got)
	}
}

func TestConfiguredCredentialsWin(t *testing.T) {
	srv, _ := checkServer(t, http.StatusForbidden, "mine=1", "Mine/1")
	c := newTestClient(t, Config{BaseURL: srv.URL, Cookies: "mine=1", UserAgent: "Mine/1", Credentials: rotating()})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	if r.err != nil || r.text() != "hello" {
		t.Fatalf("got (%q, %v), want (\"hello\", nil)", r.text(), r.err)
	}
}

func TestRefusedReplyIsRetriedWithFreshCredentials(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, requests := checkServer(t, status, "check=new-cookie-value", "Browser/2")
			creds := rotating()
			c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: creds})
			r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
			if r.err != nil || r.text() != "hello" {
				t.Fatalf("got (%q, %v), want (\"hello\", nil)", r.text(), r.err)
			}
			if got := creds.refreshes(); len(got) != 2 || got[0] || !got[1] {
				t.Errorf("got Credentials calls with refresh %v, want [false true]", got)
			}
			// A 503 from a browser check is not retried with the same
			// cookies: one request before the capture, one after.
			if got := requests.Load(); got != 2 {
				t.Errorf("got %d requests, want 2", got)
			}
		})
	}
}

func TestRefusedTwiceGivesTheStatusError(t *testing.T) {
	srv, requests := checkServer(t, http.StatusForbidden, "never", "never")
	creds := rotating()
	c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: creds})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	var se *StatusError
	if !errors.As(r.err, &se) || se.StatusCode != http.StatusForbidden {
		t.Fatalf("got error %v, want a *StatusError with 403", r.err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("got %d requests, want 2 (one retry after a fresh capture)", got)
	}
}

func TestRefusedIsNotResentWithTheSameCredentials(t *testing.T) {
	srv, requests := checkServer(t, http.StatusForbidden, "never", "never")
	same := &fakeCredentials{fn: func(context.Context, bool) (string, string, error) {
		return "check=old-cookie-value", "Browser/1", nil
	}}
	c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: same})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	var se *StatusError
	if !errors.As(r.err, &se) || se.StatusCode != http.StatusForbidden {
		t.Fatalf("got error %v, want a *StatusError with 403", r.err)
	}
	if got := same.refreshes(); len(got) != 2 {
		t.Errorf("got Credentials calls with refresh %v, want [false true]", got)
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("got %d requests, want 1: the refresh brought nothing new", got)
	}
}

func TestOtherRefusalsAreNotRecaptured(t *testing.T) {
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
	}{
		{"403 with JSON", http.StatusForbidden, "application/json", `{"error":"bad key"}`},
		{"401 with HTML", http.StatusUnauthorized, "text/html", checkPage},
		{"500 with HTML", http.StatusInternalServerError, "text/html", checkPage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			creds := rotating()
			c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: creds})
			r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
			var se *StatusError
			if !errors.As(r.err, &se) || se.StatusCode != tt.status {
				t.Fatalf("got error %v, want a *StatusError with %d", r.err, tt.status)
			}
			if got := creds.refreshes(); len(got) != 1 {
				t.Errorf("got Credentials calls with refresh %v, want one call", got)
			}
		})
	}
}

func TestCredentialsErrorIsErrBrowserCapture(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	defer srv.Close()
	cause := errors.New("browser: no Chromium-family browser found")
	creds := &fakeCredentials{fn: func(context.Context, bool) (string, string, error) { return "", "", cause }}
	c := newTestClient(t, Config{BaseURL: srv.URL, Credentials: creds})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	if !errors.Is(r.err, ErrBrowserCapture) || !errors.Is(r.err, cause) {
		t.Fatalf("got error %v, want one matching ErrBrowserCapture and the cause", r.err)
	}
	if got := requests.Load(); got != 0 {
		t.Errorf("got %d requests, want none", got)
	}
}

func TestCancelledWhileCapturing(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	creds := &fakeCredentials{fn: func(ctx context.Context, _ bool) (string, string, error) {
		cancel()
		<-ctx.Done()
		return "", "", ctx.Err()
	}}
	c := newTestClient(t, Config{BaseURL: "http://127.0.0.1:1", Credentials: creds})
	r := collect(t, c.Stream(ctx, []Message{{Role: RoleUser, Content: "hi"}}))
	if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, ErrBrowserCapture) {
		t.Fatalf("got error %v, want context.Canceled and not ErrBrowserCapture", r.err)
	}
}

func TestCapturedControlCharactersAreRejected(t *testing.T) {
	const secret = "s3cr3t"
	creds := &fakeCredentials{fn: func(context.Context, bool) (string, string, error) {
		return "a=" + secret + "\r\nX-Evil: 1", "ua", nil
	}}
	c := newTestClient(t, Config{BaseURL: "http://127.0.0.1:1", Credentials: creds})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
	if !errors.Is(r.err, ErrBrowserCapture) || strings.Contains(r.err.Error(), secret) {
		t.Fatalf("got error %v, want ErrBrowserCapture without the cookie", r.err)
	}
}

func TestLooksHTML(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{checkPage, true},
		{"\ufeff  <html lang=en>", true},
		{"<!-- cf --><!DOCTYPE HTML>", true},
		{"<head><title>Just a moment...</title>", true},
		{"\n<script>location.reload()</script>", true},
		{"<!-- unclosed comment <html>", false},
		{`{"error": "<html>"}`, false},
		{"Error", false},
		{"", false},
		{"<htm", false},
		{"<xml>", false},
	}
	for _, tt := range tests {
		if got := looksHTML(tt.body); got != tt.want {
			t.Errorf("looksHTML(%q): got %v, want %v", tt.body, got, tt.want)
		}
	}
}

func FuzzLooksHTML(f *testing.F) {
	for _, s := range []string{checkPage, "<!-- a --><html>", "Error", `{"error":1}`, "\ufeff<body>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got := looksHTML(body)
		// White space before the page never changes the answer (a byte
		// order mark only counts at the very start).
		if !strings.HasPrefix(body, "\ufeff") && got != looksHTML(" \n"+body) {
			t.Errorf("looksHTML(%q) = %v changes with leading white space", body, got)
		}
		if got && !strings.Contains(body, "<") {
			t.Errorf("looksHTML(%q) = true for a body without '<'", body)
		}
	})
}
