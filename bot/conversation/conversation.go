// Package conversation decides what to do with each update the bot takes: who may use the bot,
// which conversation a message belongs to (a chat, or a topic), the commands, and answering a
// message by asking the model with the conversation's context and streaming the answer as a
// reply. Every conversation is answered one message at a time, in order; conversations run in
// parallel, up to a bound on the replies streaming at once.
//
// Handle never waits on Telegram: it queues work and returns. Reactions, callback answers and
// notices go out from queues of their own.
package conversation

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/ops"
	"aurabot/bot/pace"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
	"aurabot/history/inbox"
)

// Store is what a conversation needs of the conversation store.
type Store interface {
	Append(ctx context.Context, k history.Key, t history.Turn) (history.Turn, bool, error)
	SystemPrompt(ctx context.Context, k history.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, k history.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, k history.Key) error
	Reset(ctx context.Context, k history.Key) error
	Rewind(ctx context.Context, k history.Key) (history.Turn, error)
	Request(ctx context.Context, k history.Key, b history.Budget, systemPrompt string) (history.Request, error)
	Report(ctx context.Context, k history.Key, b history.Budget, systemPrompt string) (history.Report, error)
	Turns(ctx context.Context, k history.Key) ([]history.Turn, error)
	Newest(ctx context.Context, k history.Key) (history.Turn, bool, error)
	SetTranscript(ctx context.Context, k history.Key, turnID int64, text string) error
	Model(ctx context.Context, k history.Key) (string, bool, error)
	SetModel(ctx context.Context, k history.Key, model string) error

	// Summaries (see summary.go).
	Summary(ctx context.Context, k history.Key) (history.Summary, error)
	SetSummary(ctx context.Context, k history.Key, text string, through int64) (bool, error)
	TurnsBetween(ctx context.Context, k history.Key, after, through int64) ([]history.Turn, error)

	// Usage (see caps.go).
	AddUsage(ctx context.Context, u history.Usage) error
	UsageOf(ctx context.Context, user int64, now time.Time) (history.UserUsage, error)
	UsageAll(ctx context.Context, now time.Time) ([]history.UserUsage, error)
}

// Journal is what a conversation needs of the update inbox: the reply journal, counting the
// attempts at an update, and finishing it once it is handled. Updates are named by their inbox
// entry (seq).
type Journal interface {
	RecordText(ctx context.Context, seq int64, r inbox.Reply) error
	RecordSending(ctx context.Context, seq int64, idx int, p inbox.Part) error
	RecordSent(ctx context.Context, seq int64, idx int, messageID int64, lost *inbox.Lost) (int64, error)
	RecordRemoved(ctx context.Context, seq int64, idx int) error
	Attempt(ctx context.Context, seq int64) (int, error)
	Get(ctx context.Context, seq int64) (inbox.Update, error)
	Finish(ctx context.Context, seq int64) error
}

// Model streams an answer to a conversation, from the model a conversation chose ("" for the
// default), with what the server counted for the request when it says; lists the models a
// server offers, asks about one it does not list, and says what a model can do when the
// server tells.
type Model interface {
	Chat(ctx context.Context, model string, msgs []aura.Message) iter.Seq2[aura.Chunk, error]
	Models(ctx context.Context) ([]string, error)
	HasModel(ctx context.Context, model string) (bool, error)
	Capabilities(ctx context.Context, model string) (aura.Capabilities, error)
}

// Metrics is what a conversation reports about replies.
type Metrics interface {
	ReplyStarted()
	ReplyEnded(result string, failed bool, auraKind string, took, firstText time.Duration)
}

// Config is how conversations are handled: the settings this room declares (main reads them
// from the environment) and those main derives from the model server's (Budget.Tokens,
// DefaultModel, TextOnly).
type Config struct {
	// AllowedUsers may use the bot (ALLOWED_USERS; * for everyone); those it names (not *) are
	// its owners, who steer any group they are in. Members of AllowedChats may all use it.
	AllowedUsers IDList `env:"ALLOWED_USERS"`
	AllowedChats IDList `env:"ALLOWED_CHATS"`
	// UserMessagesPerMinute bounds the messages one user may send (USER_MESSAGES_PER_MINUTE);
	// 0: no bound. See fairness.go.
	UserMessagesPerMinute int `env:"USER_MESSAGES_PER_MINUTE"`

	DefaultPrompt string `env:"SYSTEM_PROMPT" envDefault:"You are a helpful assistant."`
	// Budget is what may be sent to the model with each request. New sets its Summaries from
	// Summaries.
	Budget               history.Budget
	MaxConcurrentReplies int `env:"MAX_CONCURRENT_REPLIES" envDefault:"32"`
	// Summaries: a conversation that outgrows the window is summarised by the model in the
	// background, and the summary leads the context (SUMMARIES=on); off drops the oldest turns
	// as they fall out. See summary.go.
	Summaries Switch `env:"SUMMARIES" envDefault:"on"`
	// UserDailyTokens and UserMonthlyTokens cap the tokens (in and out, summaries included)
	// each user may use over every chat in a UTC day and month (USER_DAILY_TOKENS,
	// USER_MONTHLY_TOKENS); 0: no cap. See caps.go.
	UserDailyTokens   int64 `env:"USER_DAILY_TOKENS"`
	UserMonthlyTokens int64 `env:"USER_MONTHLY_TOKENS"`

	// Models is what /model offers (AURA_MODELS); empty: the list the model server gives.
	Models ModelList `env:"AURA_MODELS"`
	// DefaultModel is the model of a conversation that chose none; "" leaves it to the server.
	DefaultModel string
	// TextOnly says the model server's protocol carries text only (chatbot-ui): photos are
	// refused without asking it, and stored pictures are not sent.
	TextOnly bool
	// MaxFileBytes is the largest text file read (MAX_FILE_BYTES); 0 means 512 KiB.
	MaxFileBytes int `env:"MAX_FILE_BYTES" envDefault:"524288"`
}

// Switch is a setting that is on or off.
type Switch bool

// UnmarshalText parses "on" or "off" (in any case).
func (s *Switch) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "on":
		*s = true
	case "off":
		*s = false
	default:
		return fmt.Errorf("%q is not on or off", string(b))
	}
	return nil
}

// IDList is a list of Telegram ids, or everyone (*).
type IDList struct {
	All bool
	IDs []int64
}

// UnmarshalText parses a comma-separated list of ids, or "*" for everyone.
func (l *IDList) UnmarshalText(b []byte) error {
	*l = IDList{}
	s := strings.TrimSpace(string(b))
	if s == "*" {
		l.All = true
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
		l.IDs = append(l.IDs, id)
	}
	return nil
}

// Has reports whether the list names id (not: lets everyone in).
func (l IDList) Has(id int64) bool { return id != 0 && slices.Contains(l.IDs, id) }

// ModelList is a list of models: comma-separated entries, each an id or id=Display name.
type ModelList []ModelChoice

// UnmarshalText parses the list. An empty list is no list.
func (l *ModelList) UnmarshalText(b []byte) error {
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
		case strings.ContainsFunc(id+name, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return fmt.Errorf("entry %d has a control character", i+1)
		case seen[id]:
			return fmt.Errorf("model id %q is listed twice", id)
		}
		seen[id] = true
		*l = append(*l, ModelChoice{ID: id, Name: name})
	}
	return nil
}

// Deps is what conversations need from the rest of the bot.
type Deps struct {
	TG       *tg.Client
	Pacer    *pace.Pacer
	Streamer *reply.Streamer
	Registry *reply.Registry // the chats' known messages and send gates
	Store    Store
	Journal  Journal
	Model    Model
	Metrics  Metrics
	Log      *slog.Logger
	// Transcriber turns voice messages into text; nil when none is set up.
	Transcriber Transcriber
}

// Handler handles updates. Create it with New.
type Handler struct {
	cfg   Config
	deps  Deps
	queue *dispatcher
	side  *sideCalls
	// finishing are the replies being finished in the background (finishLater).
	finishing sync.WaitGroup

	me      models.User // set by SetMe
	closing atomic.Bool // set when shutdown begins: jobs not yet started stay in the inbox
	rates   *rates      // USER_MESSAGES_PER_MINUTE

	// Floods of refusals are logged at most once a minute, with a count.
	strangers *ops.Repeated // messages from users who may not use the bot
	skipped   *ops.Repeated // messages over a user's share (see fairness.go)

	mu       sync.Mutex
	active   map[history.Key]*activeReply // replies streaming now, for /stop and the button
	refused  *refusals
	troubled *refusals // chats told that the bot cannot save
	noVoice  *refusals // chats told that voice messages are not set up
	admins   *admins
	albums   *albums // photo albums being gathered into one turn

	failed map[history.Key]failure // the last request of a conversation the server refused (see repeated), under mu
	usage  *usageCheck
	sums   *summaries  // the summaries being written (summary.go)
	capped *capNotices // who was told they are past a cap (caps.go)
}

// activeReply is a reply streaming now.
type activeReply struct {
	update int64 // the inbox entry it answers: its Stop button carries it
	asker  int64 // who asked: they may stop it
	stop   func()
	draft  int64 // the draft it streams through (Telegram's own Stop button names it); 0: none
}

// New returns a handler.
func New(cfg Config, deps Deps) *Handler {
	cfg.Budget.Summaries = bool(cfg.Summaries)
	return &Handler{
		cfg:      cfg,
		deps:     deps,
		queue:    newDispatcher(max(cfg.MaxConcurrentReplies, 1), maxWaiting),
		rates:    newRates(cfg.UserMessagesPerMinute),
		side:     newSideCalls(deps),
		active:   map[history.Key]*activeReply{},
		refused:  newRefusals(refusalEvery, maxRefusals),
		troubled: newRefusals(troubleEvery, maxRefusals),
		failed:   map[history.Key]failure{},
		usage:    &usageCheck{told: map[string]bool{}},
		sums:     newSummaries(max(cfg.MaxConcurrentReplies/4, 1)),
		capped:   &capNotices{told: map[capNotice]bool{}},
		noVoice:  newRefusals(refusalEvery, maxRefusals),
		admins:   &admins{chats: map[int64]adminList{}},
		albums:   newAlbums(),

		strangers: ops.NewRepeated(deps.Log, slog.LevelInfo, "refused messages from users who may not use the bot", time.Minute),
		skipped:   ops.NewRepeated(deps.Log, slog.LevelInfo, "skipped messages of a user over their share", time.Minute),
	}
}

// SetMe tells the handler who the bot is (getMe), for mentions and commands in groups. It must
// be called before the first Handle.
func (h *Handler) SetMe(me models.User) {
	h.me = me
}

// Queued is how many jobs wait in conversation queues (not the ones running).
func (h *Handler) Queued() int { return h.queue.pending() }

// Busy is how many conversations hold a worker now: idle ones hold none.
func (h *Handler) Busy() int { return h.queue.workers() }

// Close stops starting jobs: those not started stay in the inbox, for the restart. The counts of
// refusals not logged yet are logged.
func (h *Handler) Close() {
	h.closing.Store(true)
	h.sums.stop() // a summary being written is dropped: the next request asks again
	h.strangers.Close()
	h.skipped.Close()
}

// Wait waits until every queued job has run (or been left for the restart) and every side call
// has ended.
func (h *Handler) Wait() {
	h.queue.wait()
	h.finishing.Wait()
	h.side.wait()
	h.sums.wait()
}

// troubleEvery is how often a chat is told that the bot cannot save.
const troubleEvery = 10 * time.Minute

// StorageTrouble is storageTrouble, for the reply's journal failures: a failure of the storage
// (not a stop, not a bug) makes the chat of t told once why the reply waits.
func (h *Handler) StorageTrouble(ctx context.Context, t reply.Target, err error) {
	if history.StorageTrouble(err) {
		h.storageTrouble(ctx, t, err)
	}
}

// storageTrouble tells the chat of t, at most once every troubleEvery, that the bot cannot save
// right now and will answer when it can: a full disk, or a failing one (err says which). The
// notice is not journaled (the database is what fails) and goes out on its own.
func (h *Handler) storageTrouble(ctx context.Context, t reply.Target, err error) {
	if !h.troubled.due(t.ChatID, time.Now()) {
		return
	}
	text := "⚠️ I can't save anything right now: the bot's storage is full. I'll answer as soon as there is room again."
	if errors.Is(err, history.ErrStorageFailing) {
		h.deps.Log.Error("the database's disk is failing (I/O error): the bot answers once it works again", "err", err)
		text = "⚠️ I can't save anything right now: the bot's disk is failing. I'll answer as soon as it works again; the bot's owner has been told in its log."
	}
	h.side.run(ctx, func(cctx context.Context) {
		if err := h.deps.Streamer.Notify(cctx, t, nil, text); err != nil {
			h.deps.Log.Warn("could not tell a chat about the storage", "chat_id", t.ChatID, "err", err)
		}
	})
}

// SaveFailed is told about updates intake could not save: their users learn why they wait.
func (h *Handler) SaveFailed(ctx context.Context, us []*models.Update, err error) {
	if !history.StorageTrouble(err) {
		return
	}
	for _, u := range us {
		if m := u.Message; m != nil && m.From != nil && h.allowed(m.From.ID, m.Chat.ID) {
			h.storageTrouble(ctx, reqOf(0, m).t, err)
		}
	}
}

// finish marks an inbox entry handled.
func (h *Handler) finish(ctx context.Context, entry int64) {
	if entry == 0 {
		return
	}
	if err := h.retryStore(ctx, req{}, func(ctx context.Context) error { return h.deps.Journal.Finish(ctx, entry) }); err != nil {
		h.deps.Log.Error("could not finish an update in the inbox", "entry", entry, "err", err)
	}
}

// retryStore runs a store write for r, trying again while the storage fails (a full or failing
// disk) until it succeeds or ctx ends (a shutdown: what was not written is done again after the
// restart). r's chat is told once that the bot cannot save right now. A full disk is tried
// again soon, a failing one (an I/O error) less and less often; any other error is returned at
// once.
func (h *Handler) retryStore(ctx context.Context, r req, write func(ctx context.Context) error) error {
	full := &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, Multiplier: 2, MaxInterval: 10 * time.Second}
	failing := &backoff.ExponentialBackOff{InitialInterval: 5 * time.Second, Multiplier: 2, MaxInterval: 5 * time.Minute}
	for {
		err := write(context.WithoutCancel(ctx))
		if err == nil || !history.StorageTrouble(err) || ctx.Err() != nil {
			return err
		}
		wait := full.NextBackOff()
		if errors.Is(err, history.ErrStorageFailing) {
			wait = failing.NextBackOff()
		}
		if r.t.ChatID != 0 {
			h.storageTrouble(ctx, r.t, err)
		}
		h.deps.Log.Warn("a database write failed; trying again", "err", err, "retry_in", wait)
		if serr := pace.SleepUntil(ctx, time.Now().Add(wait)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}
