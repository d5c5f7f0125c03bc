package aura

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// The behaviours in this file are shared by both dialects; they are driven
// through the chatbot-ui one, whose plain-text body is easiest to break on
// purpose.

// dropConn closes the connection without an answer.
func dropConn(t *testing.T, w http.ResponseWriter) {
	conn, _ := hijack(t, w)
	conn.Close()
}

// truncatedChunked starts a chunked 200 response, writes text as one chunk
// (if any), and closes the connection before the terminating chunk.
func truncatedChunked(t *testing.T, w http.ResponseWriter, text string) {
	conn, _ := hijack(t, w)
	defer conn.Close()
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	if text != "" {
		resp += strconv.FormatInt(int64(len(text)), 16) + "\r\n" + text + "\r\n"
	}
	_, _ = io.WriteString(conn, resp)
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		handler      func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) // n counts requests from 1
		wantText     string
		wantIs       error // errors.Is target, or nil
		wantStatus   int   // a *StatusError with this code, or 0
		wantRequests int64
	}{
		{
			name:         "ok",
			handler:      func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) { flushWrite(w, "fine") },
			wantText:     "fine",
			wantRequests: 1,
		},
		{
			name:         "empty reply",
			handler:      func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {},
			wantRequests: 1,
		},
		{
			name: "500 is an answer, not retried",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "Error", http.StatusInternalServerError)
			},
			wantStatus:   500,
			wantRequests: 1,
		},
		{
			name: "429 not retried",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "slow down", http.StatusTooManyRequests)
			},
			wantStatus:   429,
			wantRequests: 1,
		},
		{
			name: "redirect not followed",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantStatus:   302,
			wantRequests: 1,
		},
		{
			name: "503 retried until it passes",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				if n < 3 {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
				flushWrite(w, "at last")
			},
			wantText:     "at last",
			wantRequests: 3,
		},
		{
			name: "502 every time",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "bad gateway", http.StatusBadGateway)
			},
			wantStatus:   502,
			wantRequests: 3,
		},
		{
			name: "first connection dropped",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					dropConn(t, w)
					return
				}
				flushWrite(w, "second try")
			},
			wantText:     "second try",
			wantRequests: 2,
		},
		{
			name:         "every connection dropped",
			handler:      func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) { dropConn(t, w) },
			wantIs:       ErrConnect,
			wantRequests: 3,
		},
		{
			name: "body broken before any text is retried",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					truncatedChunked(t, w, "")
					return
				}
				flushWrite(w, "whole")
			},
			wantText:     "whole",
			wantRequests: 2,
		},
		{
			name: "body broken after text is not retried",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				truncatedChunked(t, w, "hello")
			},
			wantText:     "hello",
			wantIs:       ErrBrokenStream,
			wantRequests: 1,
		},
		{
			name: "connection reset after text",
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				flushWrite(w, "partial")
				conn, _ := hijack(t, w)
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close with a RST
				}
				conn.Close()
			},
			wantText:     "partial",
			wantIs:       ErrBrokenStream,
			wantRequests: 1,
		},
		{
			name: "no response headers in time",
			cfg:  Config{FirstByteTimeout: 100 * time.Millisecond},
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			wantIs:       ErrFirstByteTimeout,
			wantRequests: 1,
		},
		{
			name: "headers but no body byte in time",
			cfg:  Config{FirstByteTimeout: 100 * time.Millisecond},
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			wantIs:       ErrFirstByteTimeout,
			wantRequests: 1,
		},
		{
			name: "server goes silent mid-reply",
			cfg:  Config{IdleTimeout: 100 * time.Millisecond},
			handler: func(t *testing.T, n int64, w http.ResponseWriter, r *http.Request) {
				flushWrite(w, "hello")
				<-r.Context().Done()
			},
			wantText:     "hello",
			wantIs:       ErrIdleTimeout,
			wantRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				tt.handler(t, requests.Add(1), w, r)
			}))
			t.Cleanup(srv.Close)
			tt.cfg.BaseURL = srv.URL
			c := newTestClient(t, tt.cfg)
			r := collect(t, c.Stream(t.Context(), []Message{{Role: "user", Content: "hi"}}))
			t.Logf("yielded %q, then error: %v", r.chunks, r.err)
			if r.text() != tt.wantText {
				t.Errorf("got text %q, want %q", r.text(), tt.wantText)
			}
			if got := requests.Load(); got != tt.wantRequests {
				t.Errorf("got %d requests, want %d", got, tt.wantRequests)
			}
			switch {
			case tt.wantIs != nil:
				if !errors.Is(r.err, tt.wantIs) {
					t.Errorf("got error %v, want one matching %v", r.err, tt.wantIs)
				}
			case tt.wantStatus != 0:
				var se *StatusError
				if !errors.As(r.err, &se) || se.StatusCode != tt.wantStatus {
					t.Errorf("got error %v, want a *StatusError with code %d", r.err, tt.wantStatus)
				}
			case r.err != nil:
				t.Errorf("got error %v, want none", r.err)
			}
			if r.err != nil && errors.Is(r.err, context.Canceled) {
				t.Errorf("got error %v matching context.Canceled, want that only for the caller's cancellation", r.err)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	c := newTestClient(t, Config{BaseURL: "http://" + addr})
	r := collect(t, c.Stream(t.Context(), nil))
	if !errors.Is(r.err, ErrConnect) {
		t.Fatalf("got error %v, want ErrConnect", r.err)
	}
	var opErr *net.OpError
	if !errors.As(r.err, &opErr) {
		t.Errorf("got error %v, want it to wrap the *net.OpError", r.err)
	}
}

// disconnectServer writes first, if not empty, then waits for the client
// to go away and closes gone.
func disconnectServer(t *testing.T, first string) (srv *httptest.Server, gone <-chan struct{}) {
	ch := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(t, r)
		if first != "" {
			flushWrite(w, first)
		}
		<-r.Context().Done()
		close(ch)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestCancelMidReplyClosesConnection(t *testing.T) {
	srv, gone := disconnectServer(t, "hello")
	c := newTestClient(t, Config{BaseURL: srv.URL})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	var gotErr error
	for s, err := range c.Stream(ctx, nil) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, s)
		cancel()
	}
	if len(got) != 1 || got[0] != "hello" {
		t.Errorf("got chunks %q, want [\"hello\"]", got)
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Errorf("got error %v, want one matching context.Canceled", gotErr)
	}
	waitFor(t, gone, "the server to see the client go away")
}

func TestCancelBeforeHeadersClosesConnection(t *testing.T) {
	started := make(chan struct{})
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(t, r)
		close(started)
		<-r.Context().Done()
		close(gone)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	r := collect(t, c.Stream(ctx, nil))
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("got error %v, want one matching context.Canceled", r.err)
	}
	waitFor(t, gone, "the server to see the client go away")
}

func TestStopIteratingClosesConnection(t *testing.T) {
	srv, gone := disconnectServer(t, "hello")
	c := newTestClient(t, Config{BaseURL: srv.URL})
	for s, err := range c.Stream(t.Context(), nil) {
		if err != nil || s != "hello" {
			t.Fatalf("got (%q, %v), want (\"hello\", nil)", s, err)
		}
		break
	}
	waitFor(t, gone, "the server to see the client go away")
}

func TestCancelDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		cancel()
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL})
	c.backoff = time.Hour
	done := make(chan struct{})
	var r result
	go func() {
		defer close(done)
		r = collect(t, c.Stream(ctx, nil))
	}()
	waitFor(t, done, "the stream to end after cancellation")
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("got error %v, want one matching context.Canceled", r.err)
	}
}

// TestSlowCallerIsNotIdle checks that the idle timeout counts only the
// server's silence, not the time the caller spends with a chunk.
func TestSlowCallerIsNotIdle(t *testing.T) {
	const idle = 50 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flushWrite(w, "one ")
		flushWrite(w, "two")
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL, IdleTimeout: idle})
	var text string
	for s, err := range c.Stream(t.Context(), nil) {
		if err != nil {
			t.Fatalf("got error %v after %q, want none", err, text)
		}
		text += s
		// The caller is busy (say, editing a Telegram message) for longer
		// than the idle timeout. Letting time pass is the point here.
		time.Sleep(4 * idle)
	}
	if text != "one two" {
		t.Errorf("got %q, want %q", text, "one two")
	}
}

func TestConnectionReuse(t *testing.T) {
	tests := []struct {
		name     string
		protocol string
		reply    string
		want     string
	}{
		{"chatbot-ui", ProtocolChatbotUI, "plain text", "plain text"},
		{"openai", ProtocolOpenAI, "data: {\"choices\":[{\"delta\":{\"content\":\"sse\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", "sse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				flushWrite(w, tt.reply)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: tt.protocol, Model: "m"})
			for i := range 3 {
				if r := collect(t, c.Stream(t.Context(), nil)); r.err != nil || r.text() != tt.want {
					t.Fatalf("reply %d: got (%q, %v), want (%q, nil)", i, r.text(), r.err, tt.want)
				}
			}
			if got := conns.Load(); got != 1 {
				t.Errorf("got %d connections for 3 replies, want 1", got)
			}
		})
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	c := &Client{backoff: 100 * time.Millisecond}
	for range 50 {
		retry := c.retryBackoff()
		for try, base := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
			if got := retry.NextBackOff(); got < base/2 || got > base*3/2 {
				t.Fatalf("try %d: got backoff %s, want within [%s, %s]", try+1, got, base/2, base*3/2)
			}
		}
	}
}
