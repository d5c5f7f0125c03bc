package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"

	"aurabot/aura"
	"aurabot/bot"
	"aurabot/bot/intake"
	"aurabot/history"
	"aurabot/logging"
)

// config is every setting, read from the environment (and a .env file). The README's table and
// config.example.env document each one.
type config struct {
	TelegramToken  string `env:"TELEGRAM_TOKEN"`
	TelegramAPIURL string `env:"TELEGRAM_API_URL" envDefault:"https://api.telegram.org"`

	AuraURL              string        `env:"AURA_URL" envDefault:"https://openchat.team"`
	AuraProtocol         string        `env:"AURA_PROTOCOL" envDefault:"chatbot-ui"`
	AuraMaxOutputTokens  int           `env:"AURA_MAX_OUTPUT_TOKENS"`
	AuraTokensPerMessage int           `env:"AURA_TOKENS_PER_MESSAGE" envDefault:"8"` // see tokensPerMessage
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
	MetricsToken  string `env:"METRICS_TOKEN"`

	TelegramLocalFiles    string `env:"TELEGRAM_LOCAL_FILES"`
	UserMessagesPerMinute int    `env:"USER_MESSAGES_PER_MINUTE"`

	Summaries         onOff `env:"SUMMARIES" envDefault:"on"`
	UserDailyTokens   int64 `env:"USER_DAILY_TOKENS"`
	UserMonthlyTokens int64 `env:"USER_MONTHLY_TOKENS"`

	// Not wired yet: read and checked here, used by bot/ and aura/ as they grow (see run).
	MaxAnswerChars     int           `env:"MAX_ANSWER_CHARS" envDefault:"65536"`
	AuraContextTokens  int           `env:"AURA_CONTEXT_TOKENS"` // see tokenWindow
	AuraModels         modelList     `env:"AURA_MODELS"`         // see models and defaultModel
	AuraImageTokens    int           `env:"AURA_IMAGE_TOKENS" envDefault:"800"`
	TranscribeURL      string        `env:"TRANSCRIBE_URL"`
	TranscribeModel    string        `env:"TRANSCRIBE_MODEL" envDefault:"whisper-1"`
	TranscribeKey      string        `env:"TRANSCRIBE_KEY"`
	MaxFileBytes       int           `env:"MAX_FILE_BYTES" envDefault:"524288"`
	AuraBrowser        string        `env:"AURA_BROWSER"` // "", "auto" or a Chromium-family binary
	AuraBrowserRefresh time.Duration `env:"AURA_BROWSER_REFRESH" envDefault:"30m"`
	AuraBrowserTimeout time.Duration `env:"AURA_BROWSER_TIMEOUT" envDefault:"30s"`

	set map[string]string // every variable given, to tell "set" from "default"
}

// idList is a comma-separated list of Telegram ids, or "*" for everyone.
type idList struct {
	all bool
	ids []int64
}

// UnmarshalText parses the list; env calls it.
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

// onOff is a switch: "on" or "off" (in any case).
type onOff bool

// UnmarshalText parses the switch; env calls it.
func (o *onOff) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "on":
		*o = true
	case "off":
		*o = false
	default:
		return fmt.Errorf("%q is not on or off", string(b))
	}
	return nil
}

// modelChoice is one model the /model command offers.
type modelChoice struct {
	ID   string // what the server calls it: model.id (chatbot-ui), model (openai)
	Name string // what people see; empty means ID (chatbot-ui: aura's name for a known ID)
}

// modelList is AURA_MODELS: comma-separated entries, each an id or id=Display name.
type modelList []modelChoice

// UnmarshalText parses the list; env calls it. An empty list is no list.
func (l *modelList) UnmarshalText(b []byte) error {
	*l = nil
	s := string(b)
	if strings.TrimSpace(s) == "" {
		return nil
	}
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		id, name, _ := strings.Cut(entry, "=")
		id, name = strings.TrimSpace(id), strings.TrimSpace(name)
		switch {
		case id == "":
			return fmt.Errorf("entry %d has no model id (want id or id=Display name, separated by commas)", i+1)
		case strings.ContainsFunc(id, unicode.IsSpace):
			return fmt.Errorf("model id %q has a space inside (separate models with commas)", id)
		case strings.ContainsFunc(id+name, isControl):
			return fmt.Errorf("entry %d has a control character", i+1)
		case seen[id]:
			return fmt.Errorf("model id %q is listed twice", id)
		}
		seen[id] = true
		*l = append(*l, modelChoice{ID: id, Name: name})
	}
	return nil
}

// models is what /model offers: AURA_MODELS, or else the one model of AURA_MODEL.
func (c config) models() []modelChoice {
	if len(c.AuraModels) > 0 {
		return c.AuraModels
	}
	return []modelChoice{c.defaultModel()}
}

// defaultModel is the model of a chat that has not chosen one: AURA_MODEL (with AURA_MODEL_NAME
// in chatbot-ui mode), which validate has checked is one of AURA_MODELS when both are set; with
// AURA_MODELS alone, its first model.
func (c config) defaultModel() modelChoice {
	_, modelSet := c.set["AURA_MODEL"]
	for _, m := range c.AuraModels {
		if !modelSet || m.ID == c.AuraModel {
			return m
		}
	}
	m := modelChoice{ID: c.AuraModel}
	if c.AuraProtocol == aura.ProtocolChatbotUI {
		m.Name = c.AuraModelName
	}
	return m
}

// checkSystemPrompt refuses a SYSTEM_PROMPT that would take more than half of what the model
// is sent with each request (AURA_MAX_LENGTH characters, and the token window), leaving too
// little room for the conversation, as /system does for a chat's own prompt.
func (c config) checkSystemPrompt() error {
	half := history.Budget{Chars: c.AuraMaxLength, Tokens: c.tokenWindow(), PerMessage: c.tokensPerMessage()}.PromptHalf()
	chars, tokens := half.Room(c.SystemPrompt)
	if chars >= 0 && tokens >= 0 {
		return nil
	}
	limit := fmt.Sprintf("%d characters", half.Chars)
	if half.Tokens > 0 {
		limit += fmt.Sprintf(" and %d tokens", half.Tokens)
	}
	return fmt.Errorf("is %d characters (%d tokens): it may take at most half of what the model is sent, %s, so that there is room for the conversation",
		utf8.RuneCountInString(c.SystemPrompt), history.CountTokens(c.SystemPrompt), limit)
}

// tokenWindow is how many tokens (counted with cl100k_base, an estimate for other models) the
// system prompt and history of one request may take, or 0 for no bound. openai: the server's
// context AURA_CONTEXT_TOKENS less room for the answer, AURA_MAX_OUTPUT_TOKENS; unset, no
// bound. chatbot-ui: AURA_MAX_TOKENS less the 1000 tokens the server keeps free.
func (c config) tokenWindow() int {
	if c.AuraProtocol == aura.ProtocolChatbotUI {
		return c.AuraMaxTokens - chatbotUISpare
	}
	if c.AuraContextTokens == 0 {
		return 0
	}
	return c.AuraContextTokens - c.AuraMaxOutputTokens
}

// tokensPerMessage is what the server's chat template adds to each message, counted in the
// token window: AURA_TOKENS_PER_MESSAGE in openai mode; 0 in chatbot-ui mode, whose server
// counts the texts alone when it trims.
//
// Its default, 8: Llama 3's template puts <|start_header_id|>role<|end_header_id|> and a blank
// line before each message and <|eot_id|> after it, 5 tokens; ChatML's <|im_start|>role, a
// newline, <|im_end|> and a newline are 5 too, as are Gemma's. Counting each message and the
// reply's priming 3 tokens more covers what such templates add once per request
// (<|begin_of_text|>, the "Cutting Knowledge Date" lines of Llama 3.1 and 3.2, about 11 tokens)
// from the third message on, and templates with longer markers (8 a message).
func (c config) tokensPerMessage() int {
	if c.AuraProtocol == aura.ProtocolChatbotUI {
		return 0
	}
	return c.AuraTokensPerMessage
}

// loadConfig reads the .env file at dotenv (if it exists) under the environment, which wins,
// and checks the result.
func loadConfig(environ []string, dotenv string) (config, error) {
	cfg, err := parseConfig(environ, dotenv)
	if err != nil {
		return config{}, err
	}
	if err := cfg.validate(); err != nil {
		return config{}, scrub(err, cfg.set)
	}
	return cfg, nil
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
		return config{}, scrub(explain(err), vars)
	}
	cfg.set = vars
	// A token or key pasted with a line break or a space around it is meant without.
	for _, secret := range []*string{&cfg.TelegramToken, &cfg.AuraKey, &cfg.AuraCookies, &cfg.TranscribeKey} {
		*secret = strings.TrimSpace(*secret)
	}
	return cfg, nil
}

// defaultListenAddr is LISTEN_ADDR when it is not set: loopback only. /healthz and /metrics are
// for the machine's own checks and scrapers; listening on every interface (the Docker image's
// 0.0.0.0:8080, a reverse proxy elsewhere) is a choice to make knowingly.
const defaultListenAddr = "127.0.0.1:8080"

// listenAddr is LISTEN_ADDR: defaultListenAddr when it is not set; set empty, no listener.
func (c config) listenAddr() string {
	if _, ok := c.set["LISTEN_ADDR"]; !ok {
		return defaultListenAddr
	}
	return strings.TrimSpace(c.ListenAddr)
}

// ignored lists the settings that were given a value but mean nothing in the chosen protocol.
func (c config) ignored() []string {
	unused := []string{"AURA_MAX_OUTPUT_TOKENS", "AURA_CONTEXT_TOKENS", "AURA_TOKENS_PER_MESSAGE"}
	if c.AuraProtocol == aura.ProtocolOpenAI {
		unused = []string{"AURA_MODEL_NAME", "AURA_MAX_TOKENS"}
	}
	var out []string
	for _, name := range unused {
		if strings.TrimSpace(c.set[name]) != "" { // set empty, as in config.example.env, is unset
			out = append(out, name)
		}
	}
	return out
}

// secretVars are the settings whose values never appear in an error or a log; urlVars are those
// whose user and password never do.
var (
	secretVars = []string{"TELEGRAM_TOKEN", "AURA_KEY", "AURA_COOKIES", "TRANSCRIBE_KEY", "WEBHOOK_SECRET", "METRICS_TOKEN"}
	urlVars    = []string{"TELEGRAM_API_URL", "AURA_URL", "AURA_PROXY", "TRANSCRIBE_URL", "WEBHOOK_URL"}
)

// scrub is the last guard of secrets: an error that contains the value of a secret setting, or a
// user or password of a URL setting, comes back with each replaced by xxxxx. The checks quote no
// secret on purpose; this catches what a future check or a library's message might. Values of
// fewer than 4 characters are left alone: replacing them would mangle the message, and they
// are not secrets worth the name.
func scrub(err error, vars map[string]string) error {
	msg := err.Error()
	secrets := secretValues(vars)
	// Longest first, so that a secret containing another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	scrubbed := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			scrubbed = strings.ReplaceAll(scrubbed, s, "xxxxx")
		}
	}
	if scrubbed == msg {
		return err
	}
	return errors.New(scrubbed)
}

// secretValues are the secrets among the settings vars: the values of secretVars (the secret
// half of the token, and each cookie's value, too) and the user and password of urlVars. Config
// errors are scrubbed of them, and the log handler removes them from every line.
func secretValues(vars map[string]string) []string {
	var secrets []string
	for _, name := range secretVars {
		v := vars[name]
		secrets = append(secrets, v, strings.TrimSpace(v))
		switch name {
		case "TELEGRAM_TOKEN":
			secrets = append(secrets, logging.TokenSecrets(strings.TrimSpace(v))...)
		case "AURA_COOKIES":
			secrets = append(secrets, logging.CookieSecrets(strings.TrimSpace(v))...)
		}
	}
	for _, name := range urlVars {
		if at := strings.LastIndexByte(vars[name], '@'); at >= 0 {
			userinfo := vars[name][:at]
			if _, after, ok := strings.Cut(userinfo, "://"); ok {
				userinfo = after
			}
			user, pass, _ := strings.Cut(userinfo, ":")
			secrets = append(secrets, userinfo, user, pass)
		}
	}
	return secrets
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
		name := f.Tag.Get("env")
		var ne *strconv.NumError
		switch {
		case errors.As(pe.Err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
			return fmt.Errorf("config: %s: %q: %w", name, ne.Num, ne.Err)
		case errors.As(pe.Err, &ne):
			return fmt.Errorf("config: %s: %q is not a number: %w", name, ne.Num, ne.Err)
		}
		return fmt.Errorf("config: %s: %w", name, pe.Err)
	}
	return fmt.Errorf("config: %w", agg.Errors[0])
}

// Bounds of the numeric settings. Past them a value is a mistake (a typo, a unit mix-up), not a
// choice: no model has a context of ten million tokens, no reply should wait an hour to start.
const (
	maxChars       = 10_000_000 // characters of prompt + history: more than any context window
	maxTokens      = 10_000_000 // tokens of a context window
	maxOutput      = 1_000_000  // tokens of one answer
	maxReplies     = 1000       // concurrent replies: at 30 calls/s each would see an edit every 33 s
	maxWait        = time.Hour  // any timeout
	chatbotUISpare = 1000       // tokens a chatbot-ui server keeps free of its tokenLimit
	minContext     = 512        // tokens: llama.cpp's smallest usual -c; less holds no conversation
	minAnswer      = 1000       // characters: a shorter cap cuts ordinary answers
	maxAnswer      = 1_000_000  // characters: 245 Telegram messages
	maxImageTokens = 100_000    // tokens one image may count for
	maxPerMessage  = 100        // tokens a chat template adds around one message: the longest known add about 10
	maxFileBytes   = 20 << 20   // Telegram's download limit for bots
	maxPerMinute   = 1000       // messages a minute from one user: more is no bound at all
	maxCapTokens   = 1 << 40    // tokens a user may use a day or a month: a trillion is no cap at all
)

// tokenPattern is a bot token as @BotFather gives it: the bot's id, a colon, the secret.
var tokenPattern = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)

// validate checks every setting and the combinations, and names the variable in each error.
// Errors never contain a secret: not the token, a key, the cookies, nor a URL's user or password.
func (c config) validate() error {
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, args...))
	}
	for _, name := range []string{"TELEGRAM_API_URL", "AURA_URL", "DATABASE_PATH"} {
		if v, ok := c.set[name]; ok && strings.TrimSpace(v) == "" {
			return bad(name, "is set but empty: remove the line to use the default, or give a value")
		}
	}

	// Telegram
	switch {
	case c.TelegramToken == "":
		return bad("TELEGRAM_TOKEN", "is required: get a token from @BotFather and put it in .env")
	case strings.ContainsFunc(c.TelegramToken, unicode.IsSpace):
		return bad("TELEGRAM_TOKEN", "has a space or line break inside: copy it again from @BotFather")
	case !tokenPattern.MatchString(c.TelegramToken):
		return bad("TELEGRAM_TOKEN", "is not a bot token: @BotFather gives one like 123456789:AAH... (digits, a colon, then letters, digits, _ and -)")
	}
	if err := checkURL(c.TelegramAPIURL, "http", "https"); err != nil {
		return bad("TELEGRAM_API_URL", "%v", err)
	}
	if c.TelegramLocalFiles != "" {
		if err := checkDir(c.TelegramLocalFiles); err != nil {
			return bad("TELEGRAM_LOCAL_FILES", "%v", err)
		}
	}
	if err := between(c.UserMessagesPerMinute, 0, maxPerMinute, "messages a minute (0: no bound)"); err != nil {
		return bad("USER_MESSAGES_PER_MINUTE", "%v", err)
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"USER_DAILY_TOKENS", c.UserDailyTokens}, {"USER_MONTHLY_TOKENS", c.UserMonthlyTokens}} {
		switch {
		case v.n < 0:
			return bad(v.name, "%d must not be negative (0 or empty: no cap)", v.n)
		case v.n > maxCapTokens:
			return bad(v.name, "%d is too large: use at most %d tokens (0 or empty: no cap)", v.n, int64(maxCapTokens))
		}
	}
	if c.UserDailyTokens > 0 && c.UserMonthlyTokens > 0 && c.UserMonthlyTokens < c.UserDailyTokens {
		return bad("USER_MONTHLY_TOKENS", "%d is less than USER_DAILY_TOKENS (%d): the daily cap could never be reached", c.UserMonthlyTokens, c.UserDailyTokens)
	}
	if err := checkIDs(c.AllowedUsers, "user", func(id int64) bool { return id > 0 }); err != nil {
		return bad("ALLOWED_USERS", "%v (group ids, which are negative, go in ALLOWED_CHATS)", err)
	}
	if err := checkIDs(c.AllowedChats, "chat", func(id int64) bool { return id != 0 }); err != nil {
		return bad("ALLOWED_CHATS", "%v", err)
	}

	// The model server
	if err := checkURL(c.AuraURL, "http", "https"); err != nil {
		return bad("AURA_URL", "%v", err)
	}
	switch c.AuraProtocol {
	case aura.ProtocolChatbotUI:
	case aura.ProtocolOpenAI:
		if _, ok := c.set["AURA_MODEL"]; !ok && len(c.AuraModels) == 0 {
			return bad("AURA_MODEL", "is required with AURA_PROTOCOL=openai: the model name your server serves (e.g. llama3.1:8b for Ollama)")
		}
	default:
		return bad("AURA_PROTOCOL", "%q is not chatbot-ui or openai", c.AuraProtocol)
	}
	if _, ok := c.set["AURA_MODEL"]; ok && len(c.AuraModels) > 0 && !slices.ContainsFunc(c.AuraModels, func(m modelChoice) bool { return m.ID == c.AuraModel }) {
		return bad("AURA_MODEL", "%q is not one of AURA_MODELS: add it there, or leave AURA_MODEL out to default to the first", c.AuraModel)
	}
	if c.AuraProxy != "" {
		if _, err := aura.ParseProxy(c.AuraProxy); err != nil {
			return bad("AURA_PROXY", "%v", err)
		}
	}
	for _, h := range []struct{ name, value string }{
		{"AURA_KEY", c.AuraKey}, {"AURA_COOKIES", c.AuraCookies}, {"AURA_USER_AGENT", c.AuraUserAgent},
		{"TRANSCRIBE_KEY", c.TranscribeKey}, {"TRANSCRIBE_MODEL", c.TranscribeModel},
	} {
		if strings.ContainsFunc(h.value, isControl) {
			return bad(h.name, "has a control character (a line break or a tab?) inside: it goes in an HTTP header")
		}
	}
	if math.IsNaN(c.AuraTemperature) || c.AuraTemperature < 0 || c.AuraTemperature > 2 {
		return bad("AURA_TEMPERATURE", "%v is out of range: use 0 to 2", c.AuraTemperature)
	}
	if err := between(c.AuraMaxLength, 100, maxChars, "characters"); err != nil {
		return bad("AURA_MAX_LENGTH", "%v", err)
	}
	if err := between(c.AuraMaxTokens, 1, maxTokens, "tokens"); err != nil {
		return bad("AURA_MAX_TOKENS", "%v", err)
	}
	if c.AuraProtocol == aura.ProtocolChatbotUI && c.AuraMaxTokens <= chatbotUISpare {
		return bad("AURA_MAX_TOKENS", "%d leaves no room: a chatbot-ui server keeps %d tokens of it free, so use more than %d", c.AuraMaxTokens, chatbotUISpare, chatbotUISpare)
	}
	if err := between(c.AuraMaxOutputTokens, 0, maxOutput, "tokens"); err != nil {
		return bad("AURA_MAX_OUTPUT_TOKENS", "%v", err)
	}
	if strings.TrimSpace(c.set["AURA_CONTEXT_TOKENS"]) != "" {
		if err := between(c.AuraContextTokens, minContext, maxTokens, "tokens (leave it empty for no bound)"); err != nil {
			return bad("AURA_CONTEXT_TOKENS", "%v", err)
		}
		if c.AuraProtocol == aura.ProtocolOpenAI && c.AuraContextTokens <= c.AuraMaxOutputTokens {
			return bad("AURA_CONTEXT_TOKENS", "%d leaves no room for the conversation: it must be more than AURA_MAX_OUTPUT_TOKENS (%d), the room kept for the answer", c.AuraContextTokens, c.AuraMaxOutputTokens)
		}
	}
	if err := between(c.AuraTokensPerMessage, 0, maxPerMessage, "tokens"); err != nil {
		return bad("AURA_TOKENS_PER_MESSAGE", "%v", err)
	}
	if err := between(c.AuraImageTokens, 0, maxImageTokens, "tokens"); err != nil {
		return bad("AURA_IMAGE_TOKENS", "%v", err)
	}
	if c.TranscribeURL != "" {
		if err := checkURL(c.TranscribeURL, "http", "https"); err != nil {
			return bad("TRANSCRIBE_URL", "%v", err)
		}
	}
	if err := between(c.MaxFileBytes, 1024, maxFileBytes, "bytes (Telegram lets bots download 20 MiB at most)"); err != nil {
		return bad("MAX_FILE_BYTES", "%v", err)
	}
	if err := checkBrowser(c.AuraBrowser); err != nil {
		return bad("AURA_BROWSER", "%v", err)
	}
	if err := within(c.AuraBrowserRefresh, time.Minute, 24*time.Hour); err != nil {
		return bad("AURA_BROWSER_REFRESH", "%v", err)
	}
	if err := within(c.AuraBrowserTimeout, time.Second, 10*time.Minute); err != nil {
		return bad("AURA_BROWSER_TIMEOUT", "%v", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"AURA_FIRST_BYTE_TIMEOUT", c.AuraFirstByteTimeout},
		{"AURA_IDLE_TIMEOUT", c.AuraIdleTimeout},
		{"SHUTDOWN_TIMEOUT", c.ShutdownAfter},
	} {
		if err := within(d.v, time.Millisecond, maxWait); err != nil {
			return bad(d.name, "%v", err)
		}
	}

	// The bot
	if err := c.checkSystemPrompt(); err != nil {
		return bad("SYSTEM_PROMPT", "%v", err)
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
	if err := between(c.MaxReplies, 1, maxReplies, "replies"); err != nil {
		return bad("MAX_CONCURRENT_REPLIES", "%v", err)
	}
	if err := between(c.MaxAnswerChars, minAnswer, maxAnswer, "characters"); err != nil {
		return bad("MAX_ANSWER_CHARS", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	if addr := c.listenAddr(); addr != "" && !validListenAddr(addr) {
		return bad("LISTEN_ADDR", "%q is not host:port or :port, like 127.0.0.1:8080", addr)
	}
	if c.WebhookURL != "" {
		if err := checkWebhookURL(c.WebhookURL); err != nil {
			return bad("WEBHOOK_URL", "%v", err)
		}
		if c.WebhookSecret == "" {
			return bad("WEBHOOK_SECRET", "is required with WEBHOOK_URL: make one with `openssl rand -hex 32`")
		}
		if c.listenAddr() == "" {
			return bad("LISTEN_ADDR", "must not be empty with WEBHOOK_URL: the webhook is served there")
		}
	}
	if c.WebhookSecret != "" && !intake.ValidWebhookSecret(c.WebhookSecret) {
		return bad("WEBHOOK_SECRET", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	}
	if c.MetricsToken != "" && !metricsTokenPattern.MatchString(c.MetricsToken) {
		return bad("METRICS_TOKEN", "must be 16-256 characters of A-Z, a-z, 0-9 and ._~+/=- (make one with `openssl rand -hex 32`)")
	}
	return nil
}

// metricsTokenPattern is a METRICS_TOKEN: long enough not to be guessed, and what an
// Authorization: Bearer header carries (RFC 6750's token68).
var metricsTokenPattern = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{16,256}$`)

// checkDir checks that dir is an existing directory (TELEGRAM_LOCAL_FILES: the local Bot API
// server's working directory, as the bot sees it).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("%q: no such directory (want the working directory of the local Bot API server, telegram-bot-api --dir, as this machine sees it)", dir)
	case !fi.IsDir():
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}

// checkBrowser checks AURA_BROWSER: empty (off), auto (find one), a command on PATH or a path,
// either of which must be an executable file. That it is of the Chromium family is not checked:
// a wrapper script or a distribution's renamed binary is as good.
func checkBrowser(s string) error {
	if s == "" || s == "auto" {
		return nil
	}
	if !strings.ContainsRune(s, os.PathSeparator) {
		if _, err := exec.LookPath(s); err != nil {
			return fmt.Errorf("%q is not auto, a path, nor a command on PATH", s)
		}
		return nil
	}
	fi, err := os.Stat(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q: no such file (want empty, auto, or the path of a Chromium-family browser)", s)
	case fi.IsDir():
		return fmt.Errorf("%q is a folder: give the browser's executable inside it", s)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%q is not executable", s)
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// between checks that n is in [lo, hi]; unit names what n counts.
func between(n, lo, hi int, unit string) error {
	switch {
	case n < 0 && lo >= 0:
		return fmt.Errorf("%d must not be negative", n)
	case n < lo:
		return fmt.Errorf("%d is too small: use at least %d %s", n, lo, unit)
	case n > hi:
		return fmt.Errorf("%d is too large: use at most %d %s", n, hi, unit)
	}
	return nil
}

// within checks that a duration is in [lo, hi].
func within(d, lo, hi time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("%v must be positive, like 60s", d)
	case d < lo:
		return fmt.Errorf("%v is too short: use at least %v", d, lo)
	case d > hi:
		return fmt.Errorf("%v is too long: use at most %v", d, hi)
	}
	return nil
}

// checkIDs checks each id of a list with ok; kind names what the ids are.
func checkIDs(l idList, kind string, ok func(int64) bool) error {
	for _, id := range l.ids {
		if !ok(id) {
			return fmt.Errorf("%d is not a Telegram %s id", id, kind)
		}
	}
	return nil
}

// checkURL checks that raw is an absolute URL with one of the schemes, a host, and no query or
// fragment (settings that take a URL take a base to add paths to). Its errors quote the URL
// only as redactURL gives it.
func checkURL(raw string, schemes ...string) error {
	shown := redactURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", shown)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("%q is not an %s URL", shown, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", shown)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%q has a query string (?...): remove it", shown)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment (#...): remove it", shown)
	}
	return nil
}

// webhookPorts are the ports Telegram sends webhooks to.
var webhookPorts = []string{"", "443", "80", "88", "8443"}

// checkWebhookURL checks a WEBHOOK_URL: https (Telegram calls nothing else), a port Telegram
// calls, and a path the bot can serve: the listener registers it as a route, so a path that is
// not clean ("//", "/./", "/../", a trailing "/") would be a different route or none.
func checkWebhookURL(raw string) error {
	if err := checkURL(raw, "https"); err != nil {
		return fmt.Errorf("%w (Telegram calls webhooks over https only)", err)
	}
	u, _ := url.Parse(raw) // checkURL has parsed it
	if !slices.Contains(webhookPorts, u.Port()) {
		return fmt.Errorf("port %s: Telegram calls webhooks on port 443, 80, 88 or 8443 only", u.Port())
	}
	p, err := intake.WebhookPath(raw)
	if err != nil {
		return err
	}
	if p != "/" && path.Clean(p) != p {
		return fmt.Errorf("path %q is not clean (no //, no . or .. segments, no trailing /)", p)
	}
	return nil
}

// redactURL is raw fit to quote in an error: without the user and password (everything up to
// the last @, after the scheme), the query and the fragment, any of which may hold a secret. It
// works on URLs that do not parse too.
func redactURL(raw string) string {
	if at := strings.LastIndexByte(raw, '@'); at >= 0 {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 && i < at {
			start = i + len("://")
		}
		raw = raw[:start] + "xxxxx" + raw[at:]
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	return raw
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

// logger is the program's logger, writing to w at LOG_LEVEL in LOG_FORMAT. Every line passes
// the redactor first, which removes every secret of the settings, and those it learns later
// (Add: the cookies a browser captures).
func (c config) logger(w io.Writer) (*slog.Logger, *logging.Redactor) {
	level, _ := parseLevel(c.LogLevel) // validate has checked it
	opts := &slog.HandlerOptions{Level: level}
	var out slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		out = slog.NewJSONHandler(w, opts)
	}
	red := logging.NewRedactor(out, secretValues(c.set)...)
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
