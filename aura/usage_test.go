package aura

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// A server that refuses stream_options (a strict validator) gets the request again without
// it, and from then on never sees it; the reply is not lost. One that ignores it just sends no
// usage.
func TestOpenAIUsageRefused(t *testing.T) {
	for _, tt := range []struct {
		name, refusal string
		status        int
	}{
		{"openai style", `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`, http.StatusBadRequest},
		{"pydantic extra forbidden", `{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted"}]}`, http.StatusUnprocessableEntity},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var withOptions []bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var req map[string]json.RawMessage
				_ = json.Unmarshal(body, &req)
				_, has := req["stream_options"]
				mu.Lock()
				withOptions = append(withOptions, has)
				mu.Unlock()
				if has {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, tt.refusal)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				flushWrite(w, sse("\n", ollamaTranscript...))
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
			for range 2 {
				r, usage := collectChat(t, c.Chat(t.Context(), "", []Message{{Role: RoleUser, Content: "hi"}}))
				if r.err != nil || r.text() != "Hello, café 😀!" || usage != nil {
					t.Fatalf("got (%q, %v, usage %+v), want the whole reply, no error, no usage", r.text(), r.err, usage)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []bool{true, false, false}; len(withOptions) != 3 || withOptions[0] != want[0] || withOptions[1] || withOptions[2] {
				t.Errorf("stream_options sent per request: got %v, want %v", withOptions, want)
			}
		})
	}
	// Any other 400 is the server's answer: asked once, reported, and the option kept.
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"prompt is too long"}}`)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
	r, _ := collectChat(t, c.Chat(t.Context(), "", []Message{{Role: RoleUser, Content: "hi"}}))
	if r.err == nil || !strings.Contains(r.err.Error(), "prompt is too long") || requests.Load() != 1 || c.noUsage.Load() {
		t.Errorf("got %v after %d requests (usage dropped: %v), want the 400 after one request, usage still asked", r.err, requests.Load(), c.noUsage.Load())
	}
}
