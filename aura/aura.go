package aura

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images are pictures sent with a user message (openai only: ErrImagesUnsupported).
	Images []Image `json:"-"`
}

// Image is a picture attached to a Message.
type Image struct {
	// MIME is the image's media type, such as "image/jpeg"; empty: sniffed from Data.
	MIME string
	Data []byte
}

// The roles a Message can have.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// The wire dialects a Client can speak; see Config.Protocol.
const (
	ProtocolChatbotUI = "chatbot-ui"
	ProtocolOpenAI    = "openai"
)

// Defaults for zero Config fields.
const (
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	// DefaultUserAgent is a current desktop Chrome: the chatbot-ui site sat behind a bot check
	// that expects a browser.
	DefaultUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)

// Config says where and how a Client talks to the model.
type Config struct {
	// Protocol is ProtocolChatbotUI (also when empty) or ProtocolOpenAI.
	Protocol string `env:"AURA_PROTOCOL" envDefault:"chatbot-ui"`
	// BaseURL is the server's root (https://openchat.team, http://localhost:11434); the client
	// posts to /api/chat (chatbot-ui) or /v1/chat/completions (openai; "/v1" is not doubled).
	BaseURL string `env:"AURA_URL" envDefault:"https://openchat.team"`
	// Model is model.id (chatbot-ui; empty: openchat_3.6) or the model name (openai, required).
	Model string `env:"AURA_MODEL" envDefault:"openchat_3.6"`
	// ModelName is model.name (chatbot-ui only); empty: the known name for Model, else Model.
	ModelName string `env:"AURA_MODEL_NAME" envDefault:"OpenChat 3.6 (latest)"`
	// MaxLength is model.maxLength (chatbot-ui only; main sets AURA_MAX_LENGTH); 0: 3*TokenLimit.
	MaxLength int
	// TokenLimit is model.tokenLimit (chatbot-ui only); 0 means 8192.
	TokenLimit int `env:"AURA_MAX_TOKENS" envDefault:"8192"`
	// MaxOutputTokens is max_tokens (openai only); 0 means not sent.
	MaxOutputTokens int `env:"AURA_MAX_OUTPUT_TOKENS"`
	// Temperature is sent as is; 0 is a valid temperature.
	Temperature float64 `env:"AURA_TEMPERATURE" envDefault:"0.5"`
	// Key is the body's "key" (chatbot-ui) or an "Authorization: Bearer" header (openai, if set).
	Key string `env:"AURA_KEY"`
	// Cookies is a raw Cookie header value, sent when set.
	Cookies string `env:"AURA_COOKIES"`
	// UserAgent overrides DefaultUserAgent.
	UserAgent string `env:"AURA_USER_AGENT"`
	// Proxy is an http://, https://, socks5:// or socks5h:// URL. Empty means the
	// environment's HTTPS_PROXY/HTTP_PROXY/NO_PROXY, as in any Go program.
	Proxy string `env:"AURA_PROXY"`
	// FirstByteTimeout bounds the wait for each try's headers and first body byte; 0: the default.
	FirstByteTimeout time.Duration `env:"AURA_FIRST_BYTE_TIMEOUT" envDefault:"60s"`
	// IdleTimeout bounds the silence between two body reads (the caller's time with a chunk does
	// not count); 0: the default.
	IdleTimeout time.Duration `env:"AURA_IDLE_TIMEOUT" envDefault:"60s"`
	// Credentials, when set, supplies cookies and a User-Agent before each reply (see
	// Credentials); Cookies and UserAgent, when set, win over them. A reply refused with 403,
	// 429 or 503 and an HTML page is tried once more with fresh ones.
	Credentials Credentials
	// Redact, when set, removes secrets from what a server writes into a StatusError, which
	// users are shown (UserReason): a server may echo the key or cookies it was sent.
	Redact func(string) string
	// Logger receives debug and warning records (never message contents); nil discards them.
	Logger *slog.Logger
}

// Client streams replies from one server. It is safe for concurrent use; make one and share it.
type Client struct {
	hc         *http.Client
	transport  *http.Transport
	endpoint   string
	header     http.Header
	dialect    dialect
	openai     bool   // the openai protocol: it lists models, and its error bodies are JSON
	model      string // Config.Model, or the chatbot-ui default
	redactText func(string) string
	log        *slog.Logger

	// creds is Config.Credentials; ownCookies and ownUserAgent say Config set those headers.
	creds                    Credentials
	ownCookies, ownUserAgent bool

	firstByte, idle time.Duration
	// drain bounds the wait for the end of the body after the reply is complete (openai: after
	// [DONE] or finish_reason), read so that the connection is reused.
	drain   time.Duration
	tries   int           // attempts for one reply
	backoff time.Duration // the wait before the first retry (see retryBackoff)

	models  atomic.Pointer[keptModels]
	noUsage atomic.Bool // the server refused stream_options: see Chat
	ollama  ollamaCache
	now     func() time.Time // the models cache's clock
}

// New checks cfg and returns a Client. Its errors never contain cfg.Key or cfg.Cookies.
func New(cfg Config) (*Client, error) {
	if cfg.FirstByteTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("aura: timeouts must not be negative")
	}
	cfg.FirstByteTimeout = cmp.Or(cfg.FirstByteTimeout, DefaultFirstByteTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	ownUserAgent := cfg.UserAgent != ""
	cfg.UserAgent = cmp.Or(cfg.UserAgent, DefaultUserAgent)
	if name := controlChar("key", cfg.Key, "cookies", cfg.Cookies, "user agent", cfg.UserAgent); name != "" {
		return nil, fmt.Errorf("aura: %s contains a control character", name)
	}
	base, err := parseURL("base URL", cfg.BaseURL, "http", "https")
	if err != nil {
		return nil, err
	}
	proxy := http.ProxyFromEnvironment
	if cfg.Proxy != "" {
		u, err := ParseProxy(cfg.Proxy)
		if err != nil {
			return nil, err
		}
		proxy = http.ProxyURL(u)
	}

	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", cfg.UserAgent)
	if cfg.Cookies != "" {
		header.Set("Cookie", cfg.Cookies)
	}
	endpoint := *base
	endpoint.RawPath, endpoint.RawQuery, endpoint.Fragment = "", "", ""
	path := strings.TrimRight(base.Path, "/")
	c := &Client{header: header, openai: cfg.Protocol == ProtocolOpenAI}
	switch cfg.Protocol {
	case "", ProtocolChatbotUI:
		c.dialect, err = newChatbotUI(cfg)
		endpoint.Path = path + "/api/chat"
		// The headers the Python provider sent, so that the site's bot check sees what it saw.
		header.Set("Accept", "*/*")
		header.Set("Accept-Language", "en-US")
		header.Set("Referer", cfg.BaseURL)
	case ProtocolOpenAI:
		c.dialect, err = newOpenAI(cfg)
		// Both spellings are in use: "http://host" (Ollama's docs), "https://host/v1" (OpenAI's SDKs).
		endpoint.Path = strings.TrimSuffix(path, "/v1") + "/v1/chat/completions"
		header.Set("Accept", "text/event-stream")
		if cfg.Key != "" {
			header.Set("Authorization", "Bearer "+cfg.Key)
		}
	default:
		return nil, fmt.Errorf("aura: unknown protocol %q (want %q or %q)", cfg.Protocol, ProtocolChatbotUI, ProtocolOpenAI)
	}
	if err != nil {
		return nil, err
	}

	c.transport = newTransport(proxy)
	c.hc = &http.Client{
		Transport: c.transport,
		// A redirected POST turns into a GET without a body, which no chat endpoint answers
		// sensibly: report the 3xx instead. No Timeout: it would cut long replies.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.endpoint, c.model, c.redactText = endpoint.String(), cmp.Or(cfg.Model, defaultChatbotUIModel), cfg.Redact
	c.log = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	c.firstByte, c.idle, c.drain = cfg.FirstByteTimeout, cfg.IdleTimeout, min(cfg.IdleTimeout, 2*time.Second)
	c.tries, c.backoff, c.now = 3, 250*time.Millisecond, time.Now
	c.creds, c.ownCookies, c.ownUserAgent = cfg.Credentials, cfg.Cookies != "", ownUserAgent
	return c, nil
}

// controlChar returns the name of the first value (of name, value pairs) with a control
// character, which would end a header; "" if none.
func controlChar(pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.ContainsFunc(pairs[i+1], func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return pairs[i]
		}
	}
	return ""
}

// Close closes the connections the Client keeps open for reuse; streams in progress go on.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

func newTransport(proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	dialer := &net.Dialer{
		// Shorter than the first-byte timeout, so that an unreachable host counts as a
		// connection failure and is retried.
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
	}
	return &http.Transport{
		Proxy:               proxy,
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16, // a busy bot streams several replies at once to one host
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// Compression would make the server's gzip writer hold text back until it has a
		// block to compress, delaying chunks.
		DisableCompression: true,
	}
}

// ParseProxy parses a proxy URL: http, https, socks5 or socks5h, with a host. Its errors leave
// out the URL, which may carry credentials.
func ParseProxy(raw string) (*url.URL, error) {
	return parseURL("proxy", raw, "http", "https", "socks5", "socks5h")
}

// parseURL parses an absolute URL with one of the given schemes. Its errors leave out the URL.
func parseURL(what, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	var uerr *url.Error
	switch {
	case raw == "":
		return nil, fmt.Errorf("aura: %s is empty", what)
	case errors.As(err, &uerr): // url.Parse's errors are all *url.Error, which quotes the URL
		return nil, fmt.Errorf("aura: %s: %w", what, uerr.Err)
	case !slices.ContainsFunc(schemes, func(s string) bool { return strings.EqualFold(u.Scheme, s) }):
		return nil, fmt.Errorf("aura: %s: scheme %q is not supported (want one of %s)", what, u.Scheme, strings.Join(schemes, ", "))
	case u.Host == "":
		return nil, fmt.Errorf("aura: %s has no host", what)
	}
	return u, nil
}
