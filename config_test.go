package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.env, filepath.Join(t.TempDir(), "none.env"))
			if err == nil {
				t.Fatalf("got no error, want one naming %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %q, want it to name %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("got a multi-line error %q, want one line", err)
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
		{"environment wins", cfg.TelegramToken, "222:fromenv"},
		{"quoted value", cfg.AuraModel, "from file"},
		{"single quotes", cfg.SystemPrompt, "Be brief."},
		{"comment stripped", cfg.AuraKey, "abc"},
		{"double quotes then a comment", cfg.AuraCookies, "a=1; b=2"},
		{"single quotes then a comment", cfg.AuraUserAgent, "Agent #7"},
		{"escaped newline in double quotes", cfg.AuraModelName, "Line one\nline two"},
		{"id list", len(cfg.AllowedUsers.ids), 3},
		{"temperature", cfg.AuraTemperature, 1.5},
		{"default url", cfg.AuraURL, "https://openchat.team"},
		{"default max length", cfg.AuraMaxLength, 24576},
		{"default max tokens", cfg.AuraMaxTokens, 8192},
		{"default database", cfg.DatabasePath, "data/bot.db"},
		{"default telegram", cfg.TelegramAPIURL, "https://api.telegram.org"},
		{"default listen address", cfg.listenAddr(), ":8080"},
		{"default log format", cfg.LogFormat, "text"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	off, err := loadConfig([]string{"TELEGRAM_TOKEN=x", "LISTEN_ADDR="}, dotenv)
	if err != nil || off.listenAddr() != "" {
		t.Errorf("LISTEN_ADDR=: got %q, %v, want the listener off", off.listenAddr(), err)
	}
	hook, err := loadConfig([]string{"TELEGRAM_TOKEN=x", "WEBHOOK_URL=https://bot.example.com/tg/hook", "WEBHOOK_SECRET=Ab_9-z"}, dotenv)
	if err != nil || hook.WebhookSecret != "Ab_9-z" {
		t.Errorf("webhook config: got %v, want it accepted", err)
	}
	star, err := loadConfig([]string{"TELEGRAM_TOKEN=x", "ALLOWED_USERS=*"}, dotenv)
	if err != nil || !star.AllowedUsers.all {
		t.Errorf("ALLOWED_USERS=*: got all=%v err=%v, want all=true", star.AllowedUsers.all, err)
	}
}

// The example file, as a new user copies it, loads once the token is filled in.
func TestConfigExampleLoads(t *testing.T) {
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x"}, "config.example.env")
	if err != nil {
		t.Fatalf("config.example.env: %v", err)
	}
	if cfg.AuraProtocol != "chatbot-ui" || cfg.StreamMode != "edit" || cfg.AuraMaxOutputTokens != 0 {
		t.Errorf("got %+v, want the documented defaults", cfg)
	}
}

func TestConfigDefaultModelName(t *testing.T) {
	cfg, err := loadConfig([]string{"TELEGRAM_TOKEN=1:x"}, filepath.Join(t.TempDir(), "none.env"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuraModelName != "OpenChat 3.6 (latest)" {
		t.Errorf("AURA_MODEL_NAME: got %q, want the default", cfg.AuraModelName)
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
