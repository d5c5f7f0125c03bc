package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"aurabot/aura"
	"aurabot/bot"
)

// config is every setting, read from the environment (and a .env file). The README's table and
// config.example.env document each one.
type config struct {
	TelegramToken  string `env:"TELEGRAM_TOKEN"`
	TelegramAPIURL string `env:"TELEGRAM_API_URL" envDefault:"https://api.telegram.org"`

	AuraURL              string        `env:"AURA_URL" envDefault:"https://openchat.team"`
	AuraProtocol         string        `env:"AURA_PROTOCOL" envDefault:"chatbot-ui"`
	AuraMaxOutputTokens  int           `env:"AURA_MAX_OUTPUT_TOKENS"`
	AuraModel            string        `env:"AURA_MODEL" envDefault:"openchat_3.6"`
	AuraModelName        string        `env:"AURA_MODEL_NAME" envDefault:"OpenChat 3.6 (latest)"`
	AuraMaxLength        int           `env:"AURA_MAX_LENGTH" envDefault:"24576"`
	AuraMaxTokens        int           `env:"AURA_MAX_TOKENS" envDefault:"8192"`
	AuraTemperature      float64       `env:"AURA_TEMPERATURE" envDefault:"0.5"`
	AuraKey              string        `env:"AURA_KEY"`
	AuraCookies          string        `env:"AURA_COOKIES"`
	AuraUserAgent        string        `env:"AURA_USER_AGENT"`
	AuraProxy            string        `env:"AURA_PROXY"`
	AuraFirstByteTimeout time.Duration `env:"AURA_FIRST_BYTE_TIMEOUT" envDefault:"60s"`
	AuraIdleTimeout      time.Duration `env:"AURA_IDLE_TIMEOUT" envDefault:"60s"`

	DatabasePath  string        `env:"DATABASE_PATH" envDefault:"data/bot.db"`
	AllowedUsers  idList        `env:"ALLOWED_USERS"`
	AllowedChats  idList        `env:"ALLOWED_CHATS"`
	SystemPrompt  string        `env:"SYSTEM_PROMPT" envDefault:"You are a helpful assistant."`
	LogLevel      string        `env:"LOG_LEVEL" envDefault:"info"`
	StreamMode    string        `env:"STREAM_MODE" envDefault:"edit"`
	MaxReplies    int           `env:"MAX_CONCURRENT_REPLIES" envDefault:"32"`
	ShutdownAfter time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`

	ListenAddr    string `env:"LISTEN_ADDR"` // see listenAddr: set empty, it turns the listener off
	WebhookURL    string `env:"WEBHOOK_URL"`
	WebhookSecret string `env:"WEBHOOK_SECRET"`
	LogFormat     string `env:"LOG_FORMAT" envDefault:"text"`

	set map[string]string // every variable given, to tell "set" from "default"
}

// idList is a comma-separated list of Telegram ids, or "*" for everyone.
type idList struct {
	all bool
	ids []int64
}

func (l *idList) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "*" {
		l.all = true
		return nil
	}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a Telegram id (use numbers separated by commas, or *)", f)
		}
		l.ids = append(l.ids, id)
	}
	return nil
}

// loadConfig reads the .env file at dotenv (if it exists) under the environment, which wins,
// and checks the result.
func loadConfig(environ []string, dotenv string) (config, error) {
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

// parseConfig reads the configuration without checking it, for -backup and -healthcheck.
func parseConfig(environ []string, dotenv string) (config, error) {
	vars, err := readDotenv(dotenv)
	if err != nil {
		return config{}, err
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	cfg, err := env.ParseAsWithOptions[config](env.Options{Environment: vars})
	if err != nil {
		return config{}, explain(err)
	}
	cfg.set = vars
	return cfg, nil
}

// listenAddr is LISTEN_ADDR: :8080 when it is not set; set empty, no listener.
func (c config) listenAddr() string {
	if _, ok := c.set["LISTEN_ADDR"]; !ok {
		return ":8080"
	}
	return strings.TrimSpace(c.ListenAddr)
}

// ignored lists the settings that were set but mean nothing in the chosen protocol.
func (c config) ignored() []string {
	unused := []string{"AURA_MAX_OUTPUT_TOKENS"}
	if c.AuraProtocol == aura.ProtocolOpenAI {
		unused = []string{"AURA_MODEL_NAME", "AURA_MAX_TOKENS"}
	}
	var out []string
	for _, name := range unused {
		if _, ok := c.set[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// explain turns env's errors, which name struct fields, into ones that name the variable.
func explain(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return fmt.Errorf("config: %w", err)
	}
	var pe env.ParseError
	if errors.As(agg.Errors[0], &pe) {
		f, _ := reflect.TypeFor[config]().FieldByName(pe.Name)
		return fmt.Errorf("config: %s: %w", f.Tag.Get("env"), pe.Err)
	}
	return fmt.Errorf("config: %w", agg.Errors[0])
}

func (c config) validate() error {
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.TelegramToken) == "" {
		return bad("TELEGRAM_TOKEN", "is required: get a token from @BotFather and put it in .env")
	}
	if !validHTTPURL(c.TelegramAPIURL) {
		return bad("TELEGRAM_API_URL", "%q is not an http(s) URL", c.TelegramAPIURL)
	}
	if !validHTTPURL(c.AuraURL) {
		return bad("AURA_URL", "%q is not an http(s) URL", c.AuraURL)
	}
	switch c.AuraProtocol {
	case aura.ProtocolChatbotUI:
	case aura.ProtocolOpenAI:
		if _, ok := c.set["AURA_MODEL"]; !ok {
			return bad("AURA_MODEL", "is required with AURA_PROTOCOL=openai: the model name your server serves (e.g. llama3.1:8b for Ollama)")
		}
	default:
		return bad("AURA_PROTOCOL", "%q is not chatbot-ui or openai", c.AuraProtocol)
	}
	if c.AuraMaxOutputTokens < 0 {
		return bad("AURA_MAX_OUTPUT_TOKENS", "%d must not be negative", c.AuraMaxOutputTokens)
	}
	if c.AuraProxy != "" {
		if _, err := aura.ParseProxy(c.AuraProxy); err != nil {
			return bad("AURA_PROXY", "%v", err)
		}
	}
	if c.AuraTemperature < 0 || c.AuraTemperature > 2 {
		return bad("AURA_TEMPERATURE", "%v is out of range: use 0 to 2", c.AuraTemperature)
	}
	if c.AuraMaxLength < 100 {
		return bad("AURA_MAX_LENGTH", "%d is too small: use at least 100 characters", c.AuraMaxLength)
	}
	if c.AuraMaxTokens < 1 {
		return bad("AURA_MAX_TOKENS", "%d must be positive", c.AuraMaxTokens)
	}
	if c.AuraFirstByteTimeout <= 0 {
		return bad("AURA_FIRST_BYTE_TIMEOUT", "must be positive, like 60s")
	}
	if c.AuraIdleTimeout <= 0 {
		return bad("AURA_IDLE_TIMEOUT", "must be positive, like 60s")
	}
	if strings.TrimSpace(c.DatabasePath) == "" {
		return bad("DATABASE_PATH", "must not be empty")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return bad("LOG_LEVEL", "%v", err)
	}
	if c.StreamMode != bot.StreamEdit && c.StreamMode != bot.StreamDraft {
		return bad("STREAM_MODE", "%q is not edit or draft", c.StreamMode)
	}
	if c.MaxReplies < 1 {
		return bad("MAX_CONCURRENT_REPLIES", "%d must be at least 1", c.MaxReplies)
	}
	if c.ShutdownAfter <= 0 {
		return bad("SHUTDOWN_TIMEOUT", "must be positive, like 10s")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	if addr := c.listenAddr(); addr != "" && !validListenAddr(addr) {
		return bad("LISTEN_ADDR", "%q is not host:port or :port, like :8080", addr)
	}
	if c.WebhookURL != "" {
		if !validHTTPURL(c.WebhookURL) {
			return bad("WEBHOOK_URL", "%q is not an http(s) URL (Telegram wants https)", c.WebhookURL)
		}
		if _, err := bot.WebhookPath(c.WebhookURL); err != nil {
			return bad("WEBHOOK_URL", "%v", err)
		}
		if c.WebhookSecret == "" {
			return bad("WEBHOOK_SECRET", "is required with WEBHOOK_URL: make one with `openssl rand -hex 32`")
		}
		if c.listenAddr() == "" {
			return bad("LISTEN_ADDR", "must not be empty with WEBHOOK_URL: the webhook is served there")
		}
	}
	if c.WebhookSecret != "" && !bot.ValidWebhookSecret(c.WebhookSecret) {
		return bad("WEBHOOK_SECRET", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	}
	return nil
}

// validListenAddr accepts host:port with a numeric port; the host may be empty (all interfaces).
func validListenAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// logger is the program's logger, writing to w at LOG_LEVEL in LOG_FORMAT.
func (c config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel) // validate has checked it
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

// readDotenv reads the .env file at path with godotenv: KEY=VALUE lines, # comments, single
// quotes (literal) and double quotes (\n escapes and ${VAR} expansion), as docker compose reads
// it. A missing file is no file. The errors never quote the file, which holds secrets.
func readDotenv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	vars, err := godotenv.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("config: %s%s", path, dotenvProblem(data, err))
	}
	if _, ok := vars[""]; ok {
		return nil, fmt.Errorf("config: %s: a line has no variable name (want KEY=VALUE)", path)
	}
	return vars, nil
}

// dotenvProblem says where and what is wrong in a .env file godotenv refused with err. godotenv's
// own message quotes the rest of the file, so it is rebuilt from the kind of error and the line,
// found by parsing ever longer runs of lines.
func dotenvProblem(data []byte, err error) string {
	lines := strings.SplitAfter(string(data), "\n")
	parse := func(n int) error {
		_, err := godotenv.Parse(strings.NewReader(strings.Join(lines[:n], "")))
		return err
	}
	if strings.HasPrefix(err.Error(), "unterminated") {
		// The quote opens on the line after the longest run that parses.
		for n := len(lines) - 1; n >= 0; n-- {
			if parse(n) == nil {
				return fmt.Sprintf(" line %d: a quoted value is not closed", n+1)
			}
		}
		return ": a quoted value is not closed"
	}
	for n := 1; n <= len(lines); n++ {
		if err := parse(n); err != nil && !strings.HasPrefix(err.Error(), "unterminated") {
			return fmt.Sprintf(" line %d: not KEY=VALUE (a name is letters, digits, _ and .)", n)
		}
	}
	return ": not KEY=VALUE lines"
}
