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
	"time"
)

// What an openai-dialect server is asked about its models: the list, and a model it does not
// list. (Ollama's own routes, which also say what a model can do, are in ollama.go.)

// modelsTTL is how long Models keeps a server's list.
const modelsTTL = time.Minute

// modelCache holds the last model list a server sent.
type modelCache struct {
	mu     sync.Mutex
	ids    []string
	expiry time.Time
}

// Models returns the names of the models the server offers, in the server's order. In the
// openai protocol it asks GET {BaseURL}/v1/models (a BaseURL that ends in "/v1" gets only
// "/models"), with the same Authorization as a chat request, and keeps the answer for a minute;
// in the chatbot-ui protocol, which has no list, it returns the configured model id alone. The
// request is bounded by Config.FirstByteTimeout. A refusal is a *StatusError; errors are never
// cached.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	if !c.openai {
		return []string{c.model}, nil
	}
	c.models.mu.Lock()
	if c.models.ids != nil && c.now().Before(c.models.expiry) {
		ids := slices.Clone(c.models.ids)
		c.models.mu.Unlock()
		return ids, nil
	}
	c.models.mu.Unlock()

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
	c.models.mu.Lock()
	c.models.ids, c.models.expiry = ids, c.now().Add(modelsTTL)
	c.models.mu.Unlock()
	return slices.Clone(ids), nil
}

// beside returns the URL of the openai route path beside the chat endpoint ("/models" for
// "/v1/chat/completions" gives "/v1/models").
func (c *Client) beside(path string) string {
	return strings.TrimSuffix(c.endpoint, "/chat/completions") + path
}

// HasModel reports whether the server serves model, for a name its list (Models) lacks. Ollama
// is asked with /api/show; another openai server with GET /v1/models/{model}, and when that
// does not say yes, with a chat request for one token of answer. In the chatbot-ui protocol,
// which cannot ask, only the configured model is known. A refusal that is not "no such model"
// (an unreachable server, a 401) is an error.
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

// maxAskBody bounds what ask reads of an answer: some servers (OpenRouter, say) describe
// hundreds of models at length, and Ollama's /api/show a model's template, license and
// parameters.
const maxAskBody = 8 << 20

// ask makes one request to the server with the Client's headers, bounded by
// Config.FirstByteTimeout as a whole, and returns the response (its body read and closed) and
// the body. Errors are a failure to get an answer at all.
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
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, c.askError(ctx, reqCtx, fmt.Errorf("%w: %w", ErrConnect, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAskBody))
	if err != nil {
		return nil, nil, c.askError(ctx, reqCtx, fmt.Errorf("aura: read answer: %w", err))
	}
	return resp, data, nil
}

// askError prefers the reason a request was stopped to err.
func (c *Client) askError(ctx, reqCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return cancelError(ctx)
	}
	if errors.Is(context.Cause(reqCtx), ErrFirstByteTimeout) {
		return fmt.Errorf("aura: models: %w (waited %s)", ErrFirstByteTimeout, c.firstByte)
	}
	return err
}
