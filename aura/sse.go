package aura

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
)

// sseDecoder reads the server-sent events of an openai stream. Once the reply is finished (a
// finish_reason, or [DONE]) it reads what follows for a usage report only.
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

func (d *sseDecoder) decode(dst *decoded, p []byte) (bool, error) {
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
		err := d.line1(dst, line)
		d.line = d.line[:0]
		if err != nil {
			return d.finished, err
		}
	}
	return d.finished, nil
}

// flush takes a last line and event that lack their terminators.
func (d *sseDecoder) flush(dst *decoded) error {
	if len(d.line) > 0 {
		_ = d.line1(dst, d.line) // not blank: it dispatches nothing, and cannot fail
		d.line = d.line[:0]
	}
	return d.line1(dst, nil)
}

func (d *sseDecoder) trail(p []byte) {
	var ignored decoded
	if p == nil {
		_ = d.flush(&ignored)
	} else {
		_, _ = d.decode(&ignored, p)
	}
}

func (d *sseDecoder) end(dst *decoded) error {
	if err := d.flush(dst); err != nil || d.finished {
		return err
	}
	return fmt.Errorf("%w: the stream ended without [DONE] or a finish_reason", ErrBrokenStream)
}

func (d *sseDecoder) result() (*Usage, error) {
	if d.cut {
		return d.used, &OutputLimitError{MaxTokens: d.maxTokens}
	}
	return d.used, nil
}

func (d *sseDecoder) line1(dst *decoded, line []byte) error {
	if len(line) == 0 { // a blank line dispatches the event
		if !d.hasData {
			d.isError = false
			return nil
		}
		err := d.dispatch(dst)
		d.data, d.hasData, d.isError = d.data[:0], false, false
		return err
	}
	if line[0] == ':' {
		return nil // a comment, such as a keep-alive ": ping"
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
	case "error": // llama.cpp sends a failure as "error: {...}" instead of data
		d.isError = true
	case "event":
		d.isError = d.isError || string(value) == "error"
		return nil
	default:
		return nil // id, retry, and fields no one defined
	}
	if d.hasData {
		d.data = append(d.data, '\n')
	}
	d.data = append(d.data, value...)
	d.hasData = true
	return nil
}

func (d *sseDecoder) dispatch(dst *decoded) error {
	data := d.data
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		d.finished = true
		return nil
	}
	if d.isError && !d.finished {
		return streamError(data)
	}
	var c chunk
	err := json.Unmarshal(data, &c)
	switch {
	case d.finished: // after the end only a usage report matters
		if err == nil && c.Usage != nil {
			d.used = c.Usage
		}
		return nil
	case err != nil: // the event's text cannot be trusted: show none of it
		return fmt.Errorf("%w: unreadable event: %w", ErrBrokenStream, err)
	case len(c.Error) > 0 && string(c.Error) != "null" || string(c.Object) == `"error"`:
		return streamError(data) // an error member, or an older vLLM's bare error object
	}
	if c.Usage != nil {
		d.used = c.Usage
	}
	if len(c.Choices) > 0 {
		ch := c.Choices[0]
		// A server that sends both reasoning fields (vLLM) sends the same text in each.
		add(dst, thinkingText, cmp.Or(string(ch.Delta.ReasoningContent), string(ch.Delta.Reasoning)))
		add(dst, answerText, ch.Delta.Content)
		if ch.FinishReason != "" {
			d.finished, d.cut = true, ch.FinishReason == "length"
		}
	}
	return nil
}

// chunk is the part of an openai stream chunk the client reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
			// The model's thinking: reasoning_content (llama.cpp, vLLM, DeepSeek's API) or
			// reasoning (Ollama, OpenRouter, newer vLLM).
			ReasoningContent lenientString `json:"reasoning_content"`
			Reasoning        lenientString `json:"reasoning"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *Usage          `json:"usage"` // in a last chunk with no choices, or with the finish_reason
	Error  json.RawMessage `json:"error"`
	Object json.RawMessage `json:"object"`
}

// lenientString is a JSON string that reads null, or a value of another type (a server's own
// object, say), as "" instead of failing the event.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	var v string
	if len(b) > 0 && b[0] == '"' && json.Unmarshal(b, &v) == nil {
		*s = lenientString(v)
	}
	return nil
}
