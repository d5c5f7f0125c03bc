package aura

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestSameModel(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"tiny", "tiny", true},
		{"tiny", "tiny:latest", true},
		{"tiny:latest", "tiny", true},
		{"tiny:latest", "tiny:latest", true},
		{"tiny", "tiny:7b", false},
		{"tiny", "tiny-long", false},
		{"gpt-4o", "gpt-4o-mini", false},
	} {
		if got := SameModel(tt.a, tt.b); got != tt.want {
			t.Errorf("SameModel(%q, %q): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// ollamaServer answers as Ollama 0.24 does: GET /api/version, and POST /api/show with the
// capabilities of the models it has (a model named without a tag is the "latest" one, 404
// "model 'x' not found" for any other). It counts the requests by path.
type ollamaServer struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls map[string]int
	shown []string // the model of each /api/show
}

func newOllamaServer(t *testing.T, models map[string][]string) *ollamaServer {
	o := &ollamaServer{calls: map[string]int{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.calls[r.Method+" "+r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/version":
			_, _ = io.WriteString(w, `{"version":"0.24.0"}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/show":
			var req struct{ Model string }
			_ = json.NewDecoder(r.Body).Decode(&req)
			o.mu.Lock()
			o.shown = append(o.shown, req.Model)
			o.mu.Unlock()
			name := req.Model
			if !strings.Contains(name, ":") {
				name += ":latest"
			}
			caps, ok := models[name]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `{"error":"model '`+req.Model+`' not found"}`)
				return
			}
			show := map[string]any{"modelfile": "# big", "template": "{{ .Prompt }}", "details": map[string]string{"family": "llama"}}
			if caps != nil {
				show["capabilities"] = caps
			}
			_ = json.NewEncoder(w).Encode(show)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "404 page not found")
		}
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *ollamaServer) count(route string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[route]
}

// Capabilities come from Ollama's /api/show, asked once per model ("tiny" and "tiny:latest"
// being one), after one /api/version; a model Ollama lacks is an error, not kept.
func TestCapabilitiesOllama(t *testing.T) {
	o := newOllamaServer(t, map[string][]string{
		"tiny:latest":   {"completion"},
		"seer:latest":   {"completion", "vision"},
		"old:latest":    nil, // an Ollama before capabilities
		"seer:13b-q4_0": {"completion", "vision", "tools"},
	})
	for _, suffix := range []string{"", "/v1"} {
		t.Run("base URL"+suffix, func(t *testing.T) {
			c := newTestClient(t, Config{BaseURL: o.srv.URL + suffix, Protocol: ProtocolOpenAI, Model: "tiny"})
			before := o.count("POST /api/show")
			for _, tt := range []struct {
				model        string
				known, sight bool
			}{
				{"", true, false}, // the configured model
				{"tiny", true, false},
				{"tiny:latest", true, false},
				{"seer:latest", true, true},
				{"seer", true, true},
				{"seer:13b-q4_0", true, true},
				{"old", false, false},
			} {
				caps, err := c.Capabilities(t.Context(), tt.model)
				if err != nil || caps.Known != tt.known || caps.Has(Vision) != tt.sight {
					t.Errorf("Capabilities(%q): got %+v, %v; want known %v, vision %v", tt.model, caps, err, tt.known, tt.sight)
				}
			}
			if n := o.count("POST /api/show") - before; n != 4 {
				t.Errorf("got %d /api/show requests, want 4 (one per model)", n)
			}
			for range 2 {
				if _, err := c.Capabilities(t.Context(), "missing"); !errors.Is(err, ErrNoSuchModel) {
					t.Errorf("a model Ollama lacks: got %v, want ErrNoSuchModel", err)
				}
			}
			if n := o.count("POST /api/show") - before; n != 6 {
				t.Errorf("got %d /api/show requests, want 6: a missing model is asked each time", n)
			}
		})
	}
	if n := o.count("GET /api/version"); n != 2 {
		t.Errorf("got %d /api/version requests, want one per client", n)
	}
}

// Other servers are asked once whether they are Ollama, and say nothing of capabilities; the
// chatbot-ui protocol asks nothing at all.
func TestCapabilitiesElsewhere(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		http.NotFound(w, r) // llama.cpp, vLLM: no such route
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
	for range 3 {
		if caps, err := c.Capabilities(t.Context(), "m"); err != nil || caps.Known {
			t.Errorf("got %+v, %v; want nothing known and no error", caps, err)
		}
	}
	ui := newTestClient(t, Config{BaseURL: srv.URL})
	if caps, err := ui.Capabilities(t.Context(), ""); err != nil || caps.Known {
		t.Errorf("chatbot-ui: got %+v, %v; want nothing known and no error", caps, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/api/version" {
		t.Errorf("got requests %q, want one GET /api/version", paths)
	}
}

// A server that cannot be reached is asked again next time: nothing is kept.
func TestCapabilitiesUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newTestClient(t, Config{BaseURL: url, Protocol: ProtocolOpenAI, Model: "m"})
	if _, err := c.Capabilities(t.Context(), "m"); !errors.Is(err, ErrConnect) {
		t.Errorf("got %v, want ErrConnect", err)
	}
	if c.ollama.is.Load() != nil {
		t.Error("the failed probe was kept")
	}
}

func TestHasModelOllama(t *testing.T) {
	o := newOllamaServer(t, map[string][]string{"tiny-a:latest": {"completion"}, "tiny-long:latest": {"completion"}})
	c := newTestClient(t, Config{BaseURL: o.srv.URL, Protocol: ProtocolOpenAI, Model: "tiny-a"})
	for _, tt := range []struct {
		model string
		want  bool
	}{{"tiny-long", true}, {"tiny-long:latest", true}, {"tiny-short", false}} {
		if got, err := c.HasModel(t.Context(), tt.model); got != tt.want || err != nil {
			t.Errorf("HasModel(%q): got %v, %v; want %v", tt.model, got, err, tt.want)
		}
	}
	if n := o.count("POST /v1/chat/completions"); n != 0 {
		t.Errorf("got %d chat requests, want none: Ollama says it with /api/show", n)
	}
}

// A server that is not Ollama is asked GET /v1/models/{id}, then with a one-token request.
func TestHasModelOpenAI(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	for _, tt := range []struct {
		name      string
		retrieve  answer // GET /v1/models/{id}
		chat      answer // POST /v1/chat/completions
		want      bool
		wantErr   bool
		wantChats int
	}{
		{name: "openai retrieves it", retrieve: answer{200, `{"id":"x","object":"model"}`}, want: true},
		{name: "no retrieve route, the request succeeds", retrieve: answer{404, "Not Found"}, chat: answer{200, `{"choices":[]}`}, want: true, wantChats: 1},
		{name: "no such model: 404", retrieve: answer{404, `{"error":{"message":"The model x does not exist"}}`}, chat: answer{404, `{"error":{"message":"The model x does not exist"}}`}, want: false, wantChats: 1},
		{name: "no such model: vLLM's 400", retrieve: answer{404, `{"detail":"Not Found"}`}, chat: answer{400, `{"object":"error","message":"The model x does not exist.","code":404}`}, want: false, wantChats: 1},
		{name: "refused for another reason", retrieve: answer{401, `{"error":{"message":"bad key"}}`}, chat: answer{401, `{"error":{"message":"bad key"}}`}, wantErr: true, wantChats: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			chats := 0
			var body map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var a answer
				switch {
				case r.URL.Path == "/api/version":
					http.NotFound(w, r)
					return
				case r.Method == http.MethodGet && r.URL.Path == "/v1/models/x":
					a = tt.retrieve
				case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
					mu.Lock()
					chats++
					_ = json.NewDecoder(r.Body).Decode(&body)
					mu.Unlock()
					a = tt.chat
				default:
					t.Errorf("server: got %s %s", r.Method, r.URL.Path)
					return
				}
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"})
			got, err := c.HasModel(t.Context(), "x")
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("got %v, %v; want %v (error: %v)", got, err, tt.want, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if chats != tt.wantChats {
				t.Errorf("got %d chat requests, want %d", chats, tt.wantChats)
			}
			if chats > 0 && (body["model"] != "x" || body["max_tokens"] != float64(1) || body["stream"] != false) {
				t.Errorf("got the request %v, want model x, max_tokens 1, no stream", body)
			}
		})
	}
}

func TestHasModelChatbotUI(t *testing.T) {
	c := newTestClient(t, Config{BaseURL: "http://127.0.0.1:1", Model: "openchat_3.6"})
	for _, tt := range []struct {
		model string
		want  bool
	}{{"openchat_3.6", true}, {"other", false}} {
		if got, err := c.HasModel(t.Context(), tt.model); got != tt.want || err != nil {
			t.Errorf("HasModel(%q): got %v, %v; want %v", tt.model, got, err, tt.want)
		}
	}
}
