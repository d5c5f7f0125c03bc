package bot

import (
	"cmp"
	"context"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	tgapi "aurabot/bot/tg"
	"aurabot/history"
)

var _ Store = (*history.Store)(nil)
var _ Model = (*aura.Client)(nil)

// fakeModel is a Model whose stream a test scripts.
type fakeModel struct {
	mu     sync.Mutex
	calls  [][]aura.Message
	models []string // the model each call asked for
	fn     func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool)
	// chunks, when set, is the stream instead of fn: thinking and answer as a reasoning
	// model's server sends them.
	chunks func(ctx context.Context, msgs []aura.Message, yield func(aura.Chunk, error) bool)
	list   func() ([]string, error) // Models; nil: none
	// usage, when set, is what the server says each request used, sent after the text.
	usage func(msgs []aura.Message) *aura.Usage
	// has is HasModel; nil: no model beyond the list.
	has func(model string) (bool, error)
	// caps is Capabilities; nil: nothing known (a server that does not say).
	caps func(model string) (aura.Capabilities, error)
}

func (f *fakeModel) Chat(ctx context.Context, model string, msgs []aura.Message) iter.Seq2[aura.Chunk, error] {
	f.mu.Lock()
	f.calls = append(f.calls, msgs)
	f.models = append(f.models, model)
	fn, usage, script := f.fn, f.usage, f.chunks
	f.mu.Unlock()
	if script != nil {
		return func(yield func(aura.Chunk, error) bool) { script(ctx, msgs, yield) }
	}
	return func(yield func(aura.Chunk, error) bool) {
		failed, stopped := false, false
		fn(ctx, msgs, func(s string, err error) bool {
			failed = failed || err != nil
			stopped = !yield(aura.Chunk{Text: s}, err)
			return !stopped
		})
		if usage != nil && !failed && !stopped {
			if u := usage(msgs); u != nil {
				yield(aura.Chunk{Usage: u}, nil)
			}
		}
	}
}

func (f *fakeModel) HasModel(_ context.Context, model string) (bool, error) {
	f.mu.Lock()
	has := f.has
	f.mu.Unlock()
	if has == nil {
		return false, nil
	}
	return has(model)
}

func (f *fakeModel) Capabilities(_ context.Context, model string) (aura.Capabilities, error) {
	f.mu.Lock()
	caps := f.caps
	f.mu.Unlock()
	if caps == nil {
		return aura.Capabilities{}, nil
	}
	return caps(model)
}

func (f *fakeModel) Models(context.Context) ([]string, error) {
	f.mu.Lock()
	list := f.list
	f.mu.Unlock()
	if list == nil {
		return nil, nil
	}
	return list()
}

func (f *fakeModel) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.models...)
}

func (f *fakeModel) requests() [][]aura.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]aura.Message(nil), f.calls...)
}

// chunks yields each chunk in turn.
func chunks(cs ...string) func(context.Context, []aura.Message, func(string, error) bool) {
	return func(_ context.Context, _ []aura.Message, yield func(string, error) bool) {
		for _, c := range cs {
			if !yield(c, nil) {
				return
			}
		}
	}
}

type env struct {
	t     *testing.T
	tg    *telegramtest.Server
	model *fakeModel
	store *history.Store
	bot   *Bot
	stop  func()
	// patience bounds each wait for the bot (20 s unless a test knows a longer bound).
	patience time.Duration
}

const (
	user  = 777
	group = -100123
)

// newEnv runs a bot against a fake Telegram and a fake model, with fast pacing unless cfg says otherwise.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	return newEnvOn(t, cfg, tg, tg.URL(), nil)
}

// newProxiedEnv is newEnv with a fault-injecting proxy between the bot and the fake Telegram.
func newProxiedEnv(t *testing.T, cfg Config) (*env, *telegramtest.Proxy) {
	t.Helper()
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	p := telegramtest.NewProxy(tg.URL())
	t.Cleanup(p.Close)
	return newEnvOn(t, cfg, tg, p.URL(), nil), p
}

// newEnvOn runs a bot against tg, reached at apiURL, on store (nil: a new one): a bot started
// again after a stop runs on the store of the one before.
func newEnvOn(t *testing.T, cfg Config, tg *telegramtest.Server, apiURL string, store *history.Store) *env {
	t.Helper()
	if store == nil {
		var err error
		store, err = history.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
	}
	model := &fakeModel{fn: chunks("ok")}
	cfg.Telegram.Token, cfg.Telegram.APIURL = telegramtest.Token, apiURL
	conv := &cfg.Conversation
	if conv.AllowedUsers.IDs == nil && !conv.AllowedUsers.All {
		conv.AllowedUsers.IDs = []int64{user}
	}
	if conv.DefaultPrompt == "" {
		conv.DefaultPrompt = "Be helpful."
	}
	if conv.Budget.Chars == 0 {
		conv.Budget.Chars = 10000
	}
	if cfg.PrivateInterval == 0 {
		cfg.PrivateInterval = 20 * time.Millisecond
	}
	if cfg.GroupInterval == 0 {
		cfg.GroupInterval = 60 * time.Millisecond
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = 5 * time.Second
	}
	if os.Getenv("AURABOT_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := New(cfg, store, model)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	e := &env{t: t, tg: tg, model: model, store: store, bot: b}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	e.wait(func() bool { return len(tg.Calls("setMyCommands")) > 0 })
	return e
}

func (e *env) wait(cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(e.patience, 20*time.Second))
	defer cancel()
	if err := e.tg.Wait(ctx, cond); err != nil {
		e.t.Fatal(err)
	}
}

// say delivers a text message from user in chat and returns its id.
func (e *env) say(chat int64, from int64, text string) int {
	id := e.tg.NewMessageID(chat)
	typ := models.ChatTypePrivate
	if chat < 0 {
		typ = models.ChatTypeSupergroup
	}
	e.tg.Push(models.Update{Message: &models.Message{
		ID: id, Date: int(time.Now().Unix()), Text: text,
		Chat: models.Chat{ID: chat, Type: typ},
		From: &models.User{ID: from, FirstName: "Ann"},
	}})
	return id
}

// final waits until the reply to message id is final (no cursor, no Stop button) and returns
// all the messages of that reply.
func (e *env) final(chat int64, id int) []telegramtest.Message {
	e.t.Helper()
	var got []telegramtest.Message
	e.wait(func() bool {
		got = got[:0]
		ms := e.tg.Messages(chat)
		for i, m := range ms {
			if m.ReplyTo == id {
				got = append(got, ms[i:]...)
				break
			}
		}
		if len(got) == 0 {
			return false
		}
		for _, m := range got {
			if strings.HasSuffix(m.Text, cursor) || m.Markup != "" {
				return false
			}
		}
		return true
	})
	return got
}

// eventually polls cond, for conditions the fake Telegram server cannot signal (the store's).
func (e *env) eventually(cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answered waits until conversation k holds n turns, the last one an answer, and returns them.
func (e *env) answered(k history.Key, n int) []history.Turn {
	e.t.Helper()
	var ts []history.Turn
	e.eventually(func() bool {
		ts = e.turns(k)
		return len(ts) >= n && ts[len(ts)-1].Role == history.RoleAssistant
	})
	return ts
}

func (e *env) turns(k history.Key) []history.Turn {
	e.t.Helper()
	ts, err := e.store.Turns(context.Background(), k)
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

// A bot that starts while Telegram cannot be reached waits for it; a rejected token stops it.
func TestStartWaitsForTelegram(t *testing.T) {
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	calls := 0
	tg.SetFaults(func(method string, _ map[string]string) *telegramtest.Fault {
		if method == "getMe" {
			calls++
			if calls <= 2 {
				return &telegramtest.Fault{Code: 502, Description: "Bad Gateway"}
			}
		}
		return nil
	})
	store, err := history.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b, err := New(Config{Telegram: tgapi.Config{Token: telegramtest.Token, APIURL: tg.URL()}, Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}, Budget: history.Budget{Chars: 1000}}}, store, &fakeModel{fn: chunks("ok")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := tg.Wait(wctx, func() bool { return len(tg.Calls("setMyCommands")) > 0 }); err != nil {
		t.Fatalf("the bot did not come up after Telegram recovered: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	bad, err := New(Config{Telegram: tgapi.Config{Token: "1:wrong", APIURL: tg.URL()}, Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}, Budget: history.Budget{Chars: 1000}}}, store, &fakeModel{fn: chunks("ok")})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "TELEGRAM_TOKEN") || strings.Contains(err.Error(), "1:wrong") {
		t.Errorf("Run with a rejected token: got %v, want an error naming TELEGRAM_TOKEN without the token", err)
	}
}
