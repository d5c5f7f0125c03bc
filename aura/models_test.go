package aura

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStreamModel(t *testing.T) {
	msgs := []Message{{Role: RoleUser, Content: "hi"}}
	type model struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		MaxLength  int    `json:"maxLength"`
		TokenLimit int    `json:"tokenLimit"`
	}
	t.Run("openai", func(t *testing.T) {
		srv, seen := captureServer(t, "data: [DONE]\n\n")
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "configured"})
		for _, tt := range []struct{ ask, want string }{{"other", "other"}, {"", "configured"}} {
			if r := collect(t, c.StreamModel(t.Context(), tt.ask, msgs)); r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			var body struct{ Model string }
			mustUnmarshal(t, (<-seen).body, &body)
			if body.Model != tt.want {
				t.Errorf("StreamModel(%q): got model %q, want %q", tt.ask, body.Model, tt.want)
			}
		}
		if r := collect(t, c.Stream(t.Context(), msgs)); r.err != nil {
			t.Fatalf("got error %v, want none", r.err)
		}
		var body struct{ Model string }
		if mustUnmarshal(t, (<-seen).body, &body); body.Model != "configured" {
			t.Errorf("Stream: got model %q, want %q", body.Model, "configured")
		}
	})
	t.Run("chatbot-ui", func(t *testing.T) {
		srv, seen := captureServer(t, "ok")
		c := newTestClient(t, Config{BaseURL: srv.URL, Model: "openchat_3.6", ModelName: "Mine", TokenLimit: 4096})
		for _, tt := range []struct {
			ask  string
			want model
		}{
			{"openchat_v3.2_mistral", model{"openchat_v3.2_mistral", "OpenChat 3.5 (latest)", 12288, 4096}},
			{"custom", model{"custom", "custom", 12288, 4096}},
			{"", model{"openchat_3.6", "Mine", 12288, 4096}},
			{"openchat_3.6", model{"openchat_3.6", "Mine", 12288, 4096}},
		} {
			if r := collect(t, c.StreamModel(t.Context(), tt.ask, msgs)); r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			var body struct{ Model model }
			if mustUnmarshal(t, (<-seen).body, &body); body.Model != tt.want {
				t.Errorf("StreamModel(%q): got model %+v, want %+v", tt.ask, body.Model, tt.want)
			}
		}
	})
}

// modelsServer serves an openai model list under prefix and counts the
// requests; each request's Authorization header goes to auth.
func modelsServer(t *testing.T, prefix string, status int, body string) (srv *httptest.Server, requests *atomic.Int64, auth <-chan string) {
	t.Helper()
	requests = new(atomic.Int64)
	authc := make(chan string, 16)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != prefix+"/v1/models" {
			t.Errorf("server: got %s %s, want GET %s/v1/models", r.Method, r.URL.Path, prefix)
		}
		authc <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, requests, authc
}

const modelList = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1,"owned_by":"system"},{"id":"llama3.2:latest","object":"model","created":2,"owned_by":"library"},{"id":"","object":"model"}]}`

func TestModels(t *testing.T) {
	for _, tt := range []struct {
		name, prefix, baseSuffix, key, wantAuth string
	}{
		{name: "ollama style base URL, no key", wantAuth: ""},
		{name: "openai style base URL with a key", baseSuffix: "/v1", key: "sk-test", wantAuth: "Bearer sk-test"},
		{name: "under a path", prefix: "/proxy", baseSuffix: "/proxy/", wantAuth: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests, auth := modelsServer(t, tt.prefix, 200, modelList)
			c := newTestClient(t, Config{BaseURL: srv.URL + tt.baseSuffix, Protocol: ProtocolOpenAI, Model: "m", Key: tt.key})
			got, err := c.Models(t.Context())
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if want := []string{"gpt-4o-mini", "llama3.2:latest"}; !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if got := <-auth; got != tt.wantAuth {
				t.Errorf("got Authorization %q, want %q", got, tt.wantAuth)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
		})
	}
}

func TestModelsCache(t *testing.T) {
	srv, requests, _ := modelsServer(t, "", 200, modelList)
	c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	first, err := c.Models(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first[0] = "changed by the caller"
	advance(59 * time.Second)
	second, err := c.Models(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("got %d requests within a minute, want 1", n)
	}
	if second[0] != "gpt-4o-mini" {
		t.Errorf("got %q from the cache, want \"gpt-4o-mini\": the caller's copy must not be the cache", second[0])
	}
	advance(2 * time.Second)
	if _, err := c.Models(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("got %d requests after a minute, want 2", n)
	}
}

func TestModelsErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		const body = `{"error":{"message":"Incorrect API key provided: sk-live-9f8e7d6c5b4a3928. See https://example.com/keys.","code":"invalid_api_key"}}`
		srv, requests, _ := modelsServer(t, "", 401, body)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		for range 2 {
			_, err := c.Models(t.Context())
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 401 {
				t.Fatalf("got error %v, want a 401 *StatusError", err)
			}
			if got := se.UserReason(); got != "Incorrect API key provided" {
				t.Errorf("got UserReason %q, want %q", got, "Incorrect API key provided")
			}
		}
		if n := requests.Load(); n != 2 {
			t.Errorf("got %d requests, want 2: errors are not cached", n)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		srv, _, _ := modelsServer(t, "", 200, "<html>hello</html>")
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
		if _, err := c.Models(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "aura: models: unreadable list") {
			t.Errorf("got error %v, want an unreadable list", err)
		}
	})
	t.Run("key never in an error", func(t *testing.T) {
		const key = "sk-SECRET-key-123"
		srv, _, _ := modelsServer(t, "", 403, `{"error":{"message":"key `+key+` is not allowed"}}`)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m", Key: key, Redact: strings.NewReplacer(key, "[redacted]").Replace})
		_, err := c.Models(t.Context())
		if err == nil || strings.Contains(err.Error(), key) {
			t.Errorf("got error %v, want one without the key", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c := newTestClient(t, Config{BaseURL: url, Protocol: ProtocolOpenAI, Model: "m"})
		if _, err := c.Models(t.Context()); !errors.Is(err, ErrConnect) {
			t.Errorf("got error %v, want one matching ErrConnect", err)
		}
	})
	t.Run("server never answers", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		t.Cleanup(srv.Close)
		c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m", FirstByteTimeout: 20 * time.Millisecond})
		if _, err := c.Models(t.Context()); !errors.Is(err, ErrFirstByteTimeout) {
			t.Errorf("got error %v, want one matching ErrFirstByteTimeout", err)
		}
	})
}

func TestModelsChatbotUI(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	for _, tt := range []struct{ model, want string }{{"", "openchat_3.6"}, {"mine", "mine"}} {
		c := newTestClient(t, Config{BaseURL: srv.URL, Model: tt.model})
		got, err := c.Models(t.Context())
		if err != nil || !slices.Equal(got, []string{tt.want}) {
			t.Errorf("got %q, %v; want [%q]", got, err, tt.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}
