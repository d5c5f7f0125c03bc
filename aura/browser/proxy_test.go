package browser

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// forwardProxy is an HTTP forward proxy for plain-http targets. With a
// user set, it wants Basic proxy authentication (407 without it).
type forwardProxy struct {
	*httptest.Server
	user, password string
	served         atomic.Int32 // requests forwarded
	challenged     atomic.Int32 // 407s sent
}

func newForwardProxy(t *testing.T, user, password string) *forwardProxy {
	p := &forwardProxy{user: user, password: password}
	transport := &http.Transport{Proxy: nil}
	t.Cleanup(transport.CloseIdleConnections)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		if p.user != "" {
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.password))
			if r.Header.Get("Proxy-Authorization") != want {
				p.challenged.Add(1)
				w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusProxyAuthRequired)
				return
			}
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Authorization")
		out.Header.Del("Proxy-Connection")
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		p.served.Add(1)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

func TestCaptureGoesThroughTheProxy(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv := newCheckServer(t, 300*time.Millisecond)
	proxy := newForwardProxy(t, "", "")
	cfg := testConfig(t, srv.URL, 30*time.Second)
	var err error
	if cfg.proxy, cfg.proxyUser, cfg.proxyPassword, err = proxyServer(proxy.URL); err != nil {
		t.Fatal(err)
	}
	res, err := capture(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.cookie, checkCookie+"=") {
		t.Errorf("got %d cookies, want the check's", res.cookies)
	}
	if proxy.served.Load() == 0 || srv.pages.Load() != 1 {
		t.Errorf("got %d proxied requests and %d page loads, want the page loaded through the proxy", proxy.served.Load(), srv.pages.Load())
	}
}

func TestCaptureLogsInToTheProxy(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv := newCheckServer(t, 300*time.Millisecond)
	proxy := newForwardProxy(t, "ann", "s3cret pass")
	cfg := testConfig(t, srv.URL, 30*time.Second)
	u := strings.Replace(proxy.URL, "http://", "http://ann:s3cret%20pass@", 1)
	var err error
	if cfg.proxy, cfg.proxyUser, cfg.proxyPassword, err = proxyServer(u); err != nil {
		t.Fatal(err)
	}
	res, err := capture(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.cookie, checkCookie+"=") {
		t.Errorf("got %d cookies, want the check's", res.cookies)
	}
	if proxy.challenged.Load() == 0 || proxy.served.Load() == 0 {
		t.Errorf("got %d challenges and %d proxied requests, want a login, then the page through the proxy", proxy.challenged.Load(), proxy.served.Load())
	}
}

func TestCaptureWithAWrongProxyPasswordFails(t *testing.T) {
	needBrowser(t)
	watchLeaks(t)
	srv := newCheckServer(t, 300*time.Millisecond)
	proxy := newForwardProxy(t, "ann", "right")
	cfg := testConfig(t, srv.URL, 10*time.Second)
	cfg.proxy, cfg.proxyUser, cfg.proxyPassword = proxy.URL, "ann", "wrong-password"
	_, err := capture(t.Context(), cfg)
	if err == nil {
		t.Fatal("got no error, want the page load to fail")
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("got error %q, want it without the password", err)
	}
	if got := srv.pages.Load(); got != 0 {
		t.Errorf("got %d page loads, want none", got)
	}
}
