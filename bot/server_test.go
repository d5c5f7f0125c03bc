package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

const (
	hookURL    = "https://bot.example.com/tg/hook"
	hookSecret = "s3cret_Token-42"
)

// newWebhookEnv runs a bot in webhook mode on a loopback port; updates are posted with hook.
func newWebhookEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.WebhookURL = hookURL
	cfg.WebhookSecret = hookSecret
	return newEnv(t, cfg)
}

// url is the address of path on the bot's HTTP listener.
func (e *env) url(path string) string { return "http://" + e.bot.Addr() + path }

// hook posts body to the webhook with the secret header (none when secret is "") and returns
// the status code.
func (e *env) hook(secret string, body []byte) int {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url("/tg/hook"), bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// update encodes a private text message from user as a webhook body.
func (e *env) update(updateID int64, text string) (body []byte, msgID int) {
	e.t.Helper()
	msgID = e.tg.NewMessageID(user)
	body, err := json.Marshal(models.Update{ID: updateID, Message: &models.Message{
		ID: msgID, Date: int(time.Now().Unix()), Text: text,
		Chat: models.Chat{ID: user, Type: models.ChatTypePrivate},
		From: &models.User{ID: user, FirstName: "Ann"},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return body, msgID
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get(e.url(path))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestWebhook(t *testing.T) {
	e := newWebhookEnv(t, Config{})
	set := e.tg.Calls("setWebhook")
	if len(set) != 1 || e.tg.Webhook() != hookURL {
		t.Fatalf("setWebhook: got %d calls, webhook %q, want 1 call for %q", len(set), e.tg.Webhook(), hookURL)
	}
	if got := set[0].Params["secret_token"]; got != hookSecret {
		t.Errorf("secret_token: got %q, want %q", got, hookSecret)
	}
	if got := set[0].Params["allowed_updates"]; got != `["message","callback_query","stopped_message_generation"]` {
		t.Errorf("allowed_updates: got %s, want the types in allowedUpdates", got)
	}

	// Refused: no secret, a wrong one, one that only starts right. Nothing is stored or answered.
	for _, secret := range []string{"", "wrong", hookSecret[:5], hookSecret + "x"} {
		body, _ := e.update(1, "sneaky")
		if code := e.hook(secret, body); code != http.StatusUnauthorized {
			t.Errorf("secret %q: got %d, want 401", secret, code)
		}
	}
	if pending, err := e.store.Inbox().Pending(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("inbox after refused requests: got %d entries, %v, want none", len(pending), err)
	}

	// Too big: 413, before the secret would matter for the body.
	big := append([]byte(`{"update_id":2,"message":{"text":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	big = append(big, `"}}`...)
	if code := e.hook(hookSecret, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB body: got %d, want 413", code)
	}

	// Accepted: answered 200, and the message gets its reply.
	body, id := e.update(3, "hello by webhook")
	if code := e.hook(hookSecret, body); code != http.StatusOK {
		t.Fatalf("valid request: got %d, want 200", code)
	}
	if got := e.final(user, id); len(got) != 1 || got[0].Text != "ok" {
		t.Fatalf("reply: got %+v, want one message saying ok", got)
	}
	// Telegram sends it again (it did not see the 200): answered 200, not answered twice.
	if code := e.hook(hookSecret, body); code != http.StatusOK {
		t.Errorf("redelivered request: got %d, want 200", code)
	}
	body, id2 := e.update(4, "second")
	if code := e.hook(hookSecret, body); code != http.StatusOK {
		t.Fatalf("second request: got %d, want 200", code)
	}
	e.final(user, id2)
	e.answered(history.Key{ChatID: user}, 4)
	if n := len(e.model.requests()); n != 2 {
		t.Errorf("model requests: got %d, want 2 (none for refused or redelivered updates)", n)
	}
	for _, c := range e.model.requests() {
		if strings.Contains(lastUser(c), "sneaky") {
			t.Error("a refused update reached the model")
		}
	}

	if code, _ := e.get("/tg/hook"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on the webhook: got %d, want 405", code)
	}
	e.stop()
	if n := len(e.tg.Calls("deleteWebhook")); n != 0 || e.tg.Webhook() != hookURL {
		t.Errorf("after shutdown: got %d deleteWebhook calls, webhook %q, want it left set", n, e.tg.Webhook())
	}
	if n := len(e.tg.Calls("getUpdates")); n != 0 {
		t.Errorf("getUpdates calls in webhook mode: got %d, want 0", n)
	}
}

// A webhook update the bot cannot save is answered 500, so that Telegram sends it again.
func TestWebhookSaveFailureIs500(t *testing.T) {
	e := newWebhookEnv(t, Config{})
	body, id := e.update(1, "hi")
	if code := e.hook(hookSecret, body); code != http.StatusOK {
		t.Fatalf("first request: got %d, want 200", code)
	}
	e.final(user, id)
	e.answered(history.Key{ChatID: user}, 2)
	e.store.Close()
	body, _ = e.update(2, "lost?")
	if code := e.hook(hookSecret, body); code != http.StatusInternalServerError {
		t.Errorf("got %d, want 500", code)
	}
	if n := len(e.model.requests()); n != 1 {
		t.Errorf("model requests: got %d, want 1 (none for the unsaved update)", n)
	}
}

func TestHealth(t *testing.T) {
	// Every call writes (the default, a write every few seconds at most, has a test of its own).
	e := newEnv(t, Config{ListenAddr: "127.0.0.1:0", HealthDiskEvery: time.Nanosecond})
	if code, body := e.get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: got %d %q, want 200 ok", code, body)
	}
	// Once a reply is done the bot is polling and has nothing of the store's in flight.
	e.final(user, e.say(user, user, "hi"))
	e.answered(history.Key{ChatID: user}, 2)
	e.store.Close()
	code, body := e.get("/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "database: ") || strings.Count(body, "\n") != 1 {
		t.Fatalf("database closed: got %d %q, want 503 and one line naming the database", code, body)
	}
}

func TestMetricsAfterReplies(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, Config{ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var typing sync.Once
	e.tg.SetFaults(func(method string, _ map[string]string) *telegramtest.Fault {
		var f *telegramtest.Fault
		if method == "sendChatAction" {
			typing.Do(func() {
				f = &telegramtest.Fault{Code: 429, Description: "Too Many Requests: retry after 1", RetryAfter: 1}
			})
		}
		return f
	})
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "break" {
			yield("", fmt.Errorf("%w: 60s", aura.ErrIdleTimeout))
			return
		}
		// Typing shows until the first text: let its (refused) call come back first.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(scrape(e.bot), `aurabot_telegram_calls_total{method="sendChatAction",result="429"} 1`) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		yield("Top secret answer", nil)
	}
	id := e.say(user, user, "my private question")
	e.final(user, id)
	e.say(user, user, "break")
	var body string
	e.eventually(func() bool {
		_, body = e.get("/metrics")
		return strings.Contains(body, `aurabot_replies_failed_total{reason="model"} 1`)
	})
	want := []string{
		"aurabot_replies_started_total 2",
		`aurabot_replies_finished_total{outcome="done"} 1`,
		`aurabot_replies_failed_total{reason="model"} 1`,
		`aurabot_aura_errors_total{kind="idle_timeout"} 1`,
		"aurabot_reply_duration_seconds_count 2",
		"aurabot_reply_first_text_seconds_count 1",
		`aurabot_telegram_calls_total{method="sendMessage",result="ok"}`,
		`aurabot_telegram_calls_total{method="sendChatAction",result="429"} 1`,
		`aurabot_telegram_calls_total{method="getMe",result="ok"} 1`,
		"aurabot_streams_in_flight 0",
		"aurabot_queue_length ",
		"go_goroutines ",
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics: missing %q in\n%s", w, body)
		}
	}
	if regexp.MustCompile(`="?` + strconv.Itoa(user) + `"`).MatchString(body) {
		t.Error("metrics: a label holds the chat id")
	}

	// One line per reply at info: no message text, no token.
	var replies []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "msg=reply ") {
			replies = append(replies, line)
		}
	}
	if len(replies) != 2 || !strings.Contains(replies[0], "outcome=done") || !strings.Contains(replies[0], "chars=17") ||
		!strings.Contains(replies[0], "chat_id=777") || !strings.Contains(replies[1], "outcome=model") {
		t.Errorf("reply log lines: got %q, want one per reply with its outcome and size", replies)
	}
	for _, secret := range []string{"private question", "Top secret", telegramtest.Token} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// scrape is what b's GET /metrics answers.
func scrape(b *Bot) string {
	rec := httptest.NewRecorder()
	b.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
