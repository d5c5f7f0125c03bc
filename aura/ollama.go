package aura

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// What an openai-dialect server is asked about its models, beyond the list. Ollama has routes
// of its own that say what a model is and can do (/api/show); other servers are asked the
// ordinary way.

// Capabilities is what a server says one model can do.
type Capabilities struct {
	// Known reports that the server said: an Ollama server (0.6.4 and later) answers /api/show
	// with a model's capabilities. When false nothing is known, and List is empty.
	Known bool
	// List holds the capabilities as the server names them: Ollama's are "completion",
	// "vision", "tools", "insert", "embedding" and "thinking".
	List []string
}

// Has reports whether the server listed the capability name.
func (c Capabilities) Has(name string) bool { return slices.Contains(c.List, name) }

// Vision is the capability of a model that sees pictures.
const Vision = "vision"

// SameModel reports whether a and b name the same model. Ollama gives a model without a tag
// the tag "latest": "llama3.2" and "llama3.2:latest" are one model, and its list shows the
// second. Other names are compared as they are.
func SameModel(a, b string) bool {
	return strings.TrimSuffix(a, ":latest") == strings.TrimSuffix(b, ":latest")
}

// ollamaCache remembers whether the server is Ollama (asked once, the first time it matters)
// and what it said about each model (asked once per model).
type ollamaCache struct {
	mu     sync.Mutex
	probed bool // is is the server's answer
	is     bool
	caps   map[string]Capabilities // by model name, without ":latest"
}

// ollamaRoot is the server's root URL, where Ollama's own routes are: the chat endpoint
// without "/v1/chat/completions".
func (c *Client) ollamaRoot() string {
	return strings.TrimSuffix(c.endpoint, "/v1/chat/completions")
}

// isOllama reports whether the server is Ollama: whether GET /api/version answers with a
// version. A definite answer is kept; a failure to ask is an error, and is asked again next
// time. The chatbot-ui protocol is never Ollama.
func (c *Client) isOllama(ctx context.Context) (bool, error) {
	if !c.dialect.listsModels() {
		return false, nil
	}
	c.ollama.mu.Lock()
	probed, is := c.ollama.probed, c.ollama.is
	c.ollama.mu.Unlock()
	if probed {
		return is, nil
	}
	status, body, err := c.ask(ctx, http.MethodGet, c.ollamaRoot()+"/api/version", nil)
	if err != nil {
		return false, err
	}
	var v struct {
		Version string `json:"version"`
	}
	is = status == http.StatusOK && json.Unmarshal(body, &v) == nil && v.Version != ""
	c.ollama.mu.Lock()
	c.ollama.probed, c.ollama.is = true, is
	c.ollama.mu.Unlock()
	c.log.DebugContext(ctx, "aura: asked whether the server is Ollama", "ollama", is, "version", v.Version)
	return is, nil
}

// ErrNoSuchModel means the server says it has no model of that name.
var ErrNoSuchModel = errors.New("aura: the server has no such model")

// Capabilities returns what the server says model can do ("" means Config.Model). Only an
// Ollama server says (its /api/show, asked once per model and kept); elsewhere, and from an
// Ollama too old to list capabilities, it is Capabilities{} with no error. A model Ollama does
// not have gives an error wrapping ErrNoSuchModel; a failure to ask, another error. Neither
// is kept.
func (c *Client) Capabilities(ctx context.Context, model string) (Capabilities, error) {
	if model == "" {
		model = c.dialect.configuredModel()
	}
	ollama, err := c.isOllama(ctx)
	if err != nil || !ollama {
		return Capabilities{}, err
	}
	key := strings.TrimSuffix(model, ":latest")
	c.ollama.mu.Lock()
	caps, ok := c.ollama.caps[key]
	c.ollama.mu.Unlock()
	if ok {
		return caps, nil
	}
	caps, err = c.show(ctx, model)
	if err != nil {
		return Capabilities{}, err
	}
	c.ollama.mu.Lock()
	if c.ollama.caps == nil {
		c.ollama.caps = map[string]Capabilities{}
	}
	c.ollama.caps[key] = caps
	c.ollama.mu.Unlock()
	c.log.DebugContext(ctx, "aura: model capabilities", "model", model, "capabilities", caps.List)
	return caps, nil
}

// show asks Ollama's POST /api/show about model.
func (c *Client) show(ctx context.Context, model string) (Capabilities, error) {
	req, _ := json.Marshal(map[string]string{"model": model})
	status, body, err := c.ask(ctx, http.MethodPost, c.ollamaRoot()+"/api/show", req)
	switch {
	case err != nil:
		return Capabilities{}, err
	case status == http.StatusNotFound:
		return Capabilities{}, fmt.Errorf("%w: %q", ErrNoSuchModel, model)
	case status != http.StatusOK:
		return Capabilities{}, fmt.Errorf("aura: show model: server answered %d", status)
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

// HasModel reports whether the server serves model, for a name its list (Models) lacks. Ollama
// is asked with /api/show; another openai server with GET /v1/models/{model}, and when that
// does not say yes, with a chat request for one token of answer. In the chatbot-ui protocol,
// which cannot ask, only the configured model is known. A refusal that is not "no such model"
// (an unreachable server, a 401) is an error.
func (c *Client) HasModel(ctx context.Context, model string) (bool, error) {
	if !c.dialect.listsModels() {
		return SameModel(model, c.dialect.configuredModel()), nil
	}
	ollama, err := c.isOllama(ctx)
	if err != nil {
		return false, err
	}
	if ollama {
		_, err := c.show(ctx, model)
		if errors.Is(err, ErrNoSuchModel) {
			return false, nil
		}
		return err == nil, err
	}
	base := strings.TrimSuffix(c.endpoint, "/chat/completions")
	status, _, err := c.ask(ctx, http.MethodGet, base+"/models/"+url.PathEscape(model), nil)
	if err != nil {
		return false, err
	}
	if status == http.StatusOK {
		return true, nil
	}
	// Not every server has that route (llama.cpp, LM Studio): a 404 may be the route's. A
	// request the server answers tells.
	body, _ := json.Marshal(map[string]any{
		"model":      model,
		"messages":   []map[string]string{{"role": RoleUser, "content": "hi"}},
		"max_tokens": 1,
		"stream":     false,
	})
	status, reply, err := c.ask(ctx, http.MethodPost, c.endpoint, body)
	switch {
	case err != nil:
		return false, err
	case status >= 200 && status <= 299:
		return true, nil
	case status == http.StatusNotFound:
		return false, nil
	}
	se := c.redactor.statusError(c.dialect.statusError(&http.Response{StatusCode: status, Status: fmt.Sprint(status)}, reply))
	if status == http.StatusBadRequest && strings.Contains(strings.ToLower(se.Reason), "model") {
		return false, nil // vLLM: "The model `x` does not exist."
	}
	return false, se
}

// maxAskBody bounds what ask reads of an answer: /api/show describes a model at length (its
// template, license and parameters), a few hundred KB for some.
const maxAskBody = 4 << 20

// ask makes one request to the server with the Client's headers, bounded by
// Config.FirstByteTimeout as a whole, and returns the status and the body. Errors are a
// failure to get an answer at all.
func (c *Client) ask(ctx context.Context, method, endpoint string, body []byte) (int, []byte, error) {
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.firstByte, ErrFirstByteTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, endpoint, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("aura: build request: %w", err)
	}
	req.Header = c.header.Clone()
	req.Header.Set("Accept", "application/json")
	if body == nil {
		req.Header.Del("Content-Type")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, c.modelsError(ctx, reqCtx, fmt.Errorf("%w: %w", ErrConnect, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAskBody))
	if err != nil {
		return 0, nil, c.modelsError(ctx, reqCtx, fmt.Errorf("aura: read answer: %w", err))
	}
	return resp.StatusCode, data, nil
}
