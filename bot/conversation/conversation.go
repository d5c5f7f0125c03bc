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
	"iter"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/pace"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
)

// Store is what a conversation needs of the conversation store.
type Store interface {
	Append(ctx context.Context, k history.Key, t history.Turn) (history.Turn, bool, error)
	SystemPrompt(ctx context.Context, k history.Key) (string, bool, error)
	SetSystemPrompt(ctx context.Context, k history.Key, prompt string) error
	ClearSystemPrompt(ctx context.Context, k history.Key) error
	Reset(ctx context.Context, k history.Key) error
	Rewind(ctx context.Context, k history.Key) (history.Turn, error)
	Window(ctx context.Context, k history.Key, b history.Budget, systemPrompt string) ([]history.Turn, error)
	Coverage(ctx context.Context, k history.Key, b history.Budget, systemPrompt string) (inWindow, total int, err error)
	SetTranscript(ctx context.Context, k history.Key, turnID int64, text string) error
	Model(ctx context.Context, k history.Key) (string, bool, error)
	SetModel(ctx context.Context, k history.Key, model string) error
}

// Journal is what a conversation needs of the update inbox: the reply journal, and finishing
// an update once it is handled.
type Journal interface {
	RecordText(ctx context.Context, update int64, text string, final bool, notice string, plain bool) error
	RecordSending(ctx context.Context, update, chat int64, idx int, floor int64) error
	RecordSent(ctx context.Context, update int64, idx int, messageID int64) error
	RecordRemoved(ctx context.Context, update int64, idx int) error
	Finish(ctx context.Context, update int64) error
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

// Config is how conversations are handled.
type Config struct {
	AllowAll     bool
	AllowedUsers []int64
	AllowedChats []int64

	DefaultPrompt        string
	Budget               history.Budget // what may be sent to the model with each request
	MaxConcurrentReplies int

	// Models is what /model offers (AURA_MODELS); empty: the list the model server gives.
	Models []ModelChoice
	// DefaultModel is the model of a conversation that chose none; "" leaves it to the server.
	DefaultModel string
	// TextOnly says the model server's protocol carries text only (chatbot-ui): photos are
	// refused without asking it, and stored pictures are not sent.
	TextOnly bool
	// MaxFileBytes is the largest text file read (MAX_FILE_BYTES); 0 means 512 KiB.
	MaxFileBytes int
}

// Deps is what conversations need from the rest of the bot.
type Deps struct {
	TG       *tg.Client
	Pacer    *pace.Pacer
	Streamer *reply.Streamer
	Registry *reply.Registry
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

	me      models.User
	mention *regexp.Regexp // "@botusername", set by SetMe
	closing atomic.Bool    // set when shutdown begins: jobs not yet started stay in the inbox

	mu       sync.Mutex
	active   map[history.Key]*activeReply // replies streaming now, for /stop and the button
	refused  *refusals
	troubled *refusals // chats told that the bot cannot save
	noVoice  *refusals // chats told that voice messages are not set up
	admins   *admins
	albums   *albums // photo albums being gathered into one turn

	failed map[history.Key]failure // the last request of a conversation the server refused (see repeated), under mu
	usage  *usageCheck
}

// activeReply is a reply streaming now.
type activeReply struct {
	update int64 // the update it answers: its Stop button carries it
	asker  int64 // who asked: they may stop it
	stop   func()
}

// New returns a handler.
func New(cfg Config, deps Deps) *Handler {
	return &Handler{
		cfg:      cfg,
		deps:     deps,
		queue:    newDispatcher(max(cfg.MaxConcurrentReplies, 1)),
		side:     newSideCalls(deps),
		active:   map[history.Key]*activeReply{},
		refused:  newRefusals(refusalEvery, maxRefusals),
		troubled: newRefusals(troubleEvery, maxRefusals),
		failed:   map[history.Key]failure{},
		usage:    &usageCheck{told: map[string]bool{}},
		noVoice:  newRefusals(refusalEvery, maxRefusals),
		admins:   &admins{chats: map[int64]adminList{}},
		albums:   newAlbums(),
	}
}

// SetMe tells the handler who the bot is (getMe), for mentions and commands in groups. It must
// be called before the first Handle.
func (h *Handler) SetMe(me models.User) {
	h.me = me
	h.mention = regexp.MustCompile(`(?i)@` + regexp.QuoteMeta(me.Username) + `\b`)
}

// Queued is how many jobs wait in conversation queues (not the ones running).
func (h *Handler) Queued() int { return h.queue.pending() }

// Busy is how many conversations hold a worker now: idle ones hold none.
func (h *Handler) Busy() int { return h.queue.workers() }

// Close stops starting jobs: those not started stay in the inbox, for the restart.
func (h *Handler) Close() { h.closing.Store(true) }

// Wait waits until every queued job has run (or been left for the restart) and every side call
// has ended.
func (h *Handler) Wait() {
	h.queue.wait()
	h.side.wait()
}

// troubleEvery is how often a chat is told that the bot cannot save.
const troubleEvery = 10 * time.Minute

// StorageTrouble is storageTrouble, for the reply's journal failures.
func (h *Handler) StorageTrouble(ctx context.Context, t reply.Target) { h.storageTrouble(ctx, t) }

// storageTrouble tells the chat of t, at most once every troubleEvery, that the bot cannot save
// right now and will answer when it can. The notice is not journaled (the database is what
// fails) and goes out on its own.
func (h *Handler) storageTrouble(ctx context.Context, t reply.Target) {
	if !h.troubled.due(t.ChatID, time.Now()) {
		return
	}
	h.side.run(ctx, func(cctx context.Context) {
		if err := h.deps.Streamer.Notify(cctx, t, nil, "⚠️ I can't save anything right now: the bot's storage is full or failing. I'll answer as soon as it works again."); err != nil {
			h.deps.Log.Warn("could not tell a chat about the storage", "chat_id", t.ChatID, "err", err)
		}
	})
}

// SaveFailed is told about updates intake could not save: their users learn why they wait.
func (h *Handler) SaveFailed(ctx context.Context, us []*models.Update, _ error) {
	for _, u := range us {
		if m := u.Message; m != nil && m.From != nil && h.allowed(m.From.ID, m.Chat.ID) {
			h.storageTrouble(ctx, reqOf(u.ID, m).t)
		}
	}
}

// finish marks an update handled.
func (h *Handler) finish(ctx context.Context, update int64) {
	if update == 0 {
		return
	}
	if err := h.retryStore(ctx, req{}, func(ctx context.Context) error { return h.deps.Journal.Finish(ctx, update) }); err != nil {
		h.deps.Log.Error("could not finish an update in the inbox", "update_id", update, "err", err)
	}
}

// retryStore runs a store write for r, trying again while it fails (a full or failing disk)
// until it succeeds or ctx ends (a shutdown: what was not written is done again after the
// restart). r's chat is told once that the bot cannot save right now.
func (h *Handler) retryStore(ctx context.Context, r req, write func(ctx context.Context) error) error {
	wctx := context.WithoutCancel(ctx)
	backoff := 200 * time.Millisecond
	for {
		err := write(wctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if r.t.ChatID != 0 {
			h.storageTrouble(ctx, r.t)
		}
		h.deps.Log.Warn("a database write failed; trying again", "err", err, "retry_in", backoff)
		if serr := pace.SleepUntil(ctx, time.Now().Add(backoff)); serr != nil {
			return errors.Join(err, serr)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
