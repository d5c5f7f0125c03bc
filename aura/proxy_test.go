package aura

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// tunnels tracks the connections and goroutines a test proxy owns, so that
// the test can close and wait for all of them.
type tunnels struct {
	mu    sync.Mutex
	conns []io.Closer
	wg    sync.WaitGroup
	used  atomic.Int64 // requests or tunnels served
}

func (tn *tunnels) track(c io.Closer) {
	tn.mu.Lock()
	tn.conns = append(tn.conns, c)
	tn.mu.Unlock()
}

func (tn *tunnels) closeAll() {
	tn.mu.Lock()
	for _, c := range tn.conns {
		c.Close()
	}
	tn.mu.Unlock()
	tn.wg.Wait()
}

// pipe copies both ways between a and b until either side ends, then
// closes both. br holds bytes already read from a.
func (tn *tunnels) pipe(a net.Conn, br io.Reader, b net.Conn) {
	tn.track(a)
	tn.track(b)
	tn.wg.Add(2)
	go func() {
		defer tn.wg.Done()
		_, _ = io.Copy(b, br)
		a.Close()
		b.Close()
	}()
	go func() {
		defer tn.wg.Done()
		_, _ = io.Copy(a, b)
		a.Close()
		b.Close()
	}()
}

// httpProxy is an HTTP proxy: CONNECT tunnels (for https targets) and
// forwarding of absolute-form requests (for http targets).
func httpProxy(t *testing.T, tn *tunnels) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn.used.Add(1)
		if r.Method == http.MethodConnect {
			upstream, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			conn, rw := hijack(t, w)
			_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
			tn.pipe(conn, rw.Reader, upstream)
			return
		}
		if r.URL.Host == "" {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		// Forward: replay the request to the target and splice the
		// response back unbuffered.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("proxy: read body: %v", err)
			return
		}
		upstream, err := net.Dial("tcp", r.URL.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out := r.Clone(r.Context())
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.Close = true
		out.Header.Del("Proxy-Connection")
		if err := out.Write(upstream); err != nil {
			t.Errorf("proxy: forward: %v", err)
			upstream.Close()
			return
		}
		conn, _ := hijack(t, w)
		tn.pipe(conn, conn, upstream)
	})
}

// socks5Proxy serves the SOCKS5 CONNECT command without authentication
// (RFC 1928) on a loopback port and returns its address.
func socks5Proxy(t *testing.T, tn *tunnels) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn.track(ln)
	tn.wg.Add(1)
	go func() {
		defer tn.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tn.track(conn)
			tn.wg.Add(1)
			go func() {
				defer tn.wg.Done()
				if err := socks5Handshake(tn, conn); err != nil {
					t.Errorf("socks5: %v", err)
					conn.Close()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func socks5Handshake(tn *tunnels, conn net.Conn) error {
	br := bufio.NewReader(conn)
	var hello [2]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return err
	}
	if hello[0] != 5 {
		return errors.New("not SOCKS5")
	}
	if _, err := io.ReadFull(br, make([]byte, hello[1])); err != nil {
		return err
	}
	if _, err := conn.Write([]byte{5, 0}); err != nil { // no authentication
		return err
	}
	var req [4]byte // version, command, reserved, address type
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return err
	}
	if req[1] != 1 {
		return errors.New("not CONNECT")
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(br, ip); err != nil {
			return err
		}
		host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		if _, err := io.ReadFull(br, ip); err != nil {
			return err
		}
		host = net.IP(ip).String()
	case 3:
		n, err := br.ReadByte()
		if err != nil {
			return err
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			return err
		}
		host = string(name)
	default:
		return errors.New("bad address type")
	}
	var port [2]byte
	if _, err := io.ReadFull(br, port[:]); err != nil {
		return err
	}
	upstream, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))))
	if err != nil {
		_, _ = conn.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return err
	}
	tn.used.Add(1)
	if _, err := conn.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		upstream.Close()
		return err
	}
	tn.pipe(conn, br, upstream)
	return nil
}

func TestProxies(t *testing.T) {
	tests := []struct {
		name      string
		proxy     string // "http", "https" or "socks5"
		tlsTarget bool
	}{
		{"http proxy forwards to http target", "http", false},
		{"http proxy tunnels to https target", "http", true},
		{"https proxy forwards to http target", "https", false},
		{"https proxy tunnels to https target", "https", true},
		{"socks5 proxy to http target", "socks5", false},
		{"socks5 proxy to https target", "socks5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				flushWrite(w, "through ")
				flushWrite(w, "the proxy")
			})
			var target, tlsServer *httptest.Server
			if tt.tlsTarget {
				target = httptest.NewTLSServer(handler)
				tlsServer = target
			} else {
				target = httptest.NewServer(handler)
			}
			t.Cleanup(target.Close)

			tn := &tunnels{}
			var proxyURL string
			switch tt.proxy {
			case "http":
				p := httptest.NewServer(httpProxy(t, tn))
				t.Cleanup(p.Close)
				proxyURL = p.URL
			case "https":
				p := httptest.NewTLSServer(httpProxy(t, tn))
				t.Cleanup(p.Close)
				proxyURL = p.URL
				tlsServer = p
			case "socks5":
				proxyURL = "socks5://" + socks5Proxy(t, tn)
			}
			t.Cleanup(tn.closeAll) // runs before the servers' Close

			c := newTestClient(t, Config{BaseURL: target.URL, Proxy: proxyURL})
			if tlsServer != nil {
				// All httptest TLS servers share one certificate.
				trustTestCert(t, c, tlsServer)
			}
			r := collect(t, c.Stream(t.Context(), []Message{{Role: "user", Content: "hi"}}))
			if r.err != nil || r.text() != "through the proxy" {
				t.Fatalf("got (%q, %v), want (\"through the proxy\", nil)", r.text(), r.err)
			}
			if got := tn.used.Load(); got != 1 {
				t.Errorf("got %d proxied requests, want 1", got)
			}
		})
	}
}

func TestProxyUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the target got a request past a dead proxy")
	}))
	t.Cleanup(target.Close)
	for _, scheme := range []string{"http", "socks5"} {
		t.Run(scheme, func(t *testing.T) {
			c := newTestClient(t, Config{BaseURL: target.URL, Proxy: scheme + "://" + addr})
			r := collect(t, c.Stream(t.Context(), nil))
			if !errors.Is(r.err, ErrConnect) {
				t.Errorf("got error %v, want ErrConnect", r.err)
			}
		})
	}
}
