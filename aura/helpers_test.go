package aura

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestClient builds a Client for a test server, with retries that wait
// only a millisecond.
func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.backoff = time.Millisecond
	t.Cleanup(c.Close)
	return c
}

// Stream is Chat's text alone, for the configured model: what most tests look at.
func (c *Client) Stream(ctx context.Context, msgs []Message) iter.Seq2[string, error] {
	return c.StreamModel(ctx, "", msgs)
}

// StreamModel is Stream asking for model.
func (c *Client) StreamModel(ctx context.Context, model string, msgs []Message) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for ch, err := range c.Chat(ctx, model, msgs) {
			if err != nil {
				yield("", err)
				return
			}
			if ch.Text != "" && !yield(ch.Text, nil) {
				return
			}
		}
	}
}

// trustTestCert makes c trust the certificate every httptest TLS server
// uses, for a TLS target and for a TLS proxy alike.
func trustTestCert(t testing.TB, c *Client, srv *httptest.Server) {
	t.Helper()
	tr, ok := srv.Client().Transport.(*http.Transport)
	if !ok {
		t.Fatalf("test server client has transport %T", srv.Client().Transport)
	}
	c.transport.TLSClientConfig = tr.TLSClientConfig.Clone()
}

// result is everything a Stream yielded.
type result struct {
	chunks   []string
	err      error
	thinking string // the Thinking chunks, joined (collectChat only)
}

func (r result) text() string { return strings.Join(r.chunks, "") }

// collect runs seq to its end, checking the contract: text chunks are
// non-empty, and an error, if any, comes last with an empty string.
func collect(t testing.TB, seq iter.Seq2[string, error]) result {
	t.Helper()
	var r result
	for s, err := range seq {
		if r.err != nil {
			t.Errorf("got a yield (%q, %v) after the error %v, want nothing after an error", s, err, r.err)
		}
		if err != nil {
			if s != "" {
				t.Errorf("got text %q with error %v, want empty text", s, err)
			}
			r.err = err
			continue
		}
		if s == "" {
			t.Errorf("got an empty chunk, want only non-empty chunks")
		}
		r.chunks = append(r.chunks, s)
	}
	return r
}

// collectChat is collect for Chat: the text chunks and the error as collect
// checks them, the thinking, and the usage, which must come once, after the
// last text and before any error.
func collectChat(t testing.TB, seq iter.Seq2[Chunk, error]) (result, *Usage) {
	t.Helper()
	var usage *Usage
	var thinking strings.Builder
	text := func(yield func(string, error) bool) {
		for c, err := range seq {
			set := 0
			for _, ok := range []bool{c.Text != "", c.Thinking != "", c.Usage != nil} {
				if ok {
					set++
				}
			}
			switch {
			case err != nil:
				if c != (Chunk{}) {
					t.Errorf("got chunk %+v with error %v, want an empty chunk", c, err)
				}
			case set != 1:
				t.Errorf("got chunk %+v, want exactly one of text, thinking and usage", c)
			case c.Thinking != "":
				if usage != nil {
					t.Errorf("got thinking %q after the usage, want the usage last", c.Thinking)
				}
				thinking.WriteString(c.Thinking)
				continue
			case c.Usage != nil:
				if usage != nil {
					t.Errorf("got usage %+v after %+v, want it once", *c.Usage, *usage)
				}
				usage = c.Usage
				continue
			case usage != nil:
				t.Errorf("got text %q after the usage, want the usage last", c.Text)
			}
			if !yield(c.Text, err) {
				return
			}
		}
	}
	r := collect(t, text)
	r.thinking = thinking.String()
	return r, usage
}

// flushWrite writes s and flushes it to the client.
func flushWrite(w http.ResponseWriter, s string) {
	_, _ = w.Write([]byte(s))
	w.(http.Flusher).Flush()
}

// hijack takes over the connection of a request, for answers net/http
// would not write (a custom reason phrase, a broken chunked body).
func hijack(t testing.TB, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter) {
	t.Helper()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		panic(http.ErrAbortHandler)
	}
	return conn, rw
}

// waitFor waits for ch to close, failing the test if that does not happen
// within a generous bound (a guard against a hang, not a timing assertion).
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("gave up waiting: %s", what)
	}
}

// readBody reads the request body to its end, as a real server does. Until
// it has, net/http does not watch the connection, and r.Context() would not
// end when the client goes away.
func readBody(t testing.TB, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		t.Errorf("server: read body: %v", err)
	}
}

// equalMessages reports whether a and b hold the same messages, images
// included.
func equalMessages(a, b []Message) bool {
	return slices.EqualFunc(a, b, func(x, y Message) bool {
		return x.Role == y.Role && x.Content == y.Content &&
			slices.EqualFunc(x.Images, y.Images, func(p, q Image) bool { return p.MIME == q.MIME && bytes.Equal(p.Data, q.Data) })
	})
}
