package aura

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Ollama has routes of its own that say what a model is and can do (/api/show); other servers
// cannot say.

// Capabilities is what a server says one model can do.
type Capabilities struct {
	// Known reports that the server said: an Ollama server (0.6.4 and later) answers
	// /api/show with a model's capabilities. When false nothing is known, and List is empty.
	Known bool
	// List holds the capabilities as the server names them: Ollama's are "completion",
	// "vision", "tools", "insert", "embedding" and "thinking".
	List []string
}

// Has reports whether the server listed the capability name.
func (c Capabilities) Has(name string) bool { return slices.Contains(c.List, name) }

// Vision is the capability of a model that sees pictures.
const Vision = "vision"

// SameModel reports whether a and b name the same model. Ollama gives a model without a tag the
// tag "latest": "llama3.2" and "llama3.2:latest" are one model, and its list shows the second.
func SameModel(a, b string) bool {
	return strings.TrimSuffix(a, ":latest") == strings.TrimSuffix(b, ":latest")
}

// ErrNoSuchModel means the server says it has no model of that name.
var ErrNoSuchModel = errors.New("aura: the server has no such model")

// ollamaCache remembers whether the server is Ollama (asked once, the first time it matters)
// and what it said about each model (asked once per model).
type ollamaCache struct {
	is   atomic.Pointer[bool] // nil until the server answered
	caps sync.Map             // model name without ":latest" -> Capabilities
}

// ollamaRoot is the server's root URL, where Ollama's own routes are.
func (c *Client) ollamaRoot() string {
	return strings.TrimSuffix(c.endpoint, "/v1/chat/completions")
}

// isOllama reports whether the server is Ollama: whether GET /api/version answers with a
// version. A definite answer is kept; a failure to ask is an error, and is asked again next
// time. The chatbot-ui protocol is never Ollama.
func (c *Client) isOllama(ctx context.Context) (bool, error) {
	if !c.openai {
		return false, nil
	}
	if is := c.ollama.is.Load(); is != nil {
		return *is, nil
	}
	resp, body, err := c.ask(ctx, http.MethodGet, c.ollamaRoot()+"/api/version", nil)
	if err != nil {
		return false, err
	}
	var v struct {
		Version string `json:"version"`
	}
	is := resp.StatusCode == http.StatusOK && json.Unmarshal(body, &v) == nil && v.Version != ""
	c.ollama.is.Store(&is)
	c.log.DebugContext(ctx, "aura: asked whether the server is Ollama", "ollama", is, "version", v.Version)
	return is, nil
}

// Capabilities returns what the server says model can do ("" means Config.Model). Only an
// Ollama server says (its /api/show, asked once per model and kept); elsewhere, and from an
// Ollama too old to list capabilities, it is Capabilities{} with no error. A model Ollama does
// not have gives an error wrapping ErrNoSuchModel; a failure to ask, another error. Neither is
// kept.
func (c *Client) Capabilities(ctx context.Context, model string) (Capabilities, error) {
	if model == "" {
		model = c.model
	}
	ollama, err := c.isOllama(ctx)
	if err != nil || !ollama {
		return Capabilities{}, err
	}
	key := strings.TrimSuffix(model, ":latest")
	if caps, ok := c.ollama.caps.Load(key); ok {
		return caps.(Capabilities), nil
	}
	caps, err := c.show(ctx, model)
	if err != nil {
		return Capabilities{}, err
	}
	c.ollama.caps.Store(key, caps)
	c.log.DebugContext(ctx, "aura: model capabilities", "model", model, "capabilities", caps.List)
	return caps, nil
}

// show asks Ollama's POST /api/show about model.
func (c *Client) show(ctx context.Context, model string) (Capabilities, error) {
	req, _ := json.Marshal(map[string]string{"model": model})
	resp, body, err := c.ask(ctx, http.MethodPost, c.ollamaRoot()+"/api/show", req)
	switch {
	case err != nil:
		return Capabilities{}, err
	case resp.StatusCode == http.StatusNotFound:
		return Capabilities{}, fmt.Errorf("%w: %q", ErrNoSuchModel, model)
	case resp.StatusCode != http.StatusOK:
		return Capabilities{}, fmt.Errorf("aura: show model: server answered %d", resp.StatusCode)
	}
	var info struct {
		Capabilities *[]string `json:"capabilities"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return Capabilities{}, fmt.Errorf("aura: show model: unreadable answer: %w", err)
	}
	if info.Capabilities == nil {
		return Capabilities{}, nil // an Ollama older than 0.6.4: it does not say
	}
	return Capabilities{Known: true, List: *info.Capabilities}, nil
}
