package aura

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// chatbotUI speaks the legacy chatbot-ui "/api/chat" route: a JSON request,
// a plain-text reply body with no framing, which ends when the body ends.
type chatbotUI struct {
	model       chatbotUIModel
	key         string
	temperature float64
	referer     string
}

type chatbotUIModel struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	MaxLength  int    `json:"maxLength"`
	TokenLimit int    `json:"tokenLimit"`
}

// chatbotUIRequest is the request body; the field order is the reference's.
type chatbotUIRequest struct {
	Model       chatbotUIModel `json:"model"`
	Messages    []Message      `json:"messages"`
	Key         string         `json:"key"`
	Prompt      string         `json:"prompt"`
	Temperature float64        `json:"temperature"`
}

const (
	defaultChatbotUIModel      = "openchat_3.6"
	defaultChatbotUITokenLimit = 8192
)

// knownModelName returns the display name openchat.team used for a model id.
func knownModelName(id string) string {
	switch id {
	case "openchat_3.6":
		return "OpenChat 3.6 (latest)"
	case "openchat_v3.2_mistral":
		return "OpenChat 3.5 (latest)"
	}
	return ""
}

func newChatbotUI(cfg Config) (*chatbotUI, error) {
	if cfg.MaxLength < 0 || cfg.TokenLimit < 0 {
		return nil, errors.New("aura: max length and token limit must not be negative")
	}
	m := chatbotUIModel{ID: cfg.Model, Name: cfg.ModelName, MaxLength: cfg.MaxLength, TokenLimit: cfg.TokenLimit}
	if m.ID == "" {
		m.ID = defaultChatbotUIModel
	}
	if m.Name == "" {
		m.Name = knownModelName(m.ID)
	}
	if m.Name == "" {
		m.Name = m.ID
	}
	if m.TokenLimit == 0 {
		m.TokenLimit = defaultChatbotUITokenLimit
	}
	if m.MaxLength == 0 {
		// The web client's character limit: three characters per token.
		m.MaxLength = 3 * m.TokenLimit
	}
	return &chatbotUI{model: m, key: cfg.Key, temperature: cfg.Temperature, referer: cfg.BaseURL}, nil
}

func (d *chatbotUI) path(base string) string { return base + "/api/chat" }

func (d *chatbotUI) configuredModel() string { return d.model.ID }

// listsModels is false: the route has no model list.
func (d *chatbotUI) listsModels() bool { return false }

func (d *chatbotUI) setHeader(h http.Header) {
	// The headers the Python provider sent, so that the site's bot check
	// sees what it saw then.
	h.Set("Accept", "*/*")
	h.Set("Accept-Language", "en-US")
	h.Set("Referer", d.referer)
}

// encode moves system messages into "prompt", joined with "\n", as the
// provider did; the server would otherwise use its own default prompt.
// Every text goes through DefuseSpecialTokens: the server counts tokens
// with tiktoken, which throws on a special token such as "<|endoftext|>"
// in the text, and the server answers 500 to every request that holds it.
// usage is ignored: the protocol has no usage report.
func (d *chatbotUI) encode(model string, msgs []Message, _ bool) ([]byte, error) {
	m := d.model
	if model != "" && model != m.ID {
		m.ID, m.Name = model, knownModelName(model)
		if m.Name == "" {
			m.Name = model
		}
	}
	req := chatbotUIRequest{
		Model:       m,
		Messages:    make([]Message, 0, len(msgs)),
		Key:         d.key,
		Temperature: d.temperature,
	}
	var prompt []string
	for i, m := range msgs {
		if len(m.Images) > 0 {
			return nil, fmt.Errorf("%w (message %d has %d)", ErrImagesUnsupported, i, len(m.Images))
		}
		switch m.Role {
		case RoleSystem:
			prompt = append(prompt, DefuseSpecialTokens(m.Content))
		case RoleUser, RoleAssistant:
			req.Messages = append(req.Messages, Message{Role: m.Role, Content: DefuseSpecialTokens(m.Content)})
		default:
			return nil, fmt.Errorf("aura: message %d has unknown role %q", i, m.Role)
		}
	}
	req.Prompt = strings.Join(prompt, "\n")
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("aura: encode request: %w", err)
	}
	return b, nil
}

// statusError takes the reason from the status line: the server answers
// "HTTP/1.1 500 <reason>" with the body "Error".
func (d *chatbotUI) statusError(resp *http.Response, body []byte) *StatusError {
	return &StatusError{
		StatusCode: resp.StatusCode,
		Reason:     reasonPhrase(resp),
		Body:       truncateUTF8(string(body), maxErrorBody),
	}
}

// reasonPhrase returns the text after the code in the status line. (HTTP/2
// has no reason phrase; net/http fills in the standard text.)
func reasonPhrase(resp *http.Response) string {
	return strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
}

func (d *chatbotUI) newDecoder() decoder { return plainDecoder{} }

// plainDecoder passes the body through: the body is the reply. (A <think> block in it is
// taken out by Chat, as in every protocol.)
type plainDecoder struct{}

func (plainDecoder) decode(dst *decoded, p []byte) (bool, error) {
	dst.add(answerText, p)
	return false, nil
}

// end accepts any clean end: the reply ends when the body does. A truncated
// chunked body is not a clean end; net/http reports it as a read error.
func (plainDecoder) end(*decoded) error { return nil }

// complete has nothing to report: the body carries nothing but text.
func (plainDecoder) complete() error { return nil }

// trail is never called: the reply ends only with the body.
func (plainDecoder) trail([]byte) {}

// usage: the protocol reports none.
func (plainDecoder) usage() (Usage, bool) { return Usage{}, false }
