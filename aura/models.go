package aura

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// modelsTTL is how long Models keeps a server's list.
const modelsTTL = time.Minute

// maxModelsBody bounds the model list read: some servers (OpenRouter, say)
// describe hundreds of models at length.
const maxModelsBody = 8 << 20

// modelCache holds the last model list a server sent. Its zero value is
// empty.
type modelCache struct {
	mu     sync.Mutex
	ids    []string
	expiry time.Time
}

// Models returns the names of the models the server offers, in the
// server's order. In the openai protocol it asks GET {BaseURL}/v1/models
// (a BaseURL that ends in "/v1" gets only "/models"), with the same
// Authorization as a chat request, and keeps the answer for a minute; in
// the chatbot-ui protocol, which has no list, it returns the configured
// model id alone. The request is bounded by Config.FirstByteTimeout. A
// refusal is a *StatusError; errors are never cached.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	if !c.dialect.listsModels() {
		return []string{c.dialect.configuredModel()}, nil
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	c.models.mu.Lock()
	if c.models.ids != nil && now().Before(c.models.expiry) {
		ids := slices.Clone(c.models.ids)
		c.models.mu.Unlock()
		return ids, nil
	}
	c.models.mu.Unlock()

	ids, err := c.fetchModels(ctx)
	if err != nil {
		return nil, err
	}
	c.models.mu.Lock()
	c.models.ids, c.models.expiry = ids, now().Add(modelsTTL)
	c.models.mu.Unlock()
	return slices.Clone(ids), nil
}

// fetchModels asks the server for its model list.
func (c *Client) fetchModels(ctx context.Context) ([]string, error) {
	reqCtx, cancel := context.WithTimeoutCause(ctx, c.firstByte, ErrFirstByteTimeout)
	defer cancel()
	// The chat endpoint ends in "/chat/completions"; the list sits beside it.
	endpoint := strings.TrimSuffix(c.endpoint, "/chat/completions") + "/models"
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("aura: models: build request: %w", err)
	}
	req.Header = c.header.Clone()
	req.Header.Del("Content-Type")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.modelsError(ctx, reqCtx, fmt.Errorf("%w: %w", ErrConnect, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		return nil, c.redactor.statusError(c.dialect.statusError(resp, data))
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxModelsBody)).Decode(&list); err != nil {
		return nil, c.modelsError(ctx, reqCtx, fmt.Errorf("aura: models: unreadable list: %w", err))
	}
	// Read a little further, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	ids := make([]string, 0, len(list.Data))
	for _, m := range list.Data {
		if m.ID != "" {
			ids = append(ids, m.ID)
		}
	}
	return ids, nil
}

// modelsError prefers the reason a request was stopped to err.
func (c *Client) modelsError(ctx, reqCtx context.Context, err error) error {
	if ctx.Err() != nil {
		return cancelError(ctx)
	}
	if errors.Is(context.Cause(reqCtx), ErrFirstByteTimeout) {
		return fmt.Errorf("aura: models: %w (waited %s)", ErrFirstByteTimeout, c.firstByte)
	}
	return err
}
