package aura

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// openAI speaks "/v1/chat/completions" with "stream": true: a body of
// server-sent events whose data are JSON chunks, ended by "data: [DONE]".
type openAI struct {
	model       string
	key         string
	temperature float64
	maxTokens   int
}

type openAIRequest struct {
	Model       string          `json:"model"`
	Messages    []openAIMessage `json:"messages"`
	Temperature float64         `json:"temperature"`
	Stream      bool            `json:"stream"`
	MaxTokens   int             `json:"max_tokens,omitempty"`
	// StreamOptions asks for the usage event; see Client.Chat.
	StreamOptions *openAIStreamOptions `json:"stream_options,omitempty"`
}

type openAIStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// openAIMessage is a Message on the wire. Content is a string, or for a
// message with images a list of parts: its text, then each image.
type openAIMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type openAITextPart struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

type openAIImagePart struct {
	Type     string         `json:"type"` // "image_url"
	ImageURL openAIImageURL `json:"image_url"`
}

type openAIImageURL struct {
	URL string `json:"url"`
}

func newOpenAI(cfg Config) (*openAI, error) {
	if cfg.Model == "" {
		return nil, errors.New("aura: the openai protocol needs a model name")
	}
	if cfg.MaxOutputTokens < 0 {
		return nil, errors.New("aura: max output tokens must not be negative")
	}
	return &openAI{model: cfg.Model, key: cfg.Key, temperature: cfg.Temperature, maxTokens: cfg.MaxOutputTokens}, nil
}

// path accepts both base URL spellings in use: "http://host" (Ollama's
// docs) and "https://host/v1" (OpenAI's SDKs).
func (d *openAI) path(base string) string {
	if strings.HasSuffix(base, "/v1") {
		return base + "/chat/completions"
	}
	return base + "/v1/chat/completions"
}

func (d *openAI) configuredModel() string { return d.model }

func (d *openAI) listsModels() bool { return true }

func (d *openAI) setHeader(h http.Header) {
	h.Set("Accept", "text/event-stream")
	if d.key != "" {
		h.Set("Authorization", "Bearer "+d.key)
	}
}

// encode sends the system messages first, joined into one, as the
// chatbot-ui dialect does with its prompt: many chat templates (llama.cpp,
// vLLM) accept only one system message, and only at the start.
func (d *openAI) encode(model string, msgs []Message, usage bool) ([]byte, error) {
	if model == "" {
		model = d.model
	}
	req := openAIRequest{
		Model:       model,
		Messages:    make([]openAIMessage, 1, len(msgs)+1),
		Temperature: d.temperature,
		Stream:      true,
		MaxTokens:   d.maxTokens,
	}
	if usage {
		req.StreamOptions = &openAIStreamOptions{IncludeUsage: true}
	}
	var system []string
	for i, m := range msgs {
		if len(m.Images) > 0 && m.Role != RoleUser {
			return nil, fmt.Errorf("aura: message %d: only user messages can carry images, not %q ones", i, m.Role)
		}
		switch m.Role {
		case RoleSystem:
			system = append(system, m.Content)
		case RoleUser, RoleAssistant:
			wm, err := wireMessage(m)
			if err != nil {
				return nil, fmt.Errorf("aura: message %d: %w", i, err)
			}
			req.Messages = append(req.Messages, wm)
		default:
			return nil, fmt.Errorf("aura: message %d has unknown role %q", i, m.Role)
		}
	}
	if system != nil {
		req.Messages[0] = openAIMessage{Role: RoleSystem, Content: strings.Join(system, "\n")}
	} else {
		req.Messages = req.Messages[1:]
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("aura: encode request: %w", err)
	}
	return b, nil
}

// wireMessage returns m as sent: content is the plain string unless m has
// images, then a text part (left out when there is no text) followed by
// one data: URL part per image.
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
		url = append(url, "data:"...)
		url = append(url, mime...)
		url = append(url, ";base64,"...)
		url = base64.StdEncoding.AppendEncode(url, img.Data)
		parts = append(parts, openAIImagePart{Type: "image_url", ImageURL: openAIImageURL{URL: string(url)}})
	}
	return openAIMessage{Role: m.Role, Content: parts}, nil
}

// imageMIME returns the media type to send for img: its own, lower-cased,
// or the one sniffed from its bytes. It must be a bare image type, as a
// data: URL cannot carry anything else in that place.
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

// statusError takes the reason from a JSON error body when there is one:
// OpenAI, vLLM, llama.cpp and Ollama's /v1 send {"error": {"message": ...}};
// Ollama's own routes send {"error": "..."}.
func (d *openAI) statusError(resp *http.Response, body []byte) *StatusError {
	se := &StatusError{
		StatusCode: resp.StatusCode,
		Reason:     reasonPhrase(resp),
		Body:       truncateUTF8(string(body), maxErrorBody),
	}
	if msg, _, ok := parseErrorBody(body); ok && msg != "" {
		se.Reason = msg
	}
	return se
}

func (d *openAI) newDecoder() decoder { return &sseDecoder{maxTokens: d.maxTokens} }

// sseDecoder reads server-sent events. It keeps its line and data buffers
// for the whole body. Once the reply is finished (a finish_reason, or
// [DONE]) it goes on reading the events that follow for a usage report
// only: their text and errors are ignored.
type sseDecoder struct {
	line      []byte // a line split across reads
	data      []byte // the data of the event being read
	hasData   bool
	isError   bool // the event is an error ("event: error", or llama.cpp's "error:" field)
	skipLF    bool // the last read ended in '\r'; a '\n' starting the next belongs to it
	finished  bool
	cut       bool // the finish_reason was "length"
	maxTokens int  // the max_tokens asked for, for the error of a cut reply
	used      *Usage
}

func (d *sseDecoder) decode(dst, p []byte) ([]byte, bool, error) {
	for len(p) > 0 {
		if d.skipLF {
			d.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			d.line = append(d.line, p...)
			break
		}
		line := p[:i]
		if len(d.line) > 0 {
			d.line = append(d.line, line...)
			line = d.line
		}
		if p[i] == '\r' {
			if i+1 == len(p) {
				d.skipLF = true
			} else if p[i+1] == '\n' {
				i++
			}
		}
		p = p[i+1:]
		var err error
		dst, err = d.line1(dst, line)
		d.line = d.line[:0]
		if err != nil {
			return dst, d.finished, err
		}
	}
	return dst, d.finished, nil
}

// trail reads the events after the reply's end, for a usage report; nil
// means the body ended, which ends an event that lacks its blank line.
func (d *sseDecoder) trail(p []byte) {
	if p != nil {
		_, _, _ = d.decode(nil, p)
		return
	}
	if len(d.line) > 0 {
		_, _ = d.line1(nil, d.line)
		d.line = d.line[:0]
	}
	_, _ = d.line1(nil, nil)
}

func (d *sseDecoder) usage() (Usage, bool) {
	if d.used == nil {
		return Usage{}, false
	}
	return *d.used, true
}

// end takes a last line and event that lack their terminators, then checks
// that the reply was complete.
func (d *sseDecoder) end(dst []byte) ([]byte, error) {
	var err error
	if len(d.line) > 0 {
		dst, err = d.line1(dst, d.line)
		d.line = d.line[:0]
	}
	if err == nil && !d.finished {
		dst, err = d.line1(dst, nil)
	}
	if err == nil && !d.finished {
		err = fmt.Errorf("%w: the stream ended without [DONE] or a finish_reason", ErrBrokenStream)
	}
	return dst, err
}

// line1 handles one line of the event stream.
func (d *sseDecoder) line1(dst, line []byte) ([]byte, error) {
	if len(line) == 0 {
		// A blank line dispatches the event.
		if !d.hasData {
			d.isError = false
			return dst, nil
		}
		dst, err := d.dispatch(dst)
		d.data, d.hasData, d.isError = d.data[:0], false, false
		return dst, err
	}
	if line[0] == ':' {
		return dst, nil // a comment, such as a keep-alive ": ping"
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
	case "error":
		// llama.cpp sends a failure as "error: {...}" instead of data.
		d.isError = true
	case "event":
		if string(value) == "error" {
			d.isError = true
		}
		return dst, nil
	default:
		return dst, nil // id, retry, and fields no one defined
	}
	if d.hasData {
		d.data = append(d.data, '\n')
	}
	d.data = append(d.data, value...)
	d.hasData = true
	return dst, nil
}

// dispatch handles one event's data.
func (d *sseDecoder) dispatch(dst []byte) ([]byte, error) {
	data := d.data
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		d.finished = true
		return dst, nil
	}
	if d.finished {
		// After the end: only a usage report matters.
		if c, err := readChunk(data); err == nil && c.Usage != nil {
			d.used = c.Usage.usage()
		}
		return dst, nil
	}
	if d.isError {
		return dst, streamError(data)
	}
	n := len(dst)
	dst, finish, hasError, used, err := parseChunk(dst, data)
	if used != nil {
		d.used = used
	}
	if err != nil {
		// The event's text cannot be trusted: show none of it.
		return dst[:n], fmt.Errorf("%w: unreadable event: %w", ErrBrokenStream, err)
	}
	if hasError {
		return dst[:n], streamError(data)
	}
	if finish != "" {
		d.finished = true
		d.cut = finish == "length"
	}
	return dst, nil
}

// complete reports a reply the server cut at its output limit.
func (d *sseDecoder) complete() error {
	if d.cut {
		return &OutputLimitError{MaxTokens: d.maxTokens}
	}
	return nil
}

// streamError makes the error for an error event.
func streamError(data []byte) *StatusError {
	se := &StatusError{StatusCode: http.StatusOK, Body: truncateUTF8(string(data), maxErrorBody), inStream: true}
	msg, code, ok := parseErrorBody(data)
	if !ok {
		// llama.cpp's "error:" field holds the error object itself.
		msg, code, ok = parseErrorObject(data)
	}
	if ok {
		se.Reason = msg
		if code >= 100 && code <= 599 {
			se.StatusCode = code
		}
	}
	return se
}

// chunk is the part of an openai stream chunk the client reads; role,
// reasoning_content and the rest are skipped.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *wireUsage      `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Object json.RawMessage `json:"object"`
}

// wireUsage is a chunk's usage member. OpenAI and vLLM send it in a last
// chunk with no choices, llama.cpp with the finish_reason.
type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

func (u *wireUsage) usage() *Usage {
	return &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

func readChunk(b []byte) (chunk, error) {
	var c chunk
	err := json.Unmarshal(b, &c)
	return c, err
}

// parseChunk appends choices[0].delta.content of a chunk to dst. finish is
// choices[0].finish_reason ("" while the reply goes on); hasError reports
// an error member (or an older vLLM's bare error object); used is the
// chunk's usage, if it has one.
func parseChunk(dst, b []byte) (out []byte, finish string, hasError bool, used *Usage, err error) {
	c, err := readChunk(b)
	if err != nil {
		return dst, "", false, nil, err
	}
	if isJSONValue(c.Error) || string(c.Object) == `"error"` {
		return dst, "", true, nil, nil
	}
	if c.Usage != nil {
		used = c.Usage.usage()
	}
	if len(c.Choices) == 0 {
		return dst, "", false, used, nil
	}
	ch := c.Choices[0]
	return append(dst, ch.Delta.Content...), ch.FinishReason, false, used, nil
}

// isJSONValue reports whether raw holds a value other than null.
func isJSONValue(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// parseErrorBody finds the error in {"error": {...}}, {"error": "..."} or a
// bare {"object": "error", "message": ...}.
func parseErrorBody(b []byte) (msg string, code int, ok bool) {
	var body struct {
		Error  json.RawMessage `json:"error"`
		Object json.RawMessage `json:"object"`
	}
	if json.Unmarshal(b, &body) != nil {
		return "", 0, false
	}
	if s, ok := jsonString(body.Error); ok {
		return s, 0, true
	}
	if msg, code, ok := parseErrorObject(body.Error); ok {
		return msg, code, true
	}
	if string(body.Object) == `"error"` {
		return parseErrorObject(b)
	}
	return "", 0, false
}

// parseErrorObject reads {"message": "...", "code": 400, ...}. ok is false
// if b is not an object with a string message. A code that is not a number
// (OpenAI sends "invalid_api_key") gives 0.
func parseErrorObject(b []byte) (msg string, code int, ok bool) {
	var obj struct {
		Message json.RawMessage `json:"message"`
		Code    json.RawMessage `json:"code"`
	}
	if len(b) == 0 || json.Unmarshal(b, &obj) != nil {
		return "", 0, false
	}
	msg, ok = jsonString(obj.Message)
	if !ok {
		return "", 0, false
	}
	_ = json.Unmarshal(obj.Code, &code)
	return msg, code, true
}

// jsonString decodes raw if it is a string literal.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
