package aura

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// captured is what a test server saw of one request.
type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

// captureServer answers every request with reply and sends what it saw on
// the returned channel.
func captureServer(t *testing.T, reply string) (*httptest.Server, <-chan captured) {
	t.Helper()
	seen := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: read body: %v", err)
		}
		seen <- captured{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body}
		flushWrite(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestChatbotUIRequestBody(t *testing.T) {
	type model struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		MaxLength  int    `json:"maxLength"`
		TokenLimit int    `json:"tokenLimit"`
	}
	defaultModel := model{"openchat_3.6", "OpenChat 3.6 (latest)", 24576, 8192}
	user := Message{Role: "user", Content: "hi"}
	assistant := Message{Role: "assistant", Content: "hello"}
	user2 := Message{Role: "user", Content: "tell me more"}
	tests := []struct {
		name        string
		cfg         Config
		msgs        []Message
		model       model
		messages    []Message
		key         string
		prompt      string
		temperature float64
	}{
		{
			name:     "defaults",
			msgs:     []Message{user},
			model:    defaultModel,
			messages: []Message{user},
		},
		{
			name:     "system turn first goes to prompt",
			cfg:      Config{Temperature: 0.5},
			msgs:     []Message{{Role: "system", Content: "You are a helpful assistant."}, user, assistant, user2},
			model:    defaultModel,
			messages: []Message{user, assistant, user2},
			prompt:   "You are a helpful assistant.", temperature: 0.5,
		},
		{
			name:     "several system turns joined with newline",
			msgs:     []Message{{Role: "system", Content: "A"}, user, {Role: "system", Content: "B"}, assistant},
			model:    defaultModel,
			messages: []Message{user, assistant},
			prompt:   "A\nB",
		},
		{
			name:     "known model and key",
			cfg:      Config{Model: "openchat_v3.2_mistral", Key: "k-123", Temperature: 0.7},
			msgs:     []Message{user},
			model:    model{"openchat_v3.2_mistral", "OpenChat 3.5 (latest)", 24576, 8192},
			messages: []Message{user},
			key:      "k-123", temperature: 0.7,
		},
		{
			name:     "custom model",
			cfg:      Config{Model: "mine", TokenLimit: 100},
			msgs:     []Message{user},
			model:    model{"mine", "mine", 300, 100},
			messages: []Message{user},
		},
		{
			name:     "every model field set",
			cfg:      Config{Model: "mine", ModelName: "Mine", MaxLength: 1000, TokenLimit: 200},
			msgs:     []Message{user},
			model:    model{"mine", "Mine", 1000, 200},
			messages: []Message{user},
		},
		{
			name:     "no messages",
			model:    defaultModel,
			messages: []Message{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := captureServer(t, "ok")
			tt.cfg.BaseURL = srv.URL
			c := newTestClient(t, tt.cfg)
			if r := collect(t, c.Stream(t.Context(), tt.msgs)); r.err != nil || r.text() != "ok" {
				t.Fatalf("got (%q, %v), want (\"ok\", nil)", r.text(), r.err)
			}
			req := <-seen

			var fields map[string]json.RawMessage
			if err := json.Unmarshal(req.body, &fields); err != nil {
				t.Fatalf("body %s: %v", req.body, err)
			}
			if got, want := slices.Sorted(maps.Keys(fields)), []string{"key", "messages", "model", "prompt", "temperature"}; !slices.Equal(got, want) {
				t.Errorf("got body fields %v, want %v", got, want)
			}
			var modelFields map[string]json.RawMessage
			mustUnmarshal(t, fields["model"], &modelFields)
			if got, want := slices.Sorted(maps.Keys(modelFields)), []string{"id", "maxLength", "name", "tokenLimit"}; !slices.Equal(got, want) {
				t.Errorf("got model fields %v, want %v", got, want)
			}
			var (
				gotModel    model
				gotMessages []Message
				gotKey      string
				gotPrompt   string
				gotTemp     float64
			)
			mustUnmarshal(t, fields["model"], &gotModel)
			mustUnmarshal(t, fields["messages"], &gotMessages)
			mustUnmarshal(t, fields["key"], &gotKey)
			mustUnmarshal(t, fields["prompt"], &gotPrompt)
			mustUnmarshal(t, fields["temperature"], &gotTemp)
			if gotModel != tt.model {
				t.Errorf("got model %+v, want %+v", gotModel, tt.model)
			}
			if gotMessages == nil || !equalMessages(gotMessages, tt.messages) {
				t.Errorf("got messages %+v, want %+v", gotMessages, tt.messages)
			}
			if gotKey != tt.key {
				t.Errorf("got key %q, want %q", gotKey, tt.key)
			}
			if gotPrompt != tt.prompt {
				t.Errorf("got prompt %q, want %q", gotPrompt, tt.prompt)
			}
			if gotTemp != tt.temperature {
				t.Errorf("got temperature %v, want %v", gotTemp, tt.temperature)
			}
		})
	}
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Errorf("decode %s: %v", data, err)
	}
}

func TestChatbotUIRequestHeaders(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		pathSuffix string // appended to the server URL to make BaseURL
		wantPath   string
		wantUA     string
		wantCookie string
	}{
		{name: "defaults", wantPath: "/api/chat", wantUA: DefaultUserAgent},
		{
			name:       "cookies and user agent",
			cfg:        Config{Cookies: "cf_clearance=abc; session=def", UserAgent: "TestAgent/1.0"},
			wantPath:   "/api/chat",
			wantUA:     "TestAgent/1.0",
			wantCookie: "cf_clearance=abc; session=def",
		},
		{name: "base URL with a path", pathSuffix: "/chat/", wantPath: "/chat/api/chat", wantUA: DefaultUserAgent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := captureServer(t, "ok")
			tt.cfg.BaseURL = srv.URL + tt.pathSuffix
			c := newTestClient(t, tt.cfg)
			if r := collect(t, c.Stream(t.Context(), []Message{{Role: "user", Content: "hi"}})); r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			req := <-seen
			if req.method != http.MethodPost {
				t.Errorf("got method %s, want POST", req.method)
			}
			if req.path != tt.wantPath {
				t.Errorf("got path %s, want %s", req.path, tt.wantPath)
			}
			for _, h := range []struct{ name, want string }{
				{"Accept", "*/*"},
				{"Accept-Language", "en-US"},
				{"Referer", tt.cfg.BaseURL},
				{"User-Agent", tt.wantUA},
				{"Content-Type", "application/json"},
				{"Cookie", tt.wantCookie},
				{"Authorization", ""},
			} {
				if got := req.header.Get(h.name); got != h.want {
					t.Errorf("got %s %q, want %q", h.name, got, h.want)
				}
			}
		})
	}
}

func TestChatbotUIUnknownRole(t *testing.T) {
	srv, _ := captureServer(t, "ok")
	c := newTestClient(t, Config{BaseURL: srv.URL})
	r := collect(t, c.Stream(t.Context(), []Message{{Role: "tool", Content: "x"}}))
	if r.err == nil || !strings.Contains(r.err.Error(), `unknown role "tool"`) {
		t.Errorf("got error %v, want one naming the unknown role", r.err)
	}
}

// TestChunksArriveAsRead runs the server in lock step with the caller: the
// server writes the next piece only once the caller has the previous one,
// so a client that buffered would never see the end.
func TestChunksArriveAsRead(t *testing.T) {
	// "é" is split across two writes: the first piece must reach the
	// caller without its incomplete tail, the tail must come whole later.
	pieces := []string{"ab\xc3", "\xa9cd", "e", "\xf0\x9f", "\x98\x80!"}
	want := []string{"ab", "écd", "e", "😀!"}
	got := make(chan string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, p := range pieces {
			flushWrite(w, p)
			if i == 3 {
				continue // the caller cannot see a lone lead byte pair
			}
			select {
			case <-got:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL})
	var chunks []string
	for s, err := range c.Stream(t.Context(), nil) {
		if err != nil {
			t.Fatalf("got error %v after %q, want none", err, chunks)
		}
		chunks = append(chunks, s)
		got <- s
	}
	if !slices.Equal(chunks, want) {
		t.Errorf("got chunks %q, want %q", chunks, want)
	}
}

func TestChatbotUIStatusError(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	tests := []struct {
		name     string
		response string
		want     StatusError
		wantMsg  string
	}{
		{
			name:     "500 with reason",
			response: "HTTP/1.1 500 model overloaded\r\nContent-Length: 5\r\n\r\nError",
			want:     StatusError{StatusCode: 500, Reason: "model overloaded", Body: "Error"},
			wantMsg:  "aura: server answered 500 model overloaded",
		},
		{
			name:     "500 without reason",
			response: "HTTP/1.1 500\r\nContent-Length: 5\r\n\r\nError",
			want:     StatusError{StatusCode: 500, Body: "Error"},
			wantMsg:  "aura: server answered 500",
		},
		{
			name:     "403 with a long body",
			response: "HTTP/1.1 403 Forbidden\r\nContent-Length: 2000\r\n\r\n" + long,
			want:     StatusError{StatusCode: 403, Reason: "Forbidden", Body: long[:1024]},
			wantMsg:  "aura: server answered 403 Forbidden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, _ := hijack(t, w)
				defer conn.Close()
				_, _ = io.WriteString(conn, tt.response)
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL})
			r := collect(t, c.Stream(t.Context(), nil))
			var se *StatusError
			if !errors.As(r.err, &se) {
				t.Fatalf("got error %v, want a *StatusError", r.err)
			}
			if se.StatusCode != tt.want.StatusCode || se.Reason != tt.want.Reason || se.Body != tt.want.Body {
				t.Errorf("got %d %q body %q, want %d %q body %q", se.StatusCode, se.Reason, se.Body, tt.want.StatusCode, tt.want.Reason, tt.want.Body)
			}
			if !utf8.ValidString(se.Body) || len(se.Body) > 1024 {
				t.Errorf("got body of %d bytes (valid UTF-8: %v), want at most 1024 valid bytes", len(se.Body), utf8.ValidString(se.Body))
			}
			if got := r.err.Error(); got != tt.wantMsg {
				t.Errorf("got message %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

// TestChatbotUIRequestBytes pins the exact body, so that a change to
// Message (such as its Images, which are never sent) cannot change the
// wire format unnoticed.
func TestChatbotUIRequestBytes(t *testing.T) {
	srv, seen := captureServer(t, "ok")
	c := newTestClient(t, Config{BaseURL: srv.URL, Temperature: 0.5})
	msgs := []Message{{Role: RoleSystem, Content: "Be brief."}, {Role: RoleUser, Content: "hi"}, {Role: RoleAssistant, Content: "hello"}, {Role: RoleUser, Content: "more"}}
	if r := collect(t, c.Stream(t.Context(), msgs)); r.err != nil {
		t.Fatalf("got error %v, want none", r.err)
	}
	const want = `{"model":{"id":"openchat_3.6","name":"OpenChat 3.6 (latest)","maxLength":24576,"tokenLimit":8192},"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"more"}],"key":"","prompt":"Be brief.","temperature":0.5}`
	if got := string((<-seen).body); got != want {
		t.Errorf("got body\n%s\nwant\n%s", got, want)
	}
}

func TestChatbotUIImagesUnsupported(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL})
	msgs := []Message{{Role: RoleUser, Content: "hi"}, {Role: RoleUser, Content: "what is this?", Images: []Image{{MIME: "image/png", Data: []byte("\x89PNG")}}}}
	r := collect(t, c.Stream(t.Context(), msgs))
	if !errors.Is(r.err, ErrImagesUnsupported) || len(r.chunks) != 0 {
		t.Errorf("got (%q, %v), want no text and an error matching ErrImagesUnsupported", r.text(), r.err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
	// Images never appear in a message's JSON.
	b, err := json.Marshal(msgs[1])
	if err != nil || string(b) != `{"role":"user","content":"what is this?"}` {
		t.Errorf("got %s, %v; want {\"role\":\"user\",\"content\":\"what is this?\"}", b, err)
	}
}

// Message contents are sent as given: defusing special tokens is the caller's (history.Defuse).
func TestChatbotUISendsContentsAsGiven(t *testing.T) {
	srv, seen := captureServer(t, "ok")
	c := newTestClient(t, Config{BaseURL: srv.URL})
	msgs := []Message{{Role: RoleSystem, Content: "End with <|endoftext|>."}, {Role: RoleUser, Content: "what is <|fim_prefix|>?"}}
	if r := collect(t, c.Stream(t.Context(), msgs)); r.err != nil {
		t.Fatalf("got error %v, want none", r.err)
	}
	var body struct {
		Prompt   string
		Messages []Message
	}
	mustUnmarshal(t, (<-seen).body, &body)
	if body.Prompt != msgs[0].Content || len(body.Messages) != 1 || body.Messages[0].Content != msgs[1].Content {
		t.Errorf("got prompt %q and messages %+v, want them as given", body.Prompt, body.Messages)
	}
}
