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

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/ops"
	"aurabot/bot/reply"
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
	Summary(ctx context.Context, k history.Key) (history.Summary, error)
	SetSummary(ctx context.Context, k history.Key, text string, through int64) (bool, error)
	TurnsBetween(ctx context.Context, k history.Key, after, through int64) ([]history.Turn, error)
	AddUsage(ctx context.Context, u history.Usage) error
	UsageOf(ctx context.Context, user int64, now time.Time) (history.UserUsage, error)
	UsageAll(ctx context.Context, now time.Time) ([]history.UserUsage, error)
}

// Journal is the update inbox (entries, seq, name updates): reply journals, attempts, finishing.
type Journal interface {
	RecordText(ctx context.Context, seq int64, r inbox.Reply) error
	RecordSending(ctx context.Context, seq int64, idx int, p inbox.Part) error
	RecordSent(ctx context.Context, seq int64, idx int, messageID int64, lost *inbox.Lost) (int64, error)
	RecordRemoved(ctx context.Context, seq int64, idx int) error
	Attempt(ctx context.Context, seq int64) (int, error)
	Get(ctx context.Context, seq int64) (inbox.Update, error)
	Finish(ctx context.Context, seq int64) error
}

// Model is the model server; model "" is its default.
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

// Telegram is the Bot API a conversation calls itself (tg.Client); replies go through Streamer.
type Telegram interface {
	Download(ctx context.Context, fileID string, limit int64) ([]byte, error)
	GetChatAdministrators(ctx context.Context, p *tgbot.GetChatAdministratorsParams) ([]models.ChatMember, error)
	SetMessageReaction(ctx context.Context, p *tgbot.SetMessageReactionParams) (bool, error)
	AnswerCallbackQuery(ctx context.Context, p *tgbot.AnswerCallbackQueryParams) (bool, error)
	EditMessageReplyMarkup(ctx context.Context, p *tgbot.EditMessageReplyMarkupParams) (*models.Message, error)
	EditMessageText(ctx context.Context, p *tgbot.EditMessageTextParams) (*models.Message, error)
}

// Pacer spaces the calls to each chat (pace.Pacer).
type Pacer interface {
	Wait(ctx context.Context, chat int64) error
	TooMany(chat int64, retryAfter time.Duration)
	OK(chat int64)
}

// Streamer shows replies, notices and files in a chat, recorded in a journal (reply.Streamer).
type Streamer interface {
	StreamWith(ctx context.Context, t reply.Target, j reply.Journal, stopData string, started func(reply.Control),
		chunks func(ctx context.Context) iter.Seq2[reply.Chunk, error], opt reply.Options) reply.Outcome
	Notify(ctx context.Context, t reply.Target, j reply.Journal, text string) error
	Resume(ctx context.Context, t reply.Target, j reply.Journal, rec reply.Recorded, cut string) (text string, firstID int, complete bool, err error)
	SendDocument(ctx context.Context, t reply.Target, j reply.Journal, doc reply.Document) (int, error)
}

// Registry learns chats' messages and who holds a send gate after a restart (reply.Registry).
type Registry interface {
	Add(chat int64, id int)
	Hold(chat int64, owner reply.Owner)
}

// Config is read from the environment by main, which sets Budget.Tokens, DefaultModel, TextOnly.
type Config struct {
	// AllowedUsers may use the bot (* for everyone); those it names are its owners. Members of
	// AllowedChats may all use it.
	AllowedUsers          IDList `env:"ALLOWED_USERS"`
	AllowedChats          IDList `env:"ALLOWED_CHATS"`
	UserMessagesPerMinute int    `env:"USER_MESSAGES_PER_MINUTE"` // 0: no bound (fairness.go)

	DefaultPrompt        string         `env:"SYSTEM_PROMPT" envDefault:"You are a helpful assistant."`
	Budget               history.Budget // New sets its Summaries
	MaxConcurrentReplies int            `env:"MAX_CONCURRENT_REPLIES" envDefault:"32"`
	Summaries            Switch         `env:"SUMMARIES" envDefault:"on"` // summary.go
	// Token caps per user over every chat, per UTC day and month; 0: no cap (caps.go).
	UserDailyTokens   int64 `env:"USER_DAILY_TOKENS"`
	UserMonthlyTokens int64 `env:"USER_MONTHLY_TOKENS"`

	Models       ModelList `env:"AURA_MODELS"` // what /model offers; empty: the server's list
	DefaultModel string    // "" leaves it to the server
	TextOnly     bool      // the server takes text only (chatbot-ui): no pictures are sent
	MaxFileBytes int       `env:"MAX_FILE_BYTES" envDefault:"524288"` // 0 means 512 KiB
}

// Switch is a setting that is "on" or "off".
type Switch bool

// UnmarshalText parses "on" or "off", in any case.
func (s *Switch) UnmarshalText(b []byte) error {
	v := strings.ToLower(strings.TrimSpace(string(b)))
	if v != "on" && v != "off" {
		return fmt.Errorf("%q is not on or off", string(b))
	}
	*s = v == "on"
	return nil
}

// IDList is a comma-separated list of Telegram ids, or everyone (*).
type IDList struct {
	All bool
	IDs []int64
}

// UnmarshalText parses the comma-separated ids, or *.
func (l *IDList) UnmarshalText(b []byte) error {
	*l = IDList{}
	s := strings.TrimSpace(string(b))
	if s == "*" {
		l.All = true
		return nil
	}
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a Telegram id (use numbers separated by commas, or *)", f)
			}
			l.IDs = append(l.IDs, id)
		}
	}
	return nil
}

// Has reports whether the list names id (* names nobody).
func (l IDList) Has(id int64) bool { return id != 0 && slices.Contains(l.IDs, id) }

// ModelList is comma-separated entries, each an id or id=Display name.
type ModelList []ModelChoice

// UnmarshalText parses the comma-separated entries.
func (l *ModelList) UnmarshalText(b []byte) error {
	*l = nil
	if strings.TrimSpace(string(b)) == "" {
		return nil
	}
	seen := map[string]bool{}
	for i, entry := range strings.Split(string(b), ",") {
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

// Deps is what conversations need from the rest of the bot; Transcriber is nil when none is set.
type Deps struct {
	TG          Telegram
	Pacer       Pacer
	Streamer    Streamer
	Registry    Registry
	Store       Store
	Journal     Journal
	Model       Model
	Metrics     Metrics
	Log         *slog.Logger
	Transcriber Transcriber
}

// Handler handles updates.
type Handler struct {
	cfg       Config
	deps      Deps
	queue     *dispatcher
	side      *sideCalls
	finishing sync.WaitGroup // finishLater
	me        models.User
	closing   atomic.Bool // jobs not started once it is set stay in the inbox
	rates     *rates

	strangers, skipped         *ops.Repeated // refusals, logged at most once a minute
	refused, troubled, noVoice *once[int64]  // chats told: private bot, cannot save, no voice
	capped                     *once[capNotice]
	admins                     *admins
	albums                     *albums
	usage                      *usageCheck
	sums                       *summaries

	mu     sync.Mutex
	active map[history.Key]*activeReply // replies streaming now, for /stop and the button
	failed map[history.Key]failure      // the last refused request per conversation (notices.go)
}

type activeReply struct {
	update, asker int64 // the inbox entry it answers (its Stop button's), and who asked
	stop          func()
	draft         int64 // the draft it streams through; 0: none
}

// New returns a handler for cfg.
func New(cfg Config, deps Deps) *Handler {
	cfg.Budget.Summaries = bool(cfg.Summaries)
	return &Handler{
		cfg:      cfg,
		deps:     deps,
		queue:    newDispatcher(max(cfg.MaxConcurrentReplies, 1), maxWaiting),
		side:     &sideCalls{deps: deps, after: time.Second, waiting: map[int64]int{}},
		rates:    newRates(cfg.UserMessagesPerMinute),
		refused:  newOnce[int64](time.Hour),
		troubled: newOnce[int64](troubleEvery),
		noVoice:  newOnce[int64](time.Hour),
		capped:   newOnce[capNotice](forever),
		admins:   &admins{chats: map[int64]adminList{}},
		albums:   &albums{open: map[albumKey]*album{}},
		usage:    &usageCheck{told: newOnce[string](forever)},
		sums:     newSummaries(max(cfg.MaxConcurrentReplies/4, 1)),
		active:   map[history.Key]*activeReply{},
		failed:   map[history.Key]failure{},

		strangers: ops.NewRepeated(deps.Log, slog.LevelInfo, "refused messages from users who may not use the bot", time.Minute),
		skipped:   ops.NewRepeated(deps.Log, slog.LevelInfo, "skipped messages of a user over their share", time.Minute),
	}
}

// SetMe tells the handler who the bot is (getMe), before the first Handle.
func (h *Handler) SetMe(me models.User) { h.me = me }

// Queued is how many jobs wait (not the ones running).
func (h *Handler) Queued() int { return h.queue.pending() }

// Close stops starting jobs: those not started stay in the inbox, for the restart.
func (h *Handler) Close() {
	h.closing.Store(true)
	h.sums.stop() // a summary being written is dropped: the next request asks again
	h.strangers.Close()
	h.skipped.Close()
}

// Wait waits until every queued job has run (or been left) and every side call has ended.
func (h *Handler) Wait() {
	h.queue.wait()
	h.finishing.Wait()
	h.side.wg.Wait()
	h.sums.wg.Wait()
}

func (h *Handler) activeIn(k history.Key) *activeReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active[k]
}
