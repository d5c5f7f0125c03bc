package aura

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// dialect is what differs between the wire protocols: the request, and the decoding of the body.
type dialect interface {
	// request returns the request body for msgs and model ("": the configured one); usage asks
	// for the tokens counted, where the protocol can.
	request(model string, msgs []Message, usage bool) (any, error)
	newDecoder() decoder
}

func (c *Client) encode(model string, msgs []Message, usage bool) ([]byte, error) {
	req, err := c.dialect.request(model, msgs, usage)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("aura: encode request: %w", err)
	}
	return b, nil
}

// turns checks the roles and images of msgs, passes each user and assistant message to turn,
// and returns the system messages' contents. Both protocols send them as one, joined with "\n":
// chatbot-ui takes one prompt, and many chat templates take one system message, at the start.
func turns(msgs []Message, images bool, turn func(Message) error) (system []string, err error) {
	for i, m := range msgs {
		switch {
		case len(m.Images) > 0 && !images:
			return nil, fmt.Errorf("%w (message %d has %d)", ErrImagesUnsupported, i, len(m.Images))
		case len(m.Images) > 0 && m.Role != RoleUser:
			return nil, fmt.Errorf("aura: message %d: only user messages can carry images, not %q ones", i, m.Role)
		}
		switch m.Role {
		case RoleSystem:
			system = append(system, m.Content)
		case RoleUser, RoleAssistant:
			if err := turn(m); err != nil {
				return nil, fmt.Errorf("aura: message %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("aura: message %d has unknown role %q", i, m.Role)
		}
	}
	return system, nil
}

// chatbotUI speaks the legacy chatbot-ui "/api/chat" route: a JSON request, and a plain-text
// reply body with no framing, which ends when the body ends.
type chatbotUI struct {
	model       chatbotUIModel
	key         string
	temperature float64
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

const defaultChatbotUIModel = "openchat_3.6"

// knownModelNames are the display names openchat.team used for its model ids.
var knownModelNames = map[string]string{
	"openchat_3.6":          "OpenChat 3.6 (latest)",
	"openchat_v3.2_mistral": "OpenChat 3.5 (latest)",
}

func newChatbotUI(cfg Config) (*chatbotUI, error) {
	if cfg.MaxLength < 0 || cfg.TokenLimit < 0 {
		return nil, errors.New("aura: max length and token limit must not be negative")
	}
	id := cmp.Or(cfg.Model, defaultChatbotUIModel)
	tokens := cmp.Or(cfg.TokenLimit, 8192)
	return &chatbotUI{
		model: chatbotUIModel{
			ID: id, Name: cmp.Or(cfg.ModelName, knownModelNames[id], id), TokenLimit: tokens,
			MaxLength: cmp.Or(cfg.MaxLength, 3*tokens), // the web client's limit: three characters a token
		},
		key: cfg.Key, temperature: cfg.Temperature,
	}, nil
}

// request puts the system messages in "prompt": the server would otherwise use its own default
// prompt. The protocol has no usage report.
func (d *chatbotUI) request(model string, msgs []Message, _ bool) (any, error) {
	req := chatbotUIRequest{Model: d.model, Messages: make([]Message, 0, len(msgs)), Key: d.key, Temperature: d.temperature}
	if model != "" && model != d.model.ID {
		req.Model.ID, req.Model.Name = model, cmp.Or(knownModelNames[model], model)
	}
	system, err := turns(msgs, false, func(m Message) error {
		req.Messages = append(req.Messages, m)
		return nil
	})
	req.Prompt = strings.Join(system, "\n")
	return req, err
}

func (d *chatbotUI) newDecoder() decoder { return plainDecoder{} }

// plainDecoder passes the body through: it is the reply (net/http reports a truncated chunked
// body as a read error).
type plainDecoder struct{}

func (plainDecoder) decode(dst *decoded, p []byte) (bool, error) {
	add(dst, answerText, p)
	return false, nil
}
func (plainDecoder) end(*decoded) error      { return nil }
func (plainDecoder) trail([]byte)            {}
func (plainDecoder) result() (*Usage, error) { return nil, nil }
