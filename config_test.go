package main

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"

	"aurabot/bot/conversation"
	"aurabot/bot/intake"
)

func TestConfigRejectsBadValues(t *testing.T) {
	base := []string{"TELEGRAM_TOKEN=1:x"}
	tests := []struct {
		name string
		env  []string
		want string // the variable the error must name
	}{
		{"missing token", nil, "TELEGRAM_TOKEN"},
		{"blank token", []string{"TELEGRAM_TOKEN=  "}, "TELEGRAM_TOKEN"},
		{"aura url does not parse", append(base, "AURA_URL=http://%zz"), "AURA_URL"},
		{"aura url without scheme", append(base, "AURA_URL=openchat.team"), "AURA_URL"},
		{"telegram url", append(base, "TELEGRAM_API_URL=ftp://x"), "TELEGRAM_API_URL"},
		{"temperature 7", append(base, "AURA_TEMPERATURE=7"), "AURA_TEMPERATURE"},
		{"system prompt over half the characters", append(base, "AURA_MAX_LENGTH=1000", "SYSTEM_PROMPT="+strings.Repeat("a ", 300)), "SYSTEM_PROMPT"},
		{"system prompt over half the tokens", append(base, "AURA_MAX_TOKENS=2000", "SYSTEM_PROMPT="+strings.Repeat("漢字 ", 400)), "SYSTEM_PROMPT"},
		{"temperature negative", append(base, "AURA_TEMPERATURE=-0.1"), "AURA_TEMPERATURE"},
		{"temperature a word", append(base, "AURA_TEMPERATURE=hot"), "AURA_TEMPERATURE"},
		{"id list with a word", append(base, "ALLOWED_USERS=12,bob"), "ALLOWED_USERS"},
		{"chat list with a word", append(base, "ALLOWED_CHATS=-100x"), "ALLOWED_CHATS"},
		{"max length a word", append(base, "AURA_MAX_LENGTH=lots"), "AURA_MAX_LENGTH"},
		{"max length tiny", append(base, "AURA_MAX_LENGTH=3"), "AURA_MAX_LENGTH"},
		{"max tokens zero", append(base, "AURA_MAX_TOKENS=0"), "AURA_MAX_TOKENS"},
		{"proxy scheme", append(base, "AURA_PROXY=ftp://proxy:21"), "AURA_PROXY"},
		{"log level", append(base, "LOG_LEVEL=loud"), "LOG_LEVEL"},
		{"timeout", append(base, "AURA_IDLE_TIMEOUT=soon"), "AURA_IDLE_TIMEOUT"},
		{"stream mode", append(base, "STREAM_MODE=smoke"), "STREAM_MODE"},
		{"show thinking", append(base, "SHOW_THINKING=yes"), "SHOW_THINKING"},
		{"max replies", append(base, "MAX_CONCURRENT_REPLIES=0"), "MAX_CONCURRENT_REPLIES"},
		{"shutdown timeout zero", append(base, "SHUTDOWN_TIMEOUT=0s"), "SHUTDOWN_TIMEOUT"},
		{"webhook without secret", append(base, "WEBHOOK_URL=https://bot.example.com/tg"), "WEBHOOK_SECRET"},
		{"webhook secret with a space", append(base, "WEBHOOK_URL=https://bot.example.com/tg", "WEBHOOK_SECRET=not secret"), "WEBHOOK_SECRET"},
		{"webhook secret too long", append(base, "WEBHOOK_URL=https://bot.example.com/tg", "WEBHOOK_SECRET="+strings.Repeat("a", 257)), "WEBHOOK_SECRET"},
		{"webhook url scheme", append(base, "WEBHOOK_URL=ftp://bot.example.com/tg", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook on /metrics", append(base, "WEBHOOK_URL=https://bot.example.com/metrics", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook without listener", append(base, "WEBHOOK_URL=https://bot.example.com/tg", "WEBHOOK_SECRET=s3cret", "LISTEN_ADDR="), "LISTEN_ADDR"},
		{"listen address without port", append(base, "LISTEN_ADDR=8080"), "LISTEN_ADDR"},
		{"listen address with a word port", append(base, "LISTEN_ADDR=:http-alt"), "LISTEN_ADDR"},
		{"listen port out of range", append(base, "LISTEN_ADDR=:70000"), "LISTEN_ADDR"},
		{"log format", append(base, "LOG_FORMAT=xml"), "LOG_FORMAT"},
		{"protocol", append(base, "AURA_PROTOCOL=grpc"), "AURA_PROTOCOL"},
		{"openai without a model", append(base, "AURA_PROTOCOL=openai"), "AURA_MODEL"},
		{"output tokens negative", append(base, "AURA_MAX_OUTPUT_TOKENS=-1"), "AURA_MAX_OUTPUT_TOKENS"},

		// Hostile values: each was accepted before, and failed later or did something else.
		{"token with a space inside", []string{"TELEGRAM_TOKEN=123:abc def"}, "TELEGRAM_TOKEN"},
		{"token with a line break inside", []string{"TELEGRAM_TOKEN=123:abc\ndef"}, "TELEGRAM_TOKEN"},
		{"token without a colon", []string{"TELEGRAM_TOKEN=123abc"}, "TELEGRAM_TOKEN"},
		{"token without the bot id", []string{"TELEGRAM_TOKEN=:abc"}, "TELEGRAM_TOKEN"},
		{"token with a word for the bot id", []string{"TELEGRAM_TOKEN=bot:abc"}, "TELEGRAM_TOKEN"},
		{"token without the secret", []string{"TELEGRAM_TOKEN=123:"}, "TELEGRAM_TOKEN"},
		{"token with a slash", []string{"TELEGRAM_TOKEN=123:ab/c"}, "TELEGRAM_TOKEN"},
		{"webhook path with an empty segment", append(base, "WEBHOOK_URL=https://example.invalid//hook", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook path with ..", append(base, "WEBHOOK_URL=https://example.invalid/a/../hook", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook path with .", append(base, "WEBHOOK_URL=https://example.invalid/a/./hook", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook path with a trailing slash", append(base, "WEBHOOK_URL=https://example.invalid/hook/", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook over http", append(base, "WEBHOOK_URL=http://bot.example.com/tg", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook with a query", append(base, "WEBHOOK_URL=https://bot.example.com/tg?a=1", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook with an empty query", append(base, "WEBHOOK_URL=https://bot.example.com/tg?", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook with a fragment", append(base, "WEBHOOK_URL=https://bot.example.com/tg#x", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"webhook on a port Telegram does not call", append(base, "WEBHOOK_URL=https://bot.example.com:8080/tg", "WEBHOOK_SECRET=s3cret"), "WEBHOOK_URL"},
		{"temperature NaN", append(base, "AURA_TEMPERATURE=NaN"), "AURA_TEMPERATURE"},
		{"temperature Inf", append(base, "AURA_TEMPERATURE=Inf"), "AURA_TEMPERATURE"},
		{"temperature -Inf", append(base, "AURA_TEMPERATURE=-Inf"), "AURA_TEMPERATURE"},
		{"database path set empty", append(base, "DATABASE_PATH="), "DATABASE_PATH"},
		{"aura url set empty", append(base, "AURA_URL="), "AURA_URL"},
		{"telegram url set empty", append(base, "TELEGRAM_API_URL="), "TELEGRAM_API_URL"},
		{"aura url with a query", append(base, "AURA_URL=https://models.example.com/?key=1"), "AURA_URL"},
		{"aura url with a fragment", append(base, "AURA_URL=https://models.example.com/#top"), "AURA_URL"},
		{"aura url without a host", append(base, "AURA_URL=https:///v1"), "AURA_URL"},
		{"telegram url with a query", append(base, "TELEGRAM_API_URL=https://api.telegram.org?x=1"), "TELEGRAM_API_URL"},
		{"telegram url with a fragment", append(base, "TELEGRAM_API_URL=https://api.telegram.org#x"), "TELEGRAM_API_URL"},
		{"key with a line break inside", append(base, "AURA_KEY=sk-1\nsk-2"), "AURA_KEY"},
		{"cookies with a tab inside", append(base, "AURA_COOKIES=a=1;\tb=2"), "AURA_COOKIES"},
		{"user agent with a line break", append(base, "AURA_USER_AGENT=Agent\r\nX-Evil: 1"), "AURA_USER_AGENT"},
		{"user id negative", append(base, "ALLOWED_USERS=12,-100123"), "ALLOWED_USERS"},
		{"user id zero", append(base, "ALLOWED_USERS=0"), "ALLOWED_USERS"},
		{"user id too large", append(base, "ALLOWED_USERS=99999999999999999999"), "ALLOWED_USERS"},
		{"chat id zero", append(base, "ALLOWED_CHATS=-100,0"), "ALLOWED_CHATS"},
		{"output tokens absurd", append(base, "AURA_MAX_OUTPUT_TOKENS=2000000"), "AURA_MAX_OUTPUT_TOKENS"},
		{"max length negative", append(base, "AURA_MAX_LENGTH=-5"), "AURA_MAX_LENGTH"},
		{"max length absurd", append(base, "AURA_MAX_LENGTH=50000000"), "AURA_MAX_LENGTH"},
		{"max length past int64", append(base, "AURA_MAX_LENGTH=99999999999999999999"), "AURA_MAX_LENGTH"},
		{"max tokens negative", append(base, "AURA_MAX_TOKENS=-1"), "AURA_MAX_TOKENS"},
		{"max tokens absurd", append(base, "AURA_MAX_TOKENS=50000000"), "AURA_MAX_TOKENS"},
		{"max tokens within the chatbot-ui reserve", append(base, "AURA_MAX_TOKENS=1000"), "AURA_MAX_TOKENS"},
		{"max replies negative", append(base, "MAX_CONCURRENT_REPLIES=-3"), "MAX_CONCURRENT_REPLIES"},
		{"max replies absurd", append(base, "MAX_CONCURRENT_REPLIES=100000"), "MAX_CONCURRENT_REPLIES"},
		{"first byte timeout negative", append(base, "AURA_FIRST_BYTE_TIMEOUT=-1s"), "AURA_FIRST_BYTE_TIMEOUT"},
		{"first byte timeout absurd", append(base, "AURA_FIRST_BYTE_TIMEOUT=1000h"), "AURA_FIRST_BYTE_TIMEOUT"},
		{"first byte timeout in nanoseconds", append(base, "AURA_FIRST_BYTE_TIMEOUT=60"), "AURA_FIRST_BYTE_TIMEOUT"},
		{"idle timeout zero", append(base, "AURA_IDLE_TIMEOUT=0s"), "AURA_IDLE_TIMEOUT"},
		{"idle timeout negative", append(base, "AURA_IDLE_TIMEOUT=-1m"), "AURA_IDLE_TIMEOUT"},
		{"idle timeout absurd", append(base, "AURA_IDLE_TIMEOUT=2h"), "AURA_IDLE_TIMEOUT"},
		{"shutdown timeout negative", append(base, "SHUTDOWN_TIMEOUT=-5s"), "SHUTDOWN_TIMEOUT"},
		{"shutdown timeout absurd", append(base, "SHUTDOWN_TIMEOUT=48h"), "SHUTDOWN_TIMEOUT"},
		{"listen port negative", append(base, "LISTEN_ADDR=:-1"), "LISTEN_ADDR"},

		// The settings added for answers, models, files, voice and the browser.
		{"answer cap below 1000", append(base, "MAX_ANSWER_CHARS=999"), "MAX_ANSWER_CHARS"},
		{"answer cap negative", append(base, "MAX_ANSWER_CHARS=-1"), "MAX_ANSWER_CHARS"},
		{"answer cap absurd", append(base, "MAX_ANSWER_CHARS=5000000"), "MAX_ANSWER_CHARS"},
		{"context tokens zero", append(base, "AURA_CONTEXT_TOKENS=0"), "AURA_CONTEXT_TOKENS"},
		{"context tokens negative", append(base, "AURA_CONTEXT_TOKENS=-1"), "AURA_CONTEXT_TOKENS"},
		{"context tokens tiny", append(base, "AURA_CONTEXT_TOKENS=100"), "AURA_CONTEXT_TOKENS"},
		{"context tokens absurd", append(base, "AURA_CONTEXT_TOKENS=50000000"), "AURA_CONTEXT_TOKENS"},
		{"context tokens not above output tokens", append(base, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_CONTEXT_TOKENS=4096", "AURA_MAX_OUTPUT_TOKENS=4096"), "AURA_CONTEXT_TOKENS"},
		{"models with an empty entry", append(base, "AURA_MODELS=a,,b"), "AURA_MODELS"},
		{"models with a trailing comma", append(base, "AURA_MODELS=a,b,"), "AURA_MODELS"},
		{"models with a name but no id", append(base, "AURA_MODELS=a, =Name"), "AURA_MODELS"},
		{"models with a duplicate", append(base, "AURA_MODELS=a=First,b, a=Again"), "AURA_MODELS"},
		{"models with a space in an id", append(base, "AURA_MODELS=llama 3"), "AURA_MODELS"},
		{"models with a control character", append(base, "AURA_MODELS=a=Name\x01"), "AURA_MODELS"},
		{"model not among the models", append(base, "AURA_MODELS=a,b", "AURA_MODEL=c"), "AURA_MODEL"},
		{"tokens per message negative", append(base, "AURA_TOKENS_PER_MESSAGE=-1"), "AURA_TOKENS_PER_MESSAGE"},
		{"tokens per message absurd", append(base, "AURA_TOKENS_PER_MESSAGE=1000"), "AURA_TOKENS_PER_MESSAGE"},
		{"tokens per message not a number", append(base, "AURA_TOKENS_PER_MESSAGE=five"), "AURA_TOKENS_PER_MESSAGE"},
		{"image tokens negative", append(base, "AURA_IMAGE_TOKENS=-1"), "AURA_IMAGE_TOKENS"},
		{"image tokens absurd", append(base, "AURA_IMAGE_TOKENS=500000"), "AURA_IMAGE_TOKENS"},
		{"transcribe url scheme", append(base, "TRANSCRIBE_URL=ftp://stt.example.com"), "TRANSCRIBE_URL"},
		{"transcribe url with a query", append(base, "TRANSCRIBE_URL=https://stt.example.com/?k=1"), "TRANSCRIBE_URL"},
		{"transcribe url without a host", append(base, "TRANSCRIBE_URL=stt.example.com"), "TRANSCRIBE_URL"},
		{"transcribe key with a line break inside", append(base, "TRANSCRIBE_KEY=sk-1\nsk-2"), "TRANSCRIBE_KEY"},
		{"transcribe model with a control character", append(base, "TRANSCRIBE_MODEL=whisper\x00"), "TRANSCRIBE_MODEL"},
		{"file limit zero", append(base, "MAX_FILE_BYTES=0"), "MAX_FILE_BYTES"},
		{"file limit below 1 KiB", append(base, "MAX_FILE_BYTES=1023"), "MAX_FILE_BYTES"},
		{"file limit negative", append(base, "MAX_FILE_BYTES=-1"), "MAX_FILE_BYTES"},
		{"file limit past Telegram's", append(base, "MAX_FILE_BYTES=20971521"), "MAX_FILE_BYTES"},
		{"browser missing", append(base, "AURA_BROWSER=/nonexistent/chromium"), "AURA_BROWSER"},
		{"browser a folder", append(base, "AURA_BROWSER=/"), "AURA_BROWSER"},
		{"browser not executable", append(base, "AURA_BROWSER="+mustAbs("config.example.env")), "AURA_BROWSER"},
		{"browser not on PATH", append(base, "AURA_BROWSER=no-such-browser-aurabot"), "AURA_BROWSER"},
		{"browser refresh too often", append(base, "AURA_BROWSER_REFRESH=10s"), "AURA_BROWSER_REFRESH"},
		{"browser refresh absurd", append(base, "AURA_BROWSER_REFRESH=48h"), "AURA_BROWSER_REFRESH"},
		{"browser refresh negative", append(base, "AURA_BROWSER_REFRESH=-1m"), "AURA_BROWSER_REFRESH"},
		{"browser timeout zero", append(base, "AURA_BROWSER_TIMEOUT=0s"), "AURA_BROWSER_TIMEOUT"},
		{"browser timeout negative", append(base, "AURA_BROWSER_TIMEOUT=-30s"), "AURA_BROWSER_TIMEOUT"},
		{"image tokens past int32", append(base, "AURA_IMAGE_TOKENS=9999999999"), "AURA_IMAGE_TOKENS"},
		{"browser timeout absurd", append(base, "AURA_BROWSER_TIMEOUT=1h"), "AURA_BROWSER_TIMEOUT"},

		// The settings added to lock the bot down.
		{"local files folder missing", append(base, "TELEGRAM_LOCAL_FILES=/nonexistent/telegram-bot-api"), "TELEGRAM_LOCAL_FILES"},
		{"local files a file", append(base, "TELEGRAM_LOCAL_FILES="+mustAbs("config.example.env")), "TELEGRAM_LOCAL_FILES"},
		{"metrics token short", append(base, "METRICS_TOKEN=short"), "METRICS_TOKEN"},
		{"metrics token with a space", append(base, "METRICS_TOKEN=0123456789abcdef 0123"), "METRICS_TOKEN"},
		{"metrics token with a line break", append(base, "METRICS_TOKEN=0123456789abcdef\n0123"), "METRICS_TOKEN"},
		{"messages a minute negative", append(base, "USER_MESSAGES_PER_MINUTE=-1"), "USER_MESSAGES_PER_MINUTE"},
		{"messages a minute absurd", append(base, "USER_MESSAGES_PER_MINUTE=100000"), "USER_MESSAGES_PER_MINUTE"},
		{"messages a minute a word", append(base, "USER_MESSAGES_PER_MINUTE=many"), "USER_MESSAGES_PER_MINUTE"},

		// Summaries and caps.
		{"summaries neither on nor off", append(base, "SUMMARIES=yes"), "SUMMARIES"},
		{"daily cap negative", append(base, "USER_DAILY_TOKENS=-1"), "USER_DAILY_TOKENS"},
		{"daily cap absurd", append(base, "USER_DAILY_TOKENS=99999999999999"), "USER_DAILY_TOKENS"},
		{"daily cap a word", append(base, "USER_DAILY_TOKENS=lots"), "USER_DAILY_TOKENS"},
		{"monthly cap negative", append(base, "USER_MONTHLY_TOKENS=-5"), "USER_MONTHLY_TOKENS"},
		{"monthly cap below the daily one", append(base, "USER_DAILY_TOKENS=50000", "USER_MONTHLY_TOKENS=10000"), "USER_MONTHLY_TOKENS"},
	}
	// Secrets set alongside, which no error may quote; the row's own values come after and win.
	secrets := []string{"AURA_KEY=" + secretKey, "AURA_COOKIES=" + secretCookie, "TRANSCRIBE_KEY=" + secretTranscribe}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(append(secrets[:len(secrets):len(secrets)], tt.env...), filepath.Join(t.TempDir(), "none.env"))
			if err == nil {
				t.Fatalf("got no error, want one naming %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q, want it to name %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("got a multi-line error %q, want one line", err)
			}
			for _, s := range []string{secretKey, secretCookie, secretTranscribe} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("got %q, want it without %s", err, s)
				}
			}
		})
	}
}

func TestConfigDefaultsDotenvAndEnvironment(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	content := "# comment\nTELEGRAM_TOKEN=111:fromfile\nexport AURA_MODEL=\"from file\"\nALLOWED_USERS=1, 2 ,3\n" +
		"SYSTEM_PROMPT='Be brief.' \nAURA_KEY=abc # trailing comment\n" +
		"AURA_COOKIES=\"a=1; b=2\" # a quoted value, then a comment\n" +
		"AURA_USER_AGENT='Agent #7' # single quotes, then a comment\r\n" +
		"AURA_MODEL_NAME=\"Line one\\nline two\"\n"
	if err := os.WriteFile(dotenv, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=222:fromenv", "AURA_TEMPERATURE=1.5"}, dotenv)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"environment wins", cfg.Bot.Telegram.Token, "222:fromenv"},
		{"quoted value", cfg.Aura.Model, "from file"},
		{"single quotes", cfg.Bot.Conversation.DefaultPrompt, "Be brief."},
		{"comment stripped", cfg.Aura.Key, "abc"},
		{"double quotes then a comment", cfg.Aura.Cookies, "a=1; b=2"},
		{"single quotes then a comment", cfg.Aura.UserAgent, "Agent #7"},
		{"escaped newline in double quotes", cfg.Aura.ModelName, "Line one\nline two"},
		{"id list", len(cfg.Bot.Conversation.AllowedUsers.IDs), 3},
		{"temperature", cfg.Aura.Temperature, 1.5},
		{"default url", cfg.Aura.BaseURL, "https://openchat.team"},
		{"default max length", cfg.Bot.Conversation.Budget.Chars, 24576},
		{"default max tokens", cfg.Aura.TokenLimit, 8192},
		{"default database", cfg.DatabasePath, "data/bot.db"},
		{"default telegram", cfg.Bot.Telegram.APIURL, "https://api.telegram.org"},
		{"default listen address", cfg.listenAddr(), "127.0.0.1:8080"},
		{"default listener on loopback only", isLoopback(cfg.listenAddr()), true},
		{"no local files by default", cfg.Bot.Telegram.LocalFiles, ""},
		{"no metrics token by default", cfg.Bot.MetricsToken, ""},
		{"no rate by default", cfg.Bot.Conversation.UserMessagesPerMinute, 0},
		{"default log format", cfg.LogFormat, "text"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	off, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "LISTEN_ADDR="}, dotenv)
	if err != nil || off.listenAddr() != "" {
		t.Errorf("LISTEN_ADDR=: got %q, %v, want the listener off", off.listenAddr(), err)
	}
	hook, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "WEBHOOK_URL=https://bot.example.com/tg/hook", "WEBHOOK_SECRET=Ab_9-z"}, dotenv)
	if err != nil || hook.Bot.WebhookSecret != "Ab_9-z" {
		t.Errorf("webhook config: got %v, want it accepted", err)
	}
	star, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "ALLOWED_USERS=*"}, dotenv)
	if err != nil || !star.Bot.Conversation.AllowedUsers.All {
		t.Errorf("ALLOWED_USERS=*: got all=%v err=%v, want all=true", star.Bot.Conversation.AllowedUsers.All, err)
	}
}

// isLoopback reports whether addr listens on a loopback address only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// The lock-down settings, set: read and passed on as given.
func TestConfigLockDownSettings(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "TELEGRAM_LOCAL_FILES=" + dir, "METRICS_TOKEN=0123456789abcdef0123",
		"USER_MESSAGES_PER_MINUTE=6", "LISTEN_ADDR=0.0.0.0:8080"}, filepath.Join(dir, "none.env"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bot.Telegram.LocalFiles != dir || cfg.Bot.MetricsToken != "0123456789abcdef0123" || cfg.Bot.Conversation.UserMessagesPerMinute != 6 || cfg.listenAddr() != "0.0.0.0:8080" {
		t.Errorf("got %+v", cfg)
	}
}

// SUMMARIES is on unless set off; the caps are read as given, and none is the default.
func TestConfigSummariesAndCaps(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		env        []string
		summaries  bool
		day, month int64
	}{
		{nil, true, 0, 0},
		{[]string{"SUMMARIES=off"}, false, 0, 0},
		{[]string{"SUMMARIES= On "}, true, 0, 0},
		{[]string{"USER_DAILY_TOKENS=50000", "USER_MONTHLY_TOKENS=1000000"}, true, 50000, 1000000},
		{[]string{"USER_MONTHLY_TOKENS=1000", "USER_DAILY_TOKENS="}, true, 0, 1000},
	} {
		cfg, err := loadConfig(append([]string{"TELEGRAM_TOKEN=1:x"}, tt.env...), filepath.Join(dir, "none.env"))
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		conv := cfg.Bot.Conversation
		if bool(conv.Summaries) != tt.summaries || conv.UserDailyTokens != tt.day || conv.UserMonthlyTokens != tt.month {
			t.Errorf("%v: got summaries %v, caps %d / %d; want %v, %d / %d", tt.env, conv.Summaries, conv.UserDailyTokens, conv.UserMonthlyTokens, tt.summaries, tt.day, tt.month)
		}
	}
}

// The example file, as a new user copies it, loads once the token is filled in.
func TestConfigExampleLoads(t *testing.T) {
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x"}, "config.example.env")
	if err != nil {
		t.Fatalf("config.example.env: %v", err)
	}
	if cfg.Aura.Protocol != "chatbot-ui" || cfg.Bot.Reply.StreamMode != "edit" || cfg.Aura.MaxOutputTokens != 0 ||
		cfg.Bot.Reply.MaxAnswerChars != 65536 || cfg.ContextTokens != 0 || len(cfg.Bot.Conversation.Models) != 0 ||
		cfg.Transcribe.Model != "whisper-1" || cfg.Bot.Conversation.MaxFileBytes != 524288 || cfg.Browser.Browser != "" ||
		!cfg.Bot.Conversation.Summaries || cfg.Bot.Conversation.UserDailyTokens != 0 || cfg.Bot.Conversation.UserMonthlyTokens != 0 ||
		cfg.Bot.Reply.Thinking != "on" {
		t.Errorf("got %+v, want the documented defaults", cfg)
	}
}

// Every setting has a line in config.example.env and a row in the README's table.
func TestConfigDocumented(t *testing.T) {
	example, err := os.ReadFile("config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	params, err := env.GetFieldParams(&config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		name := p.Key
		if !strings.Contains("\n"+string(example), "\n"+name+"=") {
			t.Errorf("%s has no line in config.example.env", name)
		}
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("%s has no row in the README's table", name)
		}
	}
}

func TestConfigDefaultModelName(t *testing.T) {
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x"}, filepath.Join(t.TempDir(), "none.env"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Aura.ModelName != "OpenChat 3.6 (latest)" {
		t.Errorf("AURA_MODEL_NAME: got %q, want the default", cfg.Aura.ModelName)
	}
}

// A .env file godotenv cannot read stops the bot with one line that says where, and never
// quotes the file: it holds the token.
func TestConfigMalformedDotenv(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"bad character in a name", "# ok\nAURA_MODEL=x\nTELEGRAM-TOKEN=123:s3cr3t-token\nB=2\n", "line 3"},
		{"quote not closed", "A=1\nTELEGRAM_TOKEN=\"123:s3cr3t-token\nB=2\n", "line 2"},
		{"quote not closed after a multi-line value", "A=\"x\ny\"\nTELEGRAM_TOKEN='123:s3cr3t-token\n", "line 3"},
		{"no name", "A=1\n=123:s3cr3t-token", "no variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dotenv := filepath.Join(t.TempDir(), ".env")
			if err := os.WriteFile(dotenv, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(nil, dotenv)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			msg := err.Error()
			if !strings.Contains(msg, dotenv) || !strings.Contains(msg, tt.want) {
				t.Errorf("got %q, want it to name the file and %q", msg, tt.want)
			}
			if strings.Contains(msg, "s3cr3t") || strings.Contains(msg, "\n") {
				t.Errorf("got %q, want one line without the file's contents", msg)
			}
		})
	}
}

func mustAbs(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return abs
}

// A token pasted with a line break or a tab around it works.
func TestConfigTrimsPastedSecrets(t *testing.T) {
	for _, raw := range []string{"123:abc\n", "\t123:abc", " 123:abc \r\n"} {
		cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=" + raw, "AURA_KEY= sk-1\n"}, filepath.Join(t.TempDir(), "none.env"))
		if err != nil {
			t.Errorf("TELEGRAM_TOKEN=%q: got %v, want it accepted", raw, err)
			continue
		}
		if cfg.Bot.Telegram.Token != "123:abc" || cfg.Aura.Key != "sk-1" {
			t.Errorf("TELEGRAM_TOKEN=%q: got %q and AURA_KEY %q, want them trimmed", raw, cfg.Bot.Telegram.Token, cfg.Aura.Key)
		}
	}
}

// The secrets the config errors must never contain.
const (
	secretToken  = "SECRETtok3n"
	secretKey    = "sk-SECRETkey"
	secretCookie = "SECRETcookie"
	secretPass   = "hunter2SECRET"
	secretUser   = "userSECRET"

	secretTranscribe = "SECRETtranscribe"
)

// A config error never contains a secret: the token, a key, the cookies, nor a URL's user or
// password, whichever setting is wrong.
func TestConfigErrorsKeepSecrets(t *testing.T) {
	secrets := []string{"AURA_KEY=" + secretKey, "AURA_COOKIES=cf=" + secretCookie, "TRANSCRIBE_KEY=" + secretTranscribe}
	good := append([]string{"TELEGRAM_TOKEN=123:" + secretToken}, secrets...)
	userinfo := secretUser + ":" + secretPass + "@"
	tests := []struct {
		name string
		env  []string
	}{
		{"token with a space", append([]string{"TELEGRAM_TOKEN=123:" + secretToken + " x"}, secrets...)},
		{"token with a line break", append([]string{"TELEGRAM_TOKEN=123:" + secretToken + "\n" + secretToken}, secrets...)},
		{"token without a colon", append([]string{"TELEGRAM_TOKEN=" + secretToken}, secrets...)},
		{"token with a bad character", append([]string{"TELEGRAM_TOKEN=123:" + secretToken + "/"}, secrets...)},
		{"key with a line break", append(good, "AURA_KEY="+secretKey+"\n"+secretKey)},
		{"cookies with a line break", append(good, "AURA_COOKIES="+secretCookie+"\n"+secretCookie)},
		{"aura url with a query", append(good, "AURA_URL=https://"+userinfo+"models.example.com/?key="+secretKey)},
		{"aura url that does not parse", append(good, "AURA_URL=https://"+userinfo+"models.example.com:port/")},
		{"aura url with a bad scheme", append(good, "AURA_URL=ftp://"+userinfo+"models.example.com/")},
		{"aura url with a ? in the password", append(good, "AURA_URL=ftp://"+secretUser+":a?"+secretPass+"@models.example.com/")},
		{"aura url without a scheme", append(good, "AURA_URL="+userinfo+"models.example.com")},
		{"telegram url with a fragment", append(good, "TELEGRAM_API_URL=https://"+userinfo+"api.example.com#"+secretPass)},
		{"telegram url with the token in its path", append(good, "TELEGRAM_API_URL=https://api.example.com/bot123:"+secretToken+"?x")},
		{"transcribe key with a line break", append(good, "TRANSCRIBE_KEY="+secretTranscribe+"\n"+secretTranscribe)},
		{"transcribe url with a query", append(good, "TRANSCRIBE_URL=https://"+userinfo+"stt.example.com/?key="+secretTranscribe)},
		{"transcribe url that does not parse", append(good, "TRANSCRIBE_URL=https://"+userinfo+"stt.example.com:port/")},
		{"proxy with a bad scheme", append(good, "AURA_PROXY=ftp://"+userinfo+"proxy:21")},
		{"proxy that does not parse", append(good, "AURA_PROXY=http://"+userinfo+"proxy:port")},
		{"webhook over http", append(good, "WEBHOOK_URL=http://"+userinfo+"bot.example.com/tg", "WEBHOOK_SECRET=s3cret")},
		{"webhook with an unclean path", append(good, "WEBHOOK_URL=https://"+userinfo+"bot.example.com//tg", "WEBHOOK_SECRET=s3cret")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env, filepath.Join(t.TempDir(), "none.env"))
			if err == nil {
				t.Fatal("got no error, want one")
			}
			for _, s := range []string{secretToken, secretKey, secretCookie, secretTranscribe, secretPass, secretUser} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it without %s", err, s)
				}
			}
		})
	}
}

// FuzzConfigURL puts arbitrary text around a user and password in each URL setting: the error,
// if any, is one line without the password, and a WEBHOOK_URL that is accepted is one the
// bot's listener can serve (registering its path does not panic).
func FuzzConfigURL(f *testing.F) {
	for _, seed := range [][2]string{
		{"https", "bot.example.com/tg"}, {"https", "example.invalid//hook"}, {"https", "x/a/../hook"},
		{"http", "x/%zz"}, {"https", "x/{id}"}, {"https", "x/a b"}, {"https", "x/tg?q#f"}, {"", "@@"},
	} {
		f.Add(seed[0], seed[1])
	}
	dotenv := filepath.Join(f.TempDir(), "none.env")
	f.Fuzz(func(t *testing.T, scheme, rest string) {
		if strings.Contains(scheme+rest, secretPass) {
			t.Skip()
		}
		raw := scheme + "://" + secretUser + ":" + secretPass + "@" + rest
		for _, name := range []string{"AURA_URL", "TELEGRAM_API_URL", "AURA_PROXY", "TRANSCRIBE_URL", "WEBHOOK_URL"} {
			cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "WEBHOOK_SECRET=s", name + "=" + raw}, dotenv)
			if err != nil {
				if msg := err.Error(); strings.Contains(msg, secretPass) || strings.Contains(msg, "\n") {
					t.Fatalf("%s=%q: got %q, want one line without the password", name, raw, msg)
				}
				continue
			}
			if name == "WEBHOOK_URL" {
				serveWebhook(t, cfg.Bot.WebhookURL)
			}
		}
	})
}

// serveWebhook registers the routes the bot's listener registers for a webhook URL, and fails
// the test if the mux refuses them.
func serveWebhook(t *testing.T, webhookURL string) {
	t.Helper()
	p, err := intake.WebhookPath(webhookURL)
	if err != nil {
		t.Fatalf("WEBHOOK_URL=%q accepted, but intake.WebhookPath says %v", webhookURL, err)
	}
	if p == "/" {
		p = "/{$}"
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("WEBHOOK_URL=%q accepted, but the mux panics on its path %q: %v", webhookURL, p, r)
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", http.NotFound)
	mux.HandleFunc("GET /metrics", http.NotFound)
	mux.HandleFunc("POST "+p, http.NotFound)
}

func TestWebhookSecretPattern(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "A-z_0": true, strings.Repeat("x", 256): true,
		"": false, strings.Repeat("x", 257): false, "a b": false, "é": false, "a/b": false} {
		if got := webhookSecretPattern.MatchString(s); got != want {
			t.Errorf("WEBHOOK_SECRET=%q: got valid %v, want %v", s, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"https://models.example.com/v1", "https://models.example.com/v1"},
		{"https://user:pw@models.example.com/v1", "https://xxxxx@models.example.com/v1"},
		{"https://user:p@ss@models.example.com", "https://xxxxx@models.example.com"},
		{"https://user:a?b#c@models.example.com", "https://xxxxx@models.example.com"},
		{"user:pw@models.example.com", "xxxxx@models.example.com"},
		{"https://models.example.com/?key=sk-1", "https://models.example.com/"},
		{"https://models.example.com/#frag", "https://models.example.com/"},
		{"http://%zz", "http://%zz"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.raw); got != tt.want {
			t.Errorf("redactURL(%q): got %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestConfigNewSettings(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.env")
	load := func(t *testing.T, env ...string) config {
		t.Helper()
		cfg, err := loadConfig(append([]string{"TELEGRAM_TOKEN=1:x"}, env...), none)
		if err != nil {
			t.Fatalf("%q: got %v, want it accepted", env, err)
		}
		return cfg
	}
	browser := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	def := load(t)
	chatbot := load(t, "AURA_MAX_TOKENS=4096", "AURA_MODELS=openchat_3.6, openchat_v3.2_mistral=OpenChat 3.5")
	openai := load(t, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_CONTEXT_TOKENS=8192", "AURA_MAX_OUTPUT_TOKENS=1024")
	unbounded := load(t, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_MAX_OUTPUT_TOKENS=1024")
	listed := load(t, "AURA_PROTOCOL=openai", "AURA_MODELS= llama3.1:8b=Llama 3.1 8B , qwen2.5:7b,mistral=Mistral = 7B")
	chosen := load(t, "AURA_PROTOCOL=openai", "AURA_MODELS=llama3.1:8b,qwen2.5:7b=Qwen", "AURA_MODEL=qwen2.5:7b")
	set := load(t, "MAX_ANSWER_CHARS=1000", "AURA_IMAGE_TOKENS=0", "TRANSCRIBE_URL=http://127.0.0.1:9000/v1",
		"TRANSCRIBE_MODEL=large-v3", "TRANSCRIBE_KEY= tk-1\n", "MAX_FILE_BYTES=20971520", "AURA_BROWSER="+browser,
		"AURA_BROWSER_REFRESH=1m", "AURA_BROWSER_TIMEOUT=10m")
	checks := []struct {
		name      string
		got, want any
	}{
		{"default answer cap", def.Bot.Reply.MaxAnswerChars, 65536},
		{"default image tokens", def.Bot.Conversation.Budget.ImageTokens, 800},
		{"default transcribe url", def.Transcribe.URL, ""},
		{"default transcribe model", def.Transcribe.Model, "whisper-1"},
		{"default file limit", def.Bot.Conversation.MaxFileBytes, 524288},
		{"default browser", def.Browser.Browser, ""},
		{"default browser refresh", def.Browser.Refresh, 30 * time.Minute},
		{"default browser timeout", def.Browser.Timeout, 30 * time.Second},
		{"default model", def.defaultModel(), conversation.ModelChoice{ID: "openchat_3.6", Name: "OpenChat 3.6 (latest)"}},
		{"default token window (chatbot-ui: tokenLimit less 1000)", def.tokenWindow(), 7192},
		{"chatbot-ui token window", chatbot.tokenWindow(), 3096},
		{"chatbot-ui models", fmt.Sprint(chatbot.Bot.Conversation.Models), "[{openchat_3.6 } {openchat_v3.2_mistral OpenChat 3.5}]"},
		{"chatbot-ui default model", chatbot.defaultModel(), conversation.ModelChoice{ID: "openchat_3.6"}},
		{"openai token window (context less output)", openai.tokenWindow(), 7168},
		{"openai without context tokens: no bound", unbounded.tokenWindow(), 0},
		{"openai tokens per message by default", openai.Bot.Conversation.Budget.PerMessage, 8},
		{"chatbot-ui counts no tokens per message", def.Bot.Conversation.Budget.PerMessage, 0},
		{"tokens per message set", load(t, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_TOKENS_PER_MESSAGE=5").Bot.Conversation.Budget.PerMessage, 5},
		{"tokens per message zero", load(t, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_TOKENS_PER_MESSAGE=0").Bot.Conversation.Budget.PerMessage, 0},
		{"openai models", fmt.Sprint(listed.Bot.Conversation.Models), "[{llama3.1:8b Llama 3.1 8B} {qwen2.5:7b } {mistral Mistral = 7B}]"},
		{"first model by default", listed.defaultModel(), conversation.ModelChoice{ID: "llama3.1:8b", Name: "Llama 3.1 8B"}},
		{"AURA_MODEL picks among them", chosen.defaultModel(), conversation.ModelChoice{ID: "qwen2.5:7b", Name: "Qwen"}},
		{"answer cap", set.Bot.Reply.MaxAnswerChars, 1000},
		{"image tokens", set.Bot.Conversation.Budget.ImageTokens, 0},
		{"transcribe url", set.Transcribe.URL, "http://127.0.0.1:9000/v1"},
		{"transcribe model", set.Transcribe.Model, "large-v3"},
		{"transcribe key trimmed", set.Transcribe.Key, "tk-1"},
		{"file limit", set.Bot.Conversation.MaxFileBytes, 20 << 20},
		{"browser path", set.Browser.Browser, browser},
		{"browser refresh", set.Browser.Refresh, time.Minute},
		{"browser timeout", set.Browser.Timeout, 10 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := load(t, "AURA_BROWSER=auto").Browser.Browser; got != "auto" {
		t.Errorf("AURA_BROWSER=auto: got %q", got)
	}
	load(t, "AURA_BROWSER=sh") // a command on PATH
	if got := load(t, "AURA_CONTEXT_TOKENS=").tokenWindow(); got != 7192 {
		t.Errorf("AURA_CONTEXT_TOKENS set empty: got window %d, want the default's", got)
	}
	if got := load(t, "AURA_CONTEXT_TOKENS=4096").ignored(); !slices.Contains(got, "AURA_CONTEXT_TOKENS") {
		t.Errorf("AURA_CONTEXT_TOKENS with chatbot-ui: ignored() = %q, want it listed", got)
	}
	if got := load(t, "AURA_TOKENS_PER_MESSAGE=5").ignored(); !slices.Contains(got, "AURA_TOKENS_PER_MESSAGE") {
		t.Errorf("AURA_TOKENS_PER_MESSAGE with chatbot-ui: ignored() = %q, want it listed", got)
	}
	// The prompt's half counts the template's overhead: a SYSTEM_PROMPT that fits half of a
	// 512-token window without it is refused with it.
	prompt := "SYSTEM_PROMPT=" + strings.Repeat("word ", (512-8)/2-8+1)
	if _, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x", "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_CONTEXT_TOKENS=512", prompt}, none); err == nil || !strings.Contains(err.Error(), "SYSTEM_PROMPT") {
		t.Errorf("a prompt over half the window with its overhead: got %v, want SYSTEM_PROMPT refused", err)
	}
	load(t, "AURA_PROTOCOL=openai", "AURA_MODEL=m", "AURA_CONTEXT_TOKENS=512", "AURA_TOKENS_PER_MESSAGE=0", prompt)
	if got := load(t, "AURA_CONTEXT_TOKENS=", "AURA_MAX_OUTPUT_TOKENS=").ignored(); len(got) != 0 {
		t.Errorf("AURA_CONTEXT_TOKENS and AURA_MAX_OUTPUT_TOKENS set empty: ignored() = %q, want none", got)
	}
}

// With AURA_MODELS and no AURA_MODEL, the server is asked for the first of the models.
func TestModelsFirstIsTheDefault(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("Hi.")
	h.start("AURA_PROTOCOL=openai", "AURA_MODELS=qwen2.5:7b=Qwen 2.5,llama3.1:8b")
	h.replyTo(h.send("hello"))
	h.stop()
	if got := h.aura.requests()[0].Model.ID; got != "qwen2.5:7b" {
		t.Errorf("model asked for: got %q, want the first of AURA_MODELS", got)
	}
}

// FuzzModelList parses arbitrary AURA_MODELS: an accepted list has non-empty, unique ids
// without spaces, and reads back the same from its own id=name form; a refusal is one line.
func FuzzModelList(f *testing.F) {
	for _, seed := range []string{"", "a", "a,b", "a=A,b=B", " a = A , b ", "a,,b", "a,a", "=x", "a b", "a=b=c", "a=\x00", "é=ü,😀"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var l conversation.ModelList
		if err := l.UnmarshalText([]byte(s)); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: got a multi-line error %q", s, err)
			}
			return
		}
		seen := map[string]bool{}
		var back []string
		for _, m := range l {
			if m.ID == "" || seen[m.ID] || strings.ContainsFunc(m.ID, unicode.IsSpace) || strings.ContainsAny(m.ID, ",=") {
				t.Fatalf("%q: got id %q in %q", s, m.ID, l)
			}
			seen[m.ID] = true
			back = append(back, m.ID+"="+m.Name)
		}
		var again conversation.ModelList
		if err := again.UnmarshalText([]byte(strings.Join(back, ","))); err != nil || !slices.Equal(again, l) {
			t.Fatalf("%q: got %q, read back as %q, %v", s, l, again, err)
		}
	})
}

// FuzzDotenv reads arbitrary .env files: a refusal is one line that names the file and says what
// is wrong in fixed words, never quoting the file (which holds the token).
func FuzzDotenv(f *testing.F) {
	for _, seed := range []string{
		"A=1\n", "A=\"x\" # c\n", "A='x\n", "A=\"x\ny\"\nB=\"z\n", "A-B=1\n", "=1", "export A=1", "A: 1\r\nB=2",
		"# only a comment", "A=${B}\n", "A=\"\\\"\"\n", "\x00=\x00",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	refusal := regexp.MustCompile(`^( line \d+)?: (a quoted value is not closed|not KEY=VALUE \(a name is letters, digits, _ and \.\)|not KEY=VALUE lines|a line has no variable name \(want KEY=VALUE\))$`)
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, ".env")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readDotenv(path)
		if err == nil {
			return
		}
		msg, ok := strings.CutPrefix(err.Error(), path)
		if !ok || !refusal.MatchString(msg) {
			t.Fatalf("content %q: got %q, want the file and a fixed reason", content, err)
		}
	})
}

// The Dockerfile copies the sources one by one (never a .env): every Go file of package main
// must be among them, or the image does not build.
func TestDockerfileCopiesTheSources(t *testing.T) {
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	copied := map[string]bool{}
	for line := range strings.Lines(string(dockerfile)) {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--") {
			for _, src := range f[1 : len(f)-1] {
				copied[src] = true
			}
		}
	}
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range sources {
		if !strings.HasSuffix(src, "_test.go") && !copied[src] {
			t.Errorf("the Dockerfile does not copy %s", src)
		}
	}
	// And every folder of packages the binary is built from.
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		hasGo := false
		_ = filepath.WalkDir(e.Name(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				hasGo = true
			}
			return nil
		})
		if hasGo && !copied[e.Name()] {
			t.Errorf("the Dockerfile does not copy the folder %s", e.Name())
		}
	}
}
