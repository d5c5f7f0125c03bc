package aura

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	const secret = "sk-do-not-leak"
	tests := []struct {
		name string
		cfg  Config
		want string // a part of the error message
	}{
		{"no base URL", Config{}, "base URL is empty"},
		{"base URL without scheme", Config{BaseURL: "openchat.team"}, "scheme"},
		{"base URL with ftp", Config{BaseURL: "ftp://openchat.team"}, `scheme "ftp"`},
		{"base URL unparsable", Config{BaseURL: "http://[::1"}, "base URL"},
		{"unknown protocol", Config{BaseURL: "http://x", Protocol: "grpc"}, `unknown protocol "grpc"`},
		{"proxy scheme", Config{BaseURL: "http://x", Proxy: "ftp://proxy:21"}, `proxy: scheme "ftp"`},
		{"proxy without host", Config{BaseURL: "http://x", Proxy: "socks5://"}, "proxy has no host"},
		{"proxy unparsable", Config{BaseURL: "http://x", Proxy: "http://user:" + secret + "@[::1"}, "proxy"},
		{"negative timeout", Config{BaseURL: "http://x", IdleTimeout: -time.Second}, "negative"},
		{"key with newline", Config{BaseURL: "http://x", Key: secret + "\r\nX-Evil: 1"}, "key contains a control character"},
		{"cookies with newline", Config{BaseURL: "http://x", Cookies: "a=" + secret + "\n"}, "cookies contains a control character"},
		{"openai without model", Config{BaseURL: "http://x", Protocol: ProtocolOpenAI}, "needs a model"},
		{"openai negative max tokens", Config{BaseURL: "http://x", Protocol: ProtocolOpenAI, Model: "m", MaxOutputTokens: -1}, "negative"},
		{"chatbot-ui negative token limit", Config{BaseURL: "http://x", TokenLimit: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				c.Close()
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "aura: ") {
				t.Errorf("got error %q, want the prefix \"aura: \"", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("got error %q, want it without the secret", err)
			}
		})
	}
}

func TestNewAcceptsGoodConfig(t *testing.T) {
	for _, cfg := range []Config{
		{BaseURL: "https://openchat.team"},
		{BaseURL: "https://openchat.team/", Protocol: ProtocolChatbotUI, Proxy: "socks5://127.0.0.1:1080"},
		{BaseURL: "http://localhost:11434", Protocol: ProtocolOpenAI, Model: "llama3.2", Proxy: "https://proxy:8443"},
		{BaseURL: "https://api.openai.com/v1", Protocol: ProtocolOpenAI, Model: "gpt-4o-mini", Key: "sk-x", Proxy: "http://user:pw@proxy:3128"},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Errorf("New(%+v): got error %v, want none", cfg, err)
			continue
		}
		c.Close()
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&StatusError{StatusCode: 500, Reason: "model overloaded"}, "aura: server answered 500 model overloaded"},
		{&StatusError{StatusCode: 502}, "aura: server answered 502"},
		{&StatusError{StatusCode: 200, Reason: "out of memory", inStream: true}, "aura: the server reported an error mid-reply: out of memory"},
		{ErrBrokenStream, "aura: the reply broke off before its end"},
		{ErrFirstByteTimeout, "aura: the server did not start answering in time"},
		{ErrIdleTimeout, "aura: the server stopped sending mid-reply"},
		{ErrConnect, "aura: could not connect to the server"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestNoSecretInErrors provokes every kind of error with a server that
// echoes the key and cookies back, and checks that neither reaches an
// error or a log line: the client's own errors never quote them, and what
// the server writes passes Config.Redact (main's log redactor).
func TestNoSecretInErrors(t *testing.T) {
	const (
		key    = "sk-SECRET-key-123"
		cookie = "COOKIE-value-456"
	)
	cookies := "cf_clearance=" + cookie + "; theme=dark"
	echo := key + " " + cookie

	type scenario struct {
		name     string
		protocol string
		cfg      Config
		handler  http.HandlerFunc
	}
	scenarios := []scenario{
		{
			name: "chatbot-ui status line echoes the key",
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				conn, _ := hijack(t, w)
				defer conn.Close()
				body := "bad key " + echo
				_, _ = fmt.Fprintf(conn, "HTTP/1.1 401 bad key %s\r\nContent-Length: %d\r\n\r\n%s", echo, len(body), body)
			},
		},
		{
			name:     "openai error body echoes the key",
			protocol: ProtocolOpenAI,
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","type":"invalid_request_error","code":"invalid_api_key"}}`, echo)
			},
		},
		{
			name:     "openai error event echoes the key",
			protocol: ProtocolOpenAI,
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				_, _ = fmt.Fprintf(w, "data: {\"error\":{\"message\":\"quota for %s\"}}\n\n", echo)
			},
		},
		{
			name: "first byte timeout",
			cfg:  Config{FirstByteTimeout: 50 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				<-r.Context().Done()
			},
		},
		{
			name: "idle timeout",
			cfg:  Config{IdleTimeout: 50 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				flushWrite(w, "x")
				<-r.Context().Done()
			},
		},
		{
			name: "broken stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				truncatedChunked(t, w, "x")
			},
		},
		{
			name: "dropped connections",
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				dropConn(t, w)
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			srv := httptest.NewServer(sc.handler)
			t.Cleanup(srv.Close)
			var logs bytes.Buffer
			cfg := sc.cfg
			cfg.BaseURL, cfg.Protocol, cfg.Model = srv.URL, sc.protocol, "m"
			cfg.Key, cfg.Cookies = key, cookies
			cfg.Redact = strings.NewReplacer(key, "[redacted]", cookie, "[redacted]").Replace
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newTestClient(t, cfg)
			r := collect(t, c.Stream(t.Context(), []Message{{Role: "user", Content: "hi"}}))
			if r.err == nil {
				t.Fatal("got no error, want one")
			}
			texts := []string{r.err.Error(), fmt.Sprintf("%+v", r.err), fmt.Sprintf("%#v", r.err), logs.String()}
			var se *StatusError
			if errors.As(r.err, &se) {
				texts = append(texts, se.Reason, se.Body)
			}
			for _, s := range texts {
				for _, secret := range []string{key, cookie} {
					if strings.Contains(s, secret) {
						t.Errorf("got %q, want it without %q", s, secret)
					}
				}
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newTestClient(t, Config{BaseURL: "http://" + addr, Key: key, Cookies: cookies})
		r := collect(t, c.Stream(t.Context(), nil))
		if r.err == nil || strings.Contains(r.err.Error(), key) || strings.Contains(r.err.Error(), cookie) {
			t.Errorf("got error %v, want one without the secrets", r.err)
		}
	})
}

// TestUserReason checks that the reason meant for users leaves out what a
// server put in its error text beyond the reason, while Error keeps it.
func TestUserReason(t *testing.T) {
	const openAI401 = "Incorrect API key provided: sk-proj-Ab12****************************************Yz90. You can find your API key at https://platform.openai.com/account/api-keys."
	tests := []struct {
		name     string
		protocol string
		handler  http.HandlerFunc
		want     string
		inError  string
	}{
		{
			name:     "openai 401 quoting a server-side key and a link",
			protocol: ProtocolOpenAI,
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error","code":"invalid_api_key"}}`, openAI401)
			},
			want:    "Incorrect API key provided",
			inError: "https://platform.openai.com/account/api-keys.",
		},
		{
			name: "chatbot-ui status line with a token and a trailing period",
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				conn, _ := hijack(t, w)
				defer conn.Close()
				_, _ = fmt.Fprint(conn, "HTTP/1.1 500 upstream refused Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0.\r\nContent-Length: 5\r\n\r\nError")
			},
			want:    "upstream refused",
			inError: "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
		},
		{
			name:     "openai error event with only a link",
			protocol: ProtocolOpenAI,
			handler: func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				_, _ = fmt.Fprint(w, "data: {\"error\":{\"message\":\"https://status.example.com/incident/42\"}}\n\n")
			},
			want:    "",
			inError: "https://status.example.com/incident/42",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: tt.protocol, Model: "m"})
			r := collect(t, c.Stream(t.Context(), []Message{{Role: RoleUser, Content: "hi"}}))
			var se *StatusError
			if !errors.As(r.err, &se) {
				t.Fatalf("got error %v, want a *StatusError", r.err)
			}
			if got := se.UserReason(); got != tt.want {
				t.Errorf("got UserReason %q, want %q", got, tt.want)
			}
			if !strings.Contains(se.Error(), tt.inError) {
				t.Errorf("got Error %q, want it to keep %q for the logs", se.Error(), tt.inError)
			}
		})
	}
}
