// Package transcribe turns speech into text through an OpenAI-compatible speech-to-text server:
// POST /v1/audio/transcriptions, as OpenAI (whisper-1), LocalAI, Speaches (faster-whisper) and
// the whisper.cpp server offer it. It knows nothing of Telegram: it takes an audio file and
// returns its text. It does not convert audio; the server must accept the format (OpenAI and
// faster-whisper take Telegram's Ogg/Opus voice notes).
package transcribe

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"aurabot/aura/internal/reason"
)

// Defaults for zero Config fields.
const (
	DefaultModel   = "whisper-1"
	DefaultTimeout = 2 * time.Minute
)

// MaxAudioBytes is the largest audio file Transcribe sends: OpenAI's limit.
const MaxAudioBytes = 25 << 20

// ErrTooLarge means the audio was longer than MaxAudioBytes; nothing was sent.
var ErrTooLarge = errors.New("transcribe: the audio file is too large")

// maxErrorBody is the most of an error response body a StatusError keeps.
const maxErrorBody = 1 << 10

// Config says where and how a Client reaches the server.
type Config struct {
	// URL is the server's root, e.g. https://api.openai.com; the client posts to its
	// /v1/audio/transcriptions ("/v1" is not doubled).
	URL string `env:"TRANSCRIBE_URL"`
	// Model is the model field; empty means DefaultModel.
	Model string `env:"TRANSCRIBE_MODEL" envDefault:"whisper-1"`
	// Key is sent as "Authorization: Bearer <Key>" when set.
	Key string `env:"TRANSCRIBE_KEY"`
	// Redact, when set, removes secrets from what the server writes into a StatusError, which
	// users are shown: a server may echo the key.
	Redact func(string) string
	// Timeout bounds one Transcribe call, upload included; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Client transcribes audio files. It is safe for concurrent use.
type Client struct {
	endpoint string
	urlErr   error // why URL was refused; reported by Transcribe
	model    string
	key      string
	redact   func(string) string
	hc       *http.Client
	timeout  time.Duration
}

// New returns a Client for cfg. A URL that cannot be used is reported by each Transcribe call.
func New(cfg Config) *Client {
	c := &Client{model: cmp.Or(cfg.Model, DefaultModel), key: cfg.Key, redact: cfg.Redact, timeout: max(cfg.Timeout, 0)}
	c.timeout = cmp.Or(c.timeout, DefaultTimeout)
	if c.redact == nil {
		c.redact = func(s string) string { return s }
	}
	// A redirect is reported as a StatusError, not followed.
	c.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.endpoint, c.urlErr = endpoint(cfg.URL)
	return c
}

// endpoint returns the transcription URL under root; its errors leave out the URL.
func endpoint(root string) (string, error) {
	u, err := url.Parse(root)
	switch {
	case root == "":
		return "", errors.New("transcribe: URL is empty")
	case err != nil:
		return "", errors.New("transcribe: URL does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("transcribe: URL scheme %q is not supported (want http or https)", u.Scheme)
	case u.Host == "":
		return "", errors.New("transcribe: URL has no host")
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/v1") + "/v1/audio/transcriptions"
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	StatusCode int
	Reason     string // error.message (or detail) from a JSON body, else the reason phrase
	Body       string // the start of the response body (at most 1 KiB)
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("transcribe: server answered %d", e.StatusCode)
	}
	return fmt.Sprintf("transcribe: server answered %d %s", e.StatusCode, e.Reason)
}

// UserReason returns Reason made fit to show a user, as aura.StatusError.UserReason does.
func (e *StatusError) UserReason() string {
	return reason.Sanitize(e.Reason)
}

// Transcribe sends audio as a file named fileName (its extension tells the server the format,
// e.g. "voice.ogg") and returns the text. Errors are a *StatusError for a refusal, ErrTooLarge,
// or a wrapped transport or context error.
func (c *Client) Transcribe(ctx context.Context, fileName string, audio io.Reader) (string, error) {
	if c.urlErr != nil {
		return "", c.urlErr
	}
	body, contentType, err := c.form(fileName, audio)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("transcribe: build request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("transcribe: request stopped: %w", ctx.Err())
		}
		return "", fmt.Errorf("transcribe: could not reach the server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		return "", c.statusError(resp, data)
	}
	var answer struct {
		Text *string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&answer); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("transcribe: request stopped: %w", ctx.Err())
		}
		return "", fmt.Errorf("transcribe: unreadable answer: %w", err)
	}
	if answer.Text == nil {
		return "", errors.New("transcribe: unreadable answer: no text")
	}
	return strings.TrimSpace(*answer.Text), nil
}

// form builds the multipart body in memory: a voice note is small, and a body of known length is
// what every server accepts. Only reading the audio can fail.
func (c *Client) form(fileName string, audio io.Reader) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", cleanFileName(fileName))
	n, err := io.Copy(fw, io.LimitReader(audio, MaxAudioBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("transcribe: read audio: %w", err)
	}
	if n > MaxAudioBytes {
		return nil, "", fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxAudioBytes)
	}
	_ = w.WriteField("model", c.model)
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType(), nil
}

// cleanFileName keeps the base name of name with printable characters only (a line break would
// end the part's header); "audio" if none.
func cleanFileName(name string) string {
	name = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(name, "_"))
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || strings.TrimSpace(name) == "" {
		return "audio"
	}
	return name
}

// statusError describes a refusal, passing what the server wrote through Config.Redact.
func (c *Client) statusError(resp *http.Response, body []byte) *StatusError {
	se := &StatusError{
		StatusCode: resp.StatusCode,
		Reason:     strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode))),
		Body:       c.redact(reason.Clip(string(body), maxErrorBody)),
	}
	se.Reason = c.redact(cmp.Or(errorMessage(body), se.Reason))
	return se
}

// errorMessage finds the message in a JSON error body, or in {"detail": "..."} (FastAPI servers
// such as Speaches).
func errorMessage(body []byte) string {
	if msg, _, ok := reason.ErrorBody(body); ok && msg != "" {
		return msg
	}
	var v struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Detail
}
