package aura

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// openAI speaks "/v1/chat/completions" with "stream": true: a body of server-sent events whose
// data are JSON chunks, ended by "data: [DONE]" (see sse.go).
type openAI struct {
	model       string
	temperature float64
	maxTokens   int
}

type openAIRequest struct {
	Model         string               `json:"model"`
	Messages      []openAIMessage      `json:"messages"`
	Temperature   float64              `json:"temperature"`
	Stream        bool                 `json:"stream"`
	MaxTokens     int                  `json:"max_tokens,omitempty"`
	StreamOptions *openAIStreamOptions `json:"stream_options,omitempty"`
}

type openAIStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// openAIMessage is a Message on the wire. Content is a string, or for a message with images a
// list of parts: its text, if any, then each image as a data: URL.
type openAIMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type openAITextPart struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

type openAIImagePart struct {
	Type     string `json:"type"` // "image_url"
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

func newOpenAI(cfg Config) (*openAI, error) {
	if cfg.Model == "" {
		return nil, errors.New("aura: the openai protocol needs a model name")
	}
	if cfg.MaxOutputTokens < 0 {
		return nil, errors.New("aura: max output tokens must not be negative")
	}
	return &openAI{model: cfg.Model, temperature: cfg.Temperature, maxTokens: cfg.MaxOutputTokens}, nil
}

func (d *openAI) request(model string, msgs []Message, usage bool) (any, error) {
	if model == "" {
		model = d.model
	}
	req := openAIRequest{Model: model, Messages: make([]openAIMessage, 1, len(msgs)+1), Temperature: d.temperature, Stream: true, MaxTokens: d.maxTokens}
	if usage {
		req.StreamOptions = &openAIStreamOptions{IncludeUsage: true}
	}
	system, err := turns(msgs, true, func(m Message) error {
		wm, err := wireMessage(m)
		req.Messages = append(req.Messages, wm)
		return err
	})
	if err != nil {
		return nil, err
	}
	if system != nil {
		req.Messages[0] = openAIMessage{Role: RoleSystem, Content: strings.Join(system, "\n")}
	} else {
		req.Messages = req.Messages[1:]
	}
	return req, nil
}

func (d *openAI) newDecoder() decoder { return &sseDecoder{maxTokens: d.maxTokens} }

func wireMessage(m Message) (openAIMessage, error) {
	if len(m.Images) == 0 {
		return openAIMessage{Role: m.Role, Content: m.Content}, nil
	}
	parts := make([]any, 0, len(m.Images)+1)
	if m.Content != "" {
		parts = append(parts, openAITextPart{Type: "text", Text: m.Content})
	}
	for j, img := range m.Images {
		mime, err := imageMIME(img)
		if err != nil {
			return openAIMessage{}, fmt.Errorf("image %d: %w", j, err)
		}
		url := make([]byte, 0, len("data:;base64,")+len(mime)+base64.StdEncoding.EncodedLen(len(img.Data)))
		url = append(append(append(url, "data:"...), mime...), ";base64,"...)
		part := openAIImagePart{Type: "image_url"}
		part.ImageURL.URL = string(base64.StdEncoding.AppendEncode(url, img.Data))
		parts = append(parts, part)
	}
	return openAIMessage{Role: m.Role, Content: parts}, nil
}

// imageMIME returns img's media type, lower-cased, or else sniffed from its bytes: a bare image
// type, as a data: URL needs.
func imageMIME(img Image) (string, error) {
	if len(img.Data) == 0 {
		return "", errors.New("no data")
	}
	mime := strings.ToLower(strings.TrimSpace(img.MIME))
	if mime == "" {
		mime, _, _ = strings.Cut(http.DetectContentType(img.Data), ";")
	}
	sub, ok := strings.CutPrefix(mime, "image/")
	if !ok || sub == "" || strings.ContainsFunc(sub, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("+-.", r))
	}) {
		return "", fmt.Errorf("media type %q is not an image type", mime)
	}
	return mime, nil
}
