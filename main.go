// Command aurabot is a Telegram bot that lets people chat with a language model served by an
// Aura (chatbot-ui) or OpenAI-compatible server, streaming each answer as it is written.
//
// main wires the packages: it reads the configuration, opens the store, builds the model client
// and the bot, and runs until SIGINT or SIGTERM.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"

	"aurabot/aura"
	"aurabot/aura/browser"
	"aurabot/bot"
	"aurabot/history"
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
	AuraBrowser          string        `env:"AURA_BROWSER"` // empty: off; auto or a path: see aura/browser
	AuraBrowserRefresh   time.Duration `env:"AURA_BROWSER_REFRESH" envDefault:"30m"`
	AuraBrowserTimeout   time.Duration `env:"AURA_BROWSER_TIMEOUT" envDefault:"30s"`

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
	vars := map[string]string{}
	if err := readDotenv(dotenv, vars); err != nil {
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
		u, err := url.Parse(c.AuraProxy)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h") {
			return bad("AURA_PROXY", "must be an http://, https:// or socks5:// URL")
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
	if c.AuraBrowser != "" {
		if c.AuraBrowserRefresh <= 0 {
			return bad("AURA_BROWSER_REFRESH", "must be positive, like 30m")
		}
		if c.AuraBrowserTimeout <= 0 {
			return bad("AURA_BROWSER_TIMEOUT", "must be positive, like 30s")
		}
		if u, err := url.Parse(c.AuraProxy); c.AuraProxy != "" && err == nil && u.User != nil && strings.HasPrefix(u.Scheme, "socks5") {
			return bad("AURA_PROXY", "a SOCKS5 proxy must not hold a user name or password with AURA_BROWSER: Chromium cannot log in to one (an http:// proxy can)")
		}
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

// readDotenv adds KEY=VALUE lines of a .env file to vars. A missing file is fine.
func readDotenv(path string, vars map[string]string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return fmt.Errorf("config: %s line %d: expected KEY=VALUE", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if v[0] == '"' {
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				} else {
					v = v[1 : len(v)-1]
				}
			} else {
				v = v[1 : len(v)-1]
			}
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		vars[k] = v
	}
	return sc.Err()
}

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, environ []string, dotenv string, stderr io.Writer) error {
	cfg, err := loadConfig(environ, dotenv)
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)
	for _, name := range cfg.ignored() {
		log.Debug("setting ignored with AURA_PROTOCOL="+cfg.AuraProtocol, "variable", name)
	}

	store, err := history.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer store.Close()

	var credentials aura.Credentials
	switch {
	case cfg.AuraBrowser == "":
	case cfg.AuraCookies != "" && cfg.AuraUserAgent != "":
		log.Warn("AURA_BROWSER is ignored: AURA_COOKIES and AURA_USER_AGENT are both set, and they win")
	default:
		capturer, err := newCapturer(cfg, log)
		if err != nil {
			return err
		}
		defer capturer.Close() // after the bot: it stops a capture in progress, and its browser
		credentials = capturer
	}
	model, err := aura.New(aura.Config{
		Protocol:         cfg.AuraProtocol,
		BaseURL:          cfg.AuraURL,
		MaxOutputTokens:  cfg.AuraMaxOutputTokens,
		Model:            cfg.AuraModel,
		ModelName:        cfg.AuraModelName,
		MaxLength:        cfg.AuraMaxLength,
		TokenLimit:       cfg.AuraMaxTokens,
		Temperature:      cfg.AuraTemperature,
		Key:              cfg.AuraKey,
		Cookies:          cfg.AuraCookies,
		UserAgent:        cfg.AuraUserAgent,
		Proxy:            cfg.AuraProxy,
		FirstByteTimeout: cfg.AuraFirstByteTimeout,
		IdleTimeout:      cfg.AuraIdleTimeout,
		Credentials:      credentials,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	defer model.Close()

	b, err := bot.New(bot.Config{
		Token:                cfg.TelegramToken,
		APIURL:               cfg.TelegramAPIURL,
		AllowAll:             cfg.AllowedUsers.all,
		AllowedUsers:         cfg.AllowedUsers.ids,
		AllowedChats:         cfg.AllowedChats.ids,
		DefaultPrompt:        cfg.SystemPrompt,
		ContextBudget:        cfg.AuraMaxLength,
		StreamMode:           cfg.StreamMode,
		MaxConcurrentReplies: cfg.MaxReplies,
		ShutdownTimeout:      cfg.ShutdownAfter,
		ListenAddr:           cfg.listenAddr(),
		WebhookURL:           cfg.WebhookURL,
		WebhookSecret:        cfg.WebhookSecret,
		Logger:               log,
	}, store, model)
	if err != nil {
		return err
	}
	if !cfg.AllowedUsers.all && len(cfg.AllowedUsers.ids) == 0 && len(cfg.AllowedChats.ids) == 0 {
		log.Warn("ALLOWED_USERS is empty: the bot answers nobody; each user who writes is told their id")
	}
	return b.Run(ctx)
}

// newCapturer returns the Capturer that AURA_BROWSER asks for. A missing browser is only a
// warning: each capture looks again, and a failed one is reported with the reply.
func newCapturer(cfg config, log *slog.Logger) (*browser.Capturer, error) {
	if bin, err := browser.Find(cfg.AuraBrowser); err != nil {
		log.Warn("AURA_BROWSER: replies will fail until a browser is installed", "err", err)
	} else {
		log.Info("cookies for the model server come from a headless browser", "browser", bin, "refresh", cfg.AuraBrowserRefresh)
	}
	return browser.New(browser.Options{
		Browser: cfg.AuraBrowser,
		URL:     cfg.AuraURL,
		Proxy:   cfg.AuraProxy,
		Refresh: cfg.AuraBrowserRefresh,
		Timeout: cfg.AuraBrowserTimeout,
		Logger:  log,
	})
}

// command runs what the flags ask for: the bot (no flags), a health check of a running bot
// (-healthcheck, for Docker's HEALTHCHECK in an image without curl) or an online backup of its
// database (-backup PATH).
func command(ctx context.Context, args, environ []string, dotenv string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aurabot", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // main prints the error; the usage follows it below
	health := fs.Bool("healthcheck", false, "check GET /healthz of the bot running on LISTEN_ADDR and exit 0 (healthy) or 1")
	backup := fs.String("backup", "", "write a consistent copy of DATABASE_PATH to this new file, while the bot runs, and exit")
	if err := fs.Parse(args); err != nil {
		out := stderr
		if errors.Is(err, flag.ErrHelp) {
			out, err = stdout, nil
		}
		fmt.Fprintln(out, "Usage: aurabot [-healthcheck | -backup PATH]; settings come from the environment and .env.")
		fs.SetOutput(out)
		fs.PrintDefaults()
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: the bot is configured by environment variables (see config.example.env)", fs.Arg(0))
	}
	switch {
	case *health && *backup != "":
		return errors.New("use -healthcheck or -backup, not both")
	case *health:
		cfg, err := parseConfig(environ, dotenv)
		if err != nil {
			return err
		}
		if cfg.listenAddr() == "" {
			return errors.New("healthcheck: LISTEN_ADDR is empty, so the bot serves no /healthz")
		}
		status, err := bot.CheckHealth(ctx, cfg.listenAddr())
		if err == nil {
			fmt.Fprintln(stdout, status)
		}
		return err
	case *backup != "":
		cfg, err := parseConfig(environ, dotenv)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := history.BackupFile(ctx, cfg.DatabasePath, *backup); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backed up %s to %s in %s\n", cfg.DatabasePath, *backup, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return run(ctx, environ, dotenv, stderr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := command(ctx, os.Args[1:], os.Environ(), ".env", os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aurabot:", err)
		stop()
		os.Exit(1)
	}
}
