package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"

	"aurabot/aura"
	"aurabot/aura/browser"
	"aurabot/aura/transcribe"
	"aurabot/bot"
	"aurabot/bot/conversation"
	"aurabot/bot/ops"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// config is every setting, read from the environment (and a .env file). Each room declares the
// settings it takes, with their variables and defaults, in its own Config; this one only puts
// them together, adds main's own, and checks them all (checks). The README's table and
// config.example.env document each one.
type config struct {
	Bot        bot.Config
	Aura       aura.Config
	Transcribe transcribe.Config
	Browser    browser.Options

	// ContextTokens is the context of an openai server that cuts long conversations itself; the
	// conversation's token window is derived from it (see tokenWindow).
	ContextTokens int    `env:"AURA_CONTEXT_TOKENS"`
	DatabasePath  string `env:"DATABASE_PATH" envDefault:"data/bot.db"`
	LogLevel      string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat     string `env:"LOG_FORMAT" envDefault:"text"`

	set map[string]string // every variable given, to tell "set" from "default"
}

// loadConfig reads the .env file at dotenv (if it exists) under the environment, which wins,
// checks the result and derives what the rooms take from the model server's settings.
func loadConfig(environ []string, dotenv string) (config, error) {
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return config{}, err
	}
	for _, c := range checks {
		if err := c.check(&cfg); err != nil {
			return config{}, redactSettings(cfg.set, fmt.Errorf("config: %s: %w", c.name, err))
		}
	}
	cfg.derive()
	return cfg, nil
}

// parseConfig reads the configuration without checking it, for -backup and -healthcheck.
func parseConfig(environ []string, dotenv string) (config, error) {
	vars, err := readDotenv(dotenv)
	if err != nil {
		return config{}, fmt.Errorf("config: %w", err)
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	cfg, err := env.ParseAsWithOptions[config](env.Options{Environment: vars})
	if err != nil {
		return config{}, redactSettings(vars, explainEnvError(err, reflect.TypeFor[config]()))
	}
	cfg.set = vars
	// A token or key pasted with a line break or a space around it is meant without.
	for _, secret := range []*string{&cfg.Bot.Telegram.Token, &cfg.Aura.Key, &cfg.Aura.Cookies, &cfg.Transcribe.Key} {
		*secret = strings.TrimSpace(*secret)
	}
	cfg.Bot.ListenAddr = cfg.listenAddr()
	return cfg, nil
}

// redactSettings is the last guard of secrets in config errors: the secrets of the settings
// vars (ops.SettingSecrets) are removed from err's text.
func redactSettings(vars map[string]string, err error) error {
	return ops.NewRedactor(slog.DiscardHandler, ops.SettingSecrets(vars)...).Error(err)
}

// derive sets what the rooms take from other rooms' settings: the conversation's window and
// models from the model server's, the browser's page and proxy.
func (c *config) derive() {
	conv := &c.Bot.Conversation
	conv.Budget = c.budget()
	conv.TextOnly = c.Aura.Protocol == aura.ProtocolChatbotUI
	def := c.defaultModel()
	conv.DefaultModel = def.ID
	c.Aura.Model, c.Aura.ModelName = def.ID, def.Name
	c.Aura.MaxLength = conv.Budget.Chars
	c.Browser.URL, c.Browser.Proxy = c.Aura.BaseURL, c.Aura.Proxy
}

// budget is the conversation's window: the characters of AURA_MAX_LENGTH and the tokens of
// tokenWindow; a chatbot-ui server counts the texts alone, with nothing per message.
func (c config) budget() history.Budget {
	b := c.Bot.Conversation.Budget
	b.Tokens = c.tokenWindow()
	if c.Aura.Protocol == aura.ProtocolChatbotUI {
		b.PerMessage = 0
	}
	return b
}

// defaultModel is the model of a chat that has not chosen one: AURA_MODEL (with AURA_MODEL_NAME
// in chatbot-ui mode), which checks has found among AURA_MODELS when both are set; with
// AURA_MODELS alone, its first model.
func (c config) defaultModel() conversation.ModelChoice {
	_, modelSet := c.set["AURA_MODEL"]
	for _, m := range c.Bot.Conversation.Models {
		if !modelSet || m.ID == c.Aura.Model {
			return m
		}
	}
	m := conversation.ModelChoice{ID: c.Aura.Model}
	if c.Aura.Protocol == aura.ProtocolChatbotUI {
		m.Name = c.Aura.ModelName
	}
	return m
}

// tokenWindow is how many tokens (counted with cl100k_base, an estimate for other models) the
// system prompt and history of one request may take, or 0 for no bound. openai: the server's
// context AURA_CONTEXT_TOKENS less room for the answer, AURA_MAX_OUTPUT_TOKENS; unset, no
// bound. chatbot-ui: AURA_MAX_TOKENS less the 1000 tokens the server keeps free.
func (c config) tokenWindow() int {
	if c.Aura.Protocol == aura.ProtocolChatbotUI {
		return c.Aura.TokenLimit - chatbotUISpare
	}
	if c.ContextTokens == 0 {
		return 0
	}
	return c.ContextTokens - c.Aura.MaxOutputTokens
}

// listenAddr is LISTEN_ADDR; not set, loopback only: /healthz and /metrics are for the
// machine's own checks and scrapers, and listening on every interface (the Docker image's
// 0.0.0.0:8080) is a choice to make knowingly. Set empty, no listener.
func (c config) listenAddr() string {
	v, ok := c.set["LISTEN_ADDR"]
	if !ok {
		return "127.0.0.1:8080"
	}
	return strings.TrimSpace(v)
}

// ignored lists the settings that were given a value but mean nothing in the chosen protocol.
func (c config) ignored() []string {
	unused := []string{"AURA_MAX_OUTPUT_TOKENS", "AURA_CONTEXT_TOKENS", "AURA_TOKENS_PER_MESSAGE"}
	if c.Aura.Protocol == aura.ProtocolOpenAI {
		unused = []string{"AURA_MODEL_NAME", "AURA_MAX_TOKENS"}
	}
	// Set empty, as in config.example.env, is unset.
	return slices.DeleteFunc(unused, func(name string) bool { return strings.TrimSpace(c.set[name]) == "" })
}

// logger is the program's logger, writing to w at LOG_LEVEL in LOG_FORMAT. Every line passes
// the redactor first, which removes every secret of the settings, and those it learns later
// (Add: the cookies a browser captures).
func (c config) logger(w io.Writer) (*slog.Logger, *ops.Redactor) {
	level, _ := parseLevel(c.LogLevel) // checked
	opts := &slog.HandlerOptions{Level: level}
	var out slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		out = slog.NewJSONHandler(w, opts)
	}
	red := ops.NewRedactor(out, ops.SettingSecrets(c.set)...)
	return slog.New(red), red
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

// Bounds of the numeric settings. Past them a value is a mistake (a typo, a unit mix-up), not a
// choice: no model has a context of ten million tokens, no reply should wait an hour to start.
const (
	maxTokens      = 10_000_000 // characters of prompt + history, and tokens of a context window
	maxWait        = time.Hour  // any timeout
	chatbotUISpare = 1000       // tokens a chatbot-ui server keeps free of its tokenLimit
	maxCapTokens   = 1 << 40    // USER_DAILY_TOKENS and USER_MONTHLY_TOKENS: a trillion tokens is no cap
)

var (
	tokenPattern         = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)      // a bot token: the bot's id, a colon, the secret
	metricsTokenPattern  = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{16,256}$`) // long, and what a Bearer header carries (token68)
	webhookSecretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)       // a secret_token Telegram accepts
)

// checks are every check, in the order the settings are documented (see checkFunc).
var checks = []struct {
	name  string
	check checkFunc
}{
	{"TELEGRAM_API_URL", setNotEmpty("TELEGRAM_API_URL", func(c *config) error { return httpURL(c.Bot.Telegram.APIURL) })},
	{"AURA_URL", setNotEmpty("AURA_URL", func(c *config) error { return httpURL(c.Aura.BaseURL) })},
	{"DATABASE_PATH", setNotEmpty("DATABASE_PATH", func(*config) error { return nil })},
	{"TELEGRAM_TOKEN", func(c *config) error {
		switch t := c.Bot.Telegram.Token; {
		case t == "":
			return errors.New("is required: get a token from @BotFather and put it in .env")
		case strings.ContainsFunc(t, unicode.IsSpace):
			return errors.New("has a space or line break inside: copy it again from @BotFather")
		case !tokenPattern.MatchString(t):
			return errors.New("is not a bot token: @BotFather gives one like 123456789:AAH... (digits, a colon, then letters, digits, _ and -)")
		}
		return nil
	}},
	{"TELEGRAM_LOCAL_FILES", func(c *config) error { return tg.CheckLocalFiles(c.Bot.Telegram.LocalFiles) }},
	{"USER_MESSAGES_PER_MINUTE", intIn(func(c *config) int { return c.Bot.Conversation.UserMessagesPerMinute }, 0, 1000, "messages a minute (0: no bound)")},
	{"USER_DAILY_TOKENS", intIn(func(c *config) int64 { return c.Bot.Conversation.UserDailyTokens }, 0, maxCapTokens, "tokens (0 or empty: no cap)")},
	{"USER_MONTHLY_TOKENS", func(c *config) error {
		conv := c.Bot.Conversation
		if err := intIn(func(*config) int64 { return conv.UserMonthlyTokens }, 0, maxCapTokens, "tokens (0 or empty: no cap)")(c); err != nil {
			return err
		}
		if conv.UserDailyTokens > 0 && conv.UserMonthlyTokens > 0 && conv.UserMonthlyTokens < conv.UserDailyTokens {
			return fmt.Errorf("%d is less than USER_DAILY_TOKENS (%d): the daily cap could never be reached", conv.UserMonthlyTokens, conv.UserDailyTokens)
		}
		return nil
	}},
	{"ALLOWED_USERS", ids(func(c *config) []int64 { return c.Bot.Conversation.AllowedUsers.IDs }, "user",
		func(id int64) bool { return id > 0 }, " (group ids, which are negative, go in ALLOWED_CHATS)")},
	{"ALLOWED_CHATS", ids(func(c *config) []int64 { return c.Bot.Conversation.AllowedChats.IDs }, "chat",
		func(id int64) bool { return id != 0 }, "")},
	{"AURA_PROTOCOL", oneOf(func(c *config) string { return c.Aura.Protocol }, aura.ProtocolChatbotUI, aura.ProtocolOpenAI)},
	{"AURA_MODEL", func(c *config) error {
		_, set := c.set["AURA_MODEL"]
		models := c.Bot.Conversation.Models
		switch {
		case c.Aura.Protocol == aura.ProtocolOpenAI && !set && len(models) == 0:
			return errors.New("is required with AURA_PROTOCOL=openai: the model name your server serves (e.g. llama3.1:8b for Ollama)")
		case set && len(models) > 0 && !slices.ContainsFunc(models, func(m conversation.ModelChoice) bool { return m.ID == c.Aura.Model }):
			return fmt.Errorf("%q is not one of AURA_MODELS: add it there, or leave AURA_MODEL out to default to the first", c.Aura.Model)
		}
		return nil
	}},
	{"AURA_PROXY", ifSet(func(c *config) string { return c.Aura.Proxy }, func(p string) error { _, err := aura.ParseProxy(p); return err })},
	{"AURA_KEY", noControl(func(c *config) string { return c.Aura.Key })},
	{"AURA_COOKIES", noControl(func(c *config) string { return c.Aura.Cookies })},
	{"AURA_USER_AGENT", noControl(func(c *config) string { return c.Aura.UserAgent })},
	{"TRANSCRIBE_KEY", noControl(func(c *config) string { return c.Transcribe.Key })},
	{"TRANSCRIBE_MODEL", noControl(func(c *config) string { return c.Transcribe.Model })},
	{"AURA_TEMPERATURE", func(c *config) error {
		if t := c.Aura.Temperature; math.IsNaN(t) || t < 0 || t > 2 {
			return fmt.Errorf("%v is out of range: use 0 to 2", t)
		}
		return nil
	}},
	{"AURA_MAX_LENGTH", intIn(func(c *config) int { return c.Bot.Conversation.Budget.Chars }, 100, maxTokens, "characters")},
	{"AURA_MAX_TOKENS", func(c *config) error {
		if err := intIn(func(c *config) int { return c.Aura.TokenLimit }, 1, maxTokens, "tokens")(c); err != nil {
			return err
		}
		if n := c.Aura.TokenLimit; c.Aura.Protocol == aura.ProtocolChatbotUI && n <= chatbotUISpare {
			return fmt.Errorf("%d leaves no room: a chatbot-ui server keeps %d tokens of it free, so use more than %d", n, chatbotUISpare, chatbotUISpare)
		}
		return nil
	}},
	{"AURA_MAX_OUTPUT_TOKENS", intIn(func(c *config) int { return c.Aura.MaxOutputTokens }, 0, 1_000_000, "tokens")},
	{"AURA_CONTEXT_TOKENS", func(c *config) error {
		if strings.TrimSpace(c.set["AURA_CONTEXT_TOKENS"]) == "" {
			return nil
		}
		if err := intIn(func(c *config) int { return c.ContextTokens }, 512, maxTokens, "tokens (leave it empty for no bound)")(c); err != nil {
			return err
		}
		if c.Aura.Protocol == aura.ProtocolOpenAI && c.ContextTokens <= c.Aura.MaxOutputTokens {
			return fmt.Errorf("%d leaves no room for the conversation: it must be more than AURA_MAX_OUTPUT_TOKENS (%d), the room kept for the answer", c.ContextTokens, c.Aura.MaxOutputTokens)
		}
		return nil
	}},
	{"AURA_TOKENS_PER_MESSAGE", intIn(func(c *config) int { return c.Bot.Conversation.Budget.PerMessage }, 0, 100, "tokens")},
	{"AURA_IMAGE_TOKENS", intIn(func(c *config) int { return c.Bot.Conversation.Budget.ImageTokens }, 0, 100_000, "tokens")},
	{"TRANSCRIBE_URL", ifSet(func(c *config) string { return c.Transcribe.URL }, httpURL)},
	{"MAX_FILE_BYTES", intIn(func(c *config) int { return c.Bot.Conversation.MaxFileBytes }, 1024, 20<<20, "bytes (Telegram lets bots download 20 MiB at most)")},
	{"AURA_BROWSER", func(c *config) error { return browser.Check(c.Browser.Browser) }},
	{"AURA_BROWSER_REFRESH", within(func(c *config) time.Duration { return c.Browser.Refresh }, time.Minute, 24*time.Hour)},
	{"AURA_BROWSER_TIMEOUT", within(func(c *config) time.Duration { return c.Browser.Timeout }, time.Second, 10*time.Minute)},
	{"AURA_FIRST_BYTE_TIMEOUT", within(func(c *config) time.Duration { return c.Aura.FirstByteTimeout }, time.Millisecond, maxWait)},
	{"AURA_IDLE_TIMEOUT", within(func(c *config) time.Duration { return c.Aura.IdleTimeout }, time.Millisecond, maxWait)},
	{"SHUTDOWN_TIMEOUT", within(func(c *config) time.Duration { return c.Bot.ShutdownTimeout }, time.Millisecond, maxWait)},
	{"SYSTEM_PROMPT", func(c *config) error {
		// At most half of what the model is sent with each request, as /system asks of a
		// chat's own prompt: the conversation needs the rest.
		if msg := conversation.PromptTooLong(c.budget(), c.Bot.Conversation.DefaultPrompt); msg != "" {
			return errors.New(msg)
		}
		return nil
	}},
	{"LOG_LEVEL", func(c *config) error { _, err := parseLevel(c.LogLevel); return err }},
	{"STREAM_MODE", oneOf(func(c *config) string { return c.Bot.Reply.StreamMode }, reply.StreamEdit, reply.StreamDraft)},
	{"SHOW_THINKING", oneOf(func(c *config) string { return c.Bot.Reply.Thinking }, "on", "off")},
	{"MAX_CONCURRENT_REPLIES", intIn(func(c *config) int { return c.Bot.Conversation.MaxConcurrentReplies }, 1, 1000, "replies")},
	{"MAX_ANSWER_CHARS", intIn(func(c *config) int { return c.Bot.Reply.MaxAnswerChars }, 1000, 1_000_000, "characters")},
	{"LOG_FORMAT", oneOf(func(c *config) string { return c.LogFormat }, "text", "json")},
	{"LISTEN_ADDR", func(c *config) error {
		if addr := c.Bot.ListenAddr; addr != "" && !validListenAddr(addr) {
			return fmt.Errorf("%q is not host:port or :port, like 127.0.0.1:8080", addr)
		}
		if c.Bot.ListenAddr == "" && c.Bot.WebhookURL != "" {
			return errors.New("must not be empty with WEBHOOK_URL: the webhook is served there")
		}
		return nil
	}},
	{"WEBHOOK_URL", ifSet(func(c *config) string { return c.Bot.WebhookURL }, checkWebhookURL)},
	{"WEBHOOK_SECRET", func(c *config) error {
		switch s := c.Bot.WebhookSecret; {
		case s == "" && c.Bot.WebhookURL != "":
			return errors.New("is required with WEBHOOK_URL: make one with `openssl rand -hex 32`")
		case s != "" && !webhookSecretPattern.MatchString(s):
			return errors.New("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
		}
		return nil
	}},
	{"METRICS_TOKEN", func(c *config) error {
		if t := c.Bot.MetricsToken; t != "" && !metricsTokenPattern.MatchString(t) {
			return errors.New("must be 16-256 characters of A-Z, a-z, 0-9 and ._~+/=- (make one with `openssl rand -hex 32`)")
		}
		return nil
	}},
}
