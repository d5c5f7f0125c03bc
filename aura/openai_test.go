package aura

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpenAIRequest(t *testing.T) {
	system := Message{Role: "system", Content: "Be brief."}
	user := Message{Role: "user", Content: "hi"}
	assistant := Message{Role: "assistant", Content: "hello"}
	tests := []struct {
		name         string
		cfg          Config
		pathSuffix   string
		msgs         []Message
		wantPath     string
		wantMessages []Message
		wantMax      int // 0: max_tokens must be absent
		wantAuth     string
	}{
		{
			name:         "ollama style base URL, no key",
			cfg:          Config{Model: "llama3.2", Temperature: 0.5},
			msgs:         []Message{system, user},
			wantPath:     "/v1/chat/completions",
			wantMessages: []Message{system, user},
		},
		{
			name:         "openai style base URL with key and max tokens",
			cfg:          Config{Model: "gpt-4o-mini", Key: "sk-test", MaxOutputTokens: 256},
			pathSuffix:   "/v1",
			msgs:         []Message{user, assistant, user},
			wantPath:     "/v1/chat/completions",
			wantMessages: []Message{user, assistant, user},
			wantMax:      256,
			wantAuth:     "Bearer sk-test",
		},
		{
			name:         "system turns moved first and joined",
			cfg:          Config{Model: "m"},
			pathSuffix:   "/proxy/",
			msgs:         []Message{user, {Role: "system", Content: "A"}, assistant, {Role: "system", Content: "B"}},
			wantPath:     "/proxy/v1/chat/completions",
			wantMessages: []Message{{Role: "system", Content: "A\nB"}, user, assistant},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen := captureServer(t, "data: [DONE]\n\n")
			tt.cfg.BaseURL, tt.cfg.Protocol = srv.URL+tt.pathSuffix, ProtocolOpenAI
			c := newTestClient(t, tt.cfg)
			if r := collect(t, c.Stream(t.Context(), tt.msgs)); r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			req := <-seen
			if req.path != tt.wantPath {
				t.Errorf("got path %s, want %s", req.path, tt.wantPath)
			}
			for _, h := range []struct{ name, want string }{
				{"Accept", "text/event-stream"},
				{"Content-Type", "application/json"},
				{"Authorization", tt.wantAuth},
				{"User-Agent", DefaultUserAgent},
			} {
				if got := req.header.Get(h.name); got != h.want {
					t.Errorf("got %s %q, want %q", h.name, got, h.want)
				}
			}

			var fields map[string]json.RawMessage
			if err := json.Unmarshal(req.body, &fields); err != nil {
				t.Fatalf("body %s: %v", req.body, err)
			}
			want := []string{"messages", "model", "stream", "stream_options", "temperature"}
			if tt.wantMax > 0 {
				want = append(want, "max_tokens")
				slices.Sort(want)
			}
			if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Errorf("got body fields %v, want %v", got, want)
			}
			var (
				model    string
				messages []Message
				temp     float64
				stream   bool
				max      int
			)
			mustUnmarshal(t, fields["model"], &model)
			mustUnmarshal(t, fields["messages"], &messages)
			mustUnmarshal(t, fields["temperature"], &temp)
			mustUnmarshal(t, fields["stream"], &stream)
			if tt.wantMax > 0 {
				mustUnmarshal(t, fields["max_tokens"], &max)
			}
			if model != tt.cfg.Model {
				t.Errorf("got model %q, want %q", model, tt.cfg.Model)
			}
			if !equalMessages(messages, tt.wantMessages) {
				t.Errorf("got messages %+v, want %+v", messages, tt.wantMessages)
			}
			if temp != tt.cfg.Temperature {
				t.Errorf("got temperature %v, want %v", temp, tt.cfg.Temperature)
			}
			if !stream {
				t.Errorf("got stream false, want true")
			}
			if got := string(fields["stream_options"]); got != `{"include_usage":true}` {
				t.Errorf("got stream_options %s, want {\"include_usage\":true}", got)
			}
			if max != tt.wantMax {
				t.Errorf("got max_tokens %d, want %d", max, tt.wantMax)
			}
			if tt.cfg.Key != "" && strings.Contains(string(req.body), tt.cfg.Key) {
				t.Errorf("got the key in the body %s, want it only in the header", req.body)
			}
		})
	}
}

// Transcripts in the shapes each server documents for streamed chat
// completions. Each event is one line; sse() joins them into a stream.
var (
	openAITranscript = []string{
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":", caf\u00e9 \ud83d\ude00!"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`,
		`data: [DONE]`,
	}
	ollamaTranscript = []string{
		`data: {"id":"chatcmpl-312","object":"chat.completion.chunk","created":1,"model":"qwen3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"The user says hi."},"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-312","object":"chat.completion.chunk","created":1,"model":"qwen3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-312","object":"chat.completion.chunk","created":1,"model":"qwen3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":", café 😀!"},"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-312","object":"chat.completion.chunk","created":1,"model":"qwen3","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}`,
		`data: [DONE]`,
	}
	llamaCppTranscript = []string{
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1,"id":"chatcmpl-abc","model":"gpt-3.5-turbo","system_fingerprint":"b5000-abc","object":"chat.completion.chunk"}`,
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"reasoning_content":"Thinking about a greeting."}}],"created":1,"id":"chatcmpl-abc","model":"gpt-3.5-turbo","system_fingerprint":"b5000-abc","object":"chat.completion.chunk"}`,
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hello"}}],"created":1,"id":"chatcmpl-abc","model":"gpt-3.5-turbo","system_fingerprint":"b5000-abc","object":"chat.completion.chunk"}`,
		`data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":", café 😀!"}}],"created":1,"id":"chatcmpl-abc","model":"gpt-3.5-turbo","system_fingerprint":"b5000-abc","object":"chat.completion.chunk"}`,
		`data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1,"id":"chatcmpl-abc","model":"gpt-3.5-turbo","system_fingerprint":"b5000-abc","object":"chat.completion.chunk","usage":{"completion_tokens":4,"prompt_tokens":9,"total_tokens":13},"timings":{"prompt_n":9,"predicted_n":4}}`,
		`data: [DONE]`,
	}
	vllmTranscript = []string{
		`data: {"id":"chatcmpl-v1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-v1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-v1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":", café 😀!"},"logprobs":null,"finish_reason":null}]}`,
		`data: {"id":"chatcmpl-v1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}`,
		`data: {"id":"chatcmpl-v1","object":"chat.completion.chunk","created":1,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[],"usage":{"prompt_tokens":9,"total_tokens":13,"completion_tokens":4}}`,
		`data: [DONE]`,
	}
)

// sse joins event lines into a stream, each event ended by a blank line.
func sse(nl string, lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + nl + nl)
	}
	return b.String()
}

// sseServer writes body in pieces of split bytes (all at once if 0),
// flushing each, so that lines and payloads straddle reads.
func sseServer(t *testing.T, body string, split int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(t, r)
		w.Header().Set("Content-Type", "text/event-stream")
		if split <= 0 {
			split = len(body) + 1
		}
		for len(body) > 0 {
			n := min(split, len(body))
			flushWrite(w, body[:n])
			body = body[n:]
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOpenAIStreams(t *testing.T) {
	const hello = "Hello, café 😀!"
	used := &Usage{PromptTokens: 9, CompletionTokens: 4}
	tests := []struct {
		name      string
		body      string
		want      string
		wantIs    error
		wantUsage *Usage
	}{
		{name: "openai", body: sse("\n", openAITranscript...), want: hello, wantUsage: used},
		{name: "ollama", body: sse("\n", ollamaTranscript...), want: hello},
		{name: "llama.cpp", body: sse("\n", llamaCppTranscript...), want: hello, wantUsage: used},
		{name: "vllm", body: sse("\n", vllmTranscript...), want: hello, wantUsage: used},
		{name: "crlf line endings", body: sse("\r\n", openAITranscript...), want: hello, wantUsage: used},
		{name: "cr line endings", body: sse("\r", vllmTranscript...), want: hello, wantUsage: used},
		{
			name:      "usage without [DONE] or a newline after it",
			body:      sse("\n", openAITranscript[:4]...) + openAITranscript[4],
			want:      hello,
			wantUsage: used,
		},
		{
			name: "comments and keep-alives",
			body: ": ping\n\n\n\n" + sse("\n", ollamaTranscript[:2]...) + ": ping\n\n" + sse("\n", ollamaTranscript[2:]...),
			want: hello,
		},
		{
			name:      "event and id fields",
			body:      "event: message\nid: 1\nretry: 1000\n" + sse("\n", llamaCppTranscript...),
			want:      hello,
			wantUsage: used,
		},
		{
			name: "finish_reason without [DONE]",
			body: sse("\n", ollamaTranscript[:len(ollamaTranscript)-1]...),
			want: hello,
		},
		{
			name: "[DONE] without a finish_reason",
			body: sse("\n", `data: {"choices":[{"index":0,"delta":{"content":"short"}}]}`, "data: [DONE]"),
			want: "short",
		},
		{
			name: "last line without a newline",
			body: sse("\n", `data: {"choices":[{"index":0,"delta":{"content":"x"}}]}`) + "data: [DONE]",
			want: "x",
		},
		{
			name: "data after the end is ignored",
			body: sse("\n", `data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`, `data: {"choices":[{"index":0,"delta":{"content":"ignored"}}]}`, "data: [DONE]"),
			want: "x",
		},
		{
			name:   "cut at the output limit",
			body:   sse("\n", append(slices.Clone(vllmTranscript[:3]), strings.Replace(vllmTranscript[3], `"stop"`, `"length"`, 1), "data: [DONE]")...),
			want:   hello,
			wantIs: ErrOutputLimit,
		},
		{
			name:      "cut at the output limit, text in the last event, usage after it",
			body:      sse("\n", openAITranscript[1], `data: {"choices":[{"index":0,"delta":{"content":", café 😀!"},"finish_reason":"length"}],"usage":null}`, `data: {"choices":[],"usage":{"completion_tokens":4}}`, "data: [DONE]"),
			want:      hello,
			wantIs:    ErrOutputLimit,
			wantUsage: &Usage{CompletionTokens: 4},
		},
		{
			name:   "cut at the output limit, no [DONE], last line without a newline",
			body:   sse("\n", ollamaTranscript[1:3]...) + `data: {"choices":[{"index":0,"delta":{"content":""},"finish_reason":"length"}]}`,
			want:   hello,
			wantIs: ErrOutputLimit,
		},
		{
			name:   "ends without [DONE] or finish_reason",
			body:   sse("\n", vllmTranscript[:3]...),
			want:   hello,
			wantIs: ErrBrokenStream,
		},
		{
			name:   "empty body",
			body:   "",
			wantIs: ErrBrokenStream,
		},
		{
			name:   "malformed JSON",
			body:   sse("\n", vllmTranscript[1], `data: {"choices":[{"delta":{"content":"oops"`),
			want:   "Hello",
			wantIs: ErrBrokenStream,
		},
	}
	for _, tt := range tests {
		for _, split := range []int{0, 1, 7} {
			t.Run(tt.name+"/split="+strconv.Itoa(split), func(t *testing.T) {
				srv := sseServer(t, tt.body, split)
				c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
				r, usage := collectChat(t, c.Chat(t.Context(), "", []Message{{Role: "user", Content: "hi"}}))
				if r.text() != tt.want {
					t.Errorf("got text %q, want %q", r.text(), tt.want)
				}
				if (usage == nil) != (tt.wantUsage == nil) || usage != nil && *usage != *tt.wantUsage {
					t.Errorf("got usage %+v, want %+v", usage, tt.wantUsage)
				}
				if tt.wantIs == nil && r.err != nil {
					t.Errorf("got error %v, want none", r.err)
				}
				if tt.wantIs != nil && !errors.Is(r.err, tt.wantIs) {
					t.Errorf("got error %v, want one matching %v", r.err, tt.wantIs)
				}
			})
		}
	}
}

func TestOpenAIErrorEvents(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantText   string
		wantStatus int
		wantReason string
	}{
		{
			name:       "openai error mid-stream",
			body:       sse("\n", openAITranscript[:2]...) + sse("\n", `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`),
			wantText:   "Hello",
			wantStatus: 200,
			wantReason: "The server had an error while processing your request.",
		},
		{
			name:       "vllm error with a code",
			body:       sse("\n", vllmTranscript[:2]...) + sse("\n", `data: {"error":{"object":"error","message":"CUDA out of memory","type":"InternalServerError","param":null,"code":500}}`),
			wantText:   "Hello",
			wantStatus: 500,
			wantReason: "CUDA out of memory",
		},
		{
			name:       "older vllm bare error object",
			body:       sse("\n", `data: {"object":"error","message":"context too long","type":"BadRequestError","param":null,"code":400}`),
			wantStatus: 400,
			wantReason: "context too long",
		},
		{
			name:       "llama.cpp error field",
			body:       sse("\n", `error: {"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}`),
			wantStatus: 400,
			wantReason: "the request exceeds the available context size, try increasing it",
		},
		{
			name:       "error event type",
			body:       "event: error\n" + sse("\n", `data: {"message":"overloaded","code":"overloaded_error"}`),
			wantStatus: 200,
			wantReason: "overloaded",
		},
		{
			name:       "ollama error mid-stream",
			body:       sse("\n", ollamaTranscript[1]) + sse("\n", `data: {"error":{"message":"model runner has unexpectedly stopped","type":"api_error","param":null,"code":null}}`),
			wantText:   "Hello",
			wantStatus: 200,
			wantReason: "model runner has unexpectedly stopped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sseServer(t, tt.body, 0)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
			r := collect(t, c.Stream(t.Context(), nil))
			if r.text() != tt.wantText {
				t.Errorf("got text %q, want %q", r.text(), tt.wantText)
			}
			var se *StatusError
			if !errors.As(r.err, &se) {
				t.Fatalf("got error %v, want a *StatusError", r.err)
			}
			if se.StatusCode != tt.wantStatus || se.Reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", se.StatusCode, se.Reason, tt.wantStatus, tt.wantReason)
			}
			if want := "aura: the server reported an error mid-reply: " + tt.wantReason; r.err.Error() != want {
				t.Errorf("got message %q, want %q", r.err.Error(), want)
			}
		})
	}
}

func TestOpenAIHTTPErrors(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		wantReason   string
		wantRequests int64
	}{
		{
			name:         "openai bad key",
			status:       401,
			body:         `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			wantReason:   "Incorrect API key provided.",
			wantRequests: 1,
		},
		{
			name:         "ollama unknown model",
			status:       404,
			body:         `{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}`,
			wantReason:   `model "llama9" not found, try pulling it first`,
			wantRequests: 1,
		},
		{
			name:         "ollama native error string",
			status:       500,
			body:         `{"error":"llama runner process has terminated"}`,
			wantReason:   "llama runner process has terminated",
			wantRequests: 1,
		},
		{
			name:         "vllm bad request",
			status:       400,
			body:         `{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}`,
			wantReason:   "max_tokens is too large",
			wantRequests: 1,
		},
		{
			name:         "not JSON",
			status:       500,
			body:         "<html>oops</html>",
			wantReason:   "Internal Server Error",
			wantRequests: 1,
		},
		{
			name:         "503 retried",
			status:       503,
			body:         `{"error":{"message":"Loading model","type":"unavailable_error","code":503}}`,
			wantReason:   "Loading model",
			wantRequests: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
			r := collect(t, c.Stream(t.Context(), nil))
			var se *StatusError
			if !errors.As(r.err, &se) {
				t.Fatalf("got error %v, want a *StatusError", r.err)
			}
			if se.StatusCode != tt.status || se.Reason != tt.wantReason || se.Body != tt.body {
				t.Errorf("got %d %q body %q, want %d %q body %q", se.StatusCode, se.Reason, se.Body, tt.status, tt.wantReason, tt.body)
			}
			if got := requests.Load(); got != tt.wantRequests {
				t.Errorf("got %d requests, want %d", got, tt.wantRequests)
			}
		})
	}
}

// TestOpenAISharedGuarantees checks that the openai dialect gets the
// transport's timeouts, cancellation and retry rules.
func TestOpenAISharedGuarantees(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			flushWrite(w, sse("\n", llamaCppTranscript[2]))
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m", IdleTimeout: 50 * time.Millisecond})
		r := collect(t, c.Stream(t.Context(), nil))
		if r.text() != "Hello" || !errors.Is(r.err, ErrIdleTimeout) {
			t.Errorf("got (%q, %v), want (\"Hello\", ErrIdleTimeout)", r.text(), r.err)
		}
	})
	t.Run("keep-alive comments are not text but keep the reply alive", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			flushWrite(w, sse("\n", ollamaTranscript[1]))
			for range 3 {
				flushWrite(w, ": ping\n\n")
			}
			flushWrite(w, sse("\n", ollamaTranscript[2:]...))
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		r := collect(t, c.Stream(t.Context(), nil))
		if r.text() != "Hello, café 😀!" || r.err != nil {
			t.Errorf("got (%q, %v), want (\"Hello, café 😀!\", nil)", r.text(), r.err)
		}
	})
	t.Run("cancel closes the connection", func(t *testing.T) {
		gone := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			flushWrite(w, sse("\n", vllmTranscript[:2]...))
			<-r.Context().Done()
			close(gone)
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var err error
		for s, e := range c.Stream(ctx, nil) {
			if e != nil {
				err = e
				break
			}
			if s == "Hello" {
				cancel()
			}
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got error %v, want one matching context.Canceled", err)
		}
		waitFor(t, gone, "the server to see the client go away")
	})
	t.Run("broken before any text is retried", func(t *testing.T) {
		var requests atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			if requests.Add(1) == 1 {
				// A role-only delta is no text: the caller has seen nothing.
				truncatedChunked(t, w, sse("\n", vllmTranscript[0]))
				return
			}
			flushWrite(w, sse("\n", vllmTranscript...))
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		r := collect(t, c.Stream(t.Context(), nil))
		if r.text() != "Hello, café 😀!" || r.err != nil || requests.Load() != 2 {
			t.Errorf("got (%q, %v) after %d requests, want (\"Hello, café 😀!\", nil) after 2", r.text(), r.err, requests.Load())
		}
	})
	t.Run("broken after text is not retried", func(t *testing.T) {
		var requests atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			requests.Add(1)
			truncatedChunked(t, w, sse("\n", vllmTranscript[:2]...))
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		r := collect(t, c.Stream(t.Context(), nil))
		if r.text() != "Hello" || !errors.Is(r.err, ErrBrokenStream) || requests.Load() != 1 {
			t.Errorf("got (%q, %v) after %d requests, want (\"Hello\", ErrBrokenStream) after 1", r.text(), r.err, requests.Load())
		}
	})
	t.Run("a server that lingers after [DONE] ends the reply cleanly", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readBody(t, r)
			flushWrite(w, sse("\n", openAITranscript...))
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		c.drain = 20 * time.Millisecond
		r := collect(t, c.Stream(t.Context(), nil))
		if r.text() != "Hello, café 😀!" || r.err != nil {
			t.Errorf("got (%q, %v), want (\"Hello, café 😀!\", nil)", r.text(), r.err)
		}
	})
}

func TestOpenAIImages(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 1, 2, 3}
	msgs := []Message{
		{Role: RoleSystem, Content: "Be brief."},
		{Role: RoleUser, Content: "hi"},
		{Role: RoleAssistant, Content: "hello"},
		{Role: RoleUser, Content: "what are these?", Images: []Image{{MIME: "image/png", Data: png}, {MIME: "Image/JPEG", Data: jpeg}}},
		{Role: RoleUser, Images: []Image{{Data: png}}}, // no text, no MIME: sniffed
	}
	srv, seen := captureServer(t, "data: [DONE]\n\n")
	c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
	if r := collect(t, c.Stream(t.Context(), msgs)); r.err != nil {
		t.Fatalf("got error %v, want none", r.err)
	}
	var body struct {
		Messages []json.RawMessage `json:"messages"`
	}
	req := <-seen
	mustUnmarshal(t, req.body, &body)
	pngURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	jpegURL := "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpeg)
	want := []string{
		`{"role":"system","content":"Be brief."}`,
		`{"role":"user","content":"hi"}`,
		`{"role":"assistant","content":"hello"}`,
		`{"role":"user","content":[{"type":"text","text":"what are these?"},{"type":"image_url","image_url":{"url":"` + pngURL + `"}},{"type":"image_url","image_url":{"url":"` + jpegURL + `"}}]}`,
		`{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + pngURL + `"}}]}`,
	}
	if len(body.Messages) != len(want) {
		t.Fatalf("got %d messages %s, want %d", len(body.Messages), req.body, len(want))
	}
	for i, m := range body.Messages {
		if string(m) != want[i] {
			t.Errorf("message %d: got %s, want %s", i, m, want[i])
		}
	}
}

func TestOpenAIImagesRejected(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{name: "on an assistant message", msg: Message{Role: RoleAssistant, Content: "x", Images: []Image{{MIME: "image/png", Data: []byte("x")}}}, want: "only user messages"},
		{name: "on a system message", msg: Message{Role: RoleSystem, Content: "x", Images: []Image{{MIME: "image/png", Data: []byte("x")}}}, want: "only user messages"},
		{name: "not an image type", msg: Message{Role: RoleUser, Images: []Image{{MIME: "text/html", Data: []byte("<p>")}}}, want: `"text/html" is not an image type`},
		{name: "a type that would break the data URL", msg: Message{Role: RoleUser, Images: []Image{{MIME: "image/png;base64,AAAA", Data: []byte("x")}}}, want: "is not an image type"},
		{name: "sniffed as not an image", msg: Message{Role: RoleUser, Images: []Image{{Data: []byte("plain text")}}}, want: `"text/plain" is not an image type`},
		{name: "no data", msg: Message{Role: RoleUser, Images: []Image{{MIME: "image/png"}}}, want: "image 0: no data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
			r := collect(t, c.Stream(t.Context(), []Message{tt.msg}))
			if r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("got error %v, want one saying %q", r.err, tt.want)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("got %d requests, want none", n)
			}
		})
	}
}
