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
	"sync/atomic"
	"time"
)

// What an openai-dialect server is asked about its models: the list, a model it does not list,
// and what a model can do, which only Ollama says (/api/show).
const modelsTTL = time.Minute

// keptModels is the last list a server sent, kept until expiry.
type keptModels struct {
	ids    []string
	expiry time.Time
}

// Models returns the names of the models the server offers, in its order: openai's GET /v1/models,
// kept a minute (errors are not kept); in chatbot-ui, which has no list, the configured model
// alone. A refusal is a *StatusError.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	if !c.openai {
		return []string{c.model}, nil
	}
	if l := c.models.Load(); l != nil && c.now().Before(l.expiry) {
		return slices.Clone(l.ids), nil
	}

	resp, body, err := c.ask(ctx, http.MethodGet, c.beside("/models"), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(resp.StatusCode, resp.Status, body)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("aura: models: unreadable list: %w", err)
	}
	ids := make([]string, 0, len(list.Data))
	for _, m := range list.Data {
		if m.ID != "" {
			ids = append(ids, m.ID)
		}
	}
	c.models.Store(&keptModels{ids, c.now().Add(modelsTTL)})
	return slices.Clone(ids), nil
}

// beside returns the URL of an openai route beside the chat endpoint: /v1 + path.
func (c *Client) beside(path string) string {
	return strings.TrimSuffix(c.endpoint, "/chat/completions") + path
}

// HasModel reports whether the server serves model, for a name its list (Models) lacks: Ollama's
// /api/show; elsewhere GET /v1/models/{model}, then a chat request for one token. In chatbot-ui
// only the configured model is known. A failure that is not "no such model" is an error.
func (c *Client) HasModel(ctx context.Context, model string) (bool, error) {
	if !c.openai {
		return SameModel(model, c.model), nil
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
	resp, _, err := c.ask(ctx, http.MethodGet, c.beside("/models/"+url.PathEscape(model)), nil)
	if err != nil || resp.StatusCode == http.StatusOK {
		return err == nil, err
	}
	// Not every server has that route (llama.cpp, LM Studio): a 404 may be the route's. A
	// request the server answers tells.
	req, _ := json.Marshal(map[string]any{
		"model":      model,
		"messages":   []map[string]string{{"role": RoleUser, "content": "hi"}},
		"max_tokens": 1,
		"stream":     false,
	})
	resp, body, err := c.ask(ctx, http.MethodPost, c.endpoint, req)
	switch {
	case err != nil:
		return false, err
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return true, nil
	case resp.StatusCode == http.StatusNotFound:
		return false, nil
	}
	se := c.statusError(resp.StatusCode, "", body)
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(strings.ToLower(se.Reason), "model") {
		return false, nil // vLLM: "The model `x` does not exist."
	}
	return false, se
}

// maxAskBody bounds what ask reads: OpenRouter describes hundreds of models at length.
const maxAskBody = 8 << 20

// ask makes one request with the Client's headers, bounded by Config.FirstByteTimeout as a whole,
// and returns the response and its body, read and closed. Errors: no answer at all.
func (c *Client) ask(ctx context.Context, method, endpoint string, body []byte) (*http.Response, []byte, error) {
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.firstByte, ErrFirstByteTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, endpoint, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("aura: build request: %w", err)
	}
	req.Header = c.header.Clone()
	req.Header.Set("Accept", "application/json")
	if body == nil {
		req.Header.Del("Content-Type")
	}
	fail := func(err error) (*http.Response, []byte, error) {
		if e := c.stopError(ctx, reqCtx); e != nil {
			return nil, nil, e // the caller's context, or Config.FirstByteTimeout
		}
		return nil, nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrConnect, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAskBody))
	if err != nil {
		return fail(fmt.Errorf("aura: read answer: %w", err))
	}
	return resp, data, nil
}

// Capabilities is what a server says one model can do.
type Capabilities struct {
	Known bool // the server said (Ollama 0.6.4 and later); else List is empty
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

// ollamaCache remembers whether the server is Ollama and what it said about each model.
type ollamaCache struct {
	is   atomic.Pointer[bool] // nil until the server answered
	caps sync.Map             // model name without ":latest" -> Capabilities
}

// ollamaRoot is the server's root URL, where Ollama's own routes are.
func (c *Client) ollamaRoot() string {
	return strings.TrimSuffix(c.endpoint, "/v1/chat/completions")
}

// isOllama reports whether GET /api/version answers with a version. An answer is kept; a failure
// to ask is an error, asked again next time. chatbot-ui is never Ollama.
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

// Capabilities returns what the server says model can do ("": Config.Model). Only Ollama says
// (/api/show, kept per model); elsewhere it is Capabilities{} with no error. A model Ollama does
// not have gives ErrNoSuchModel; errors are not kept.
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
