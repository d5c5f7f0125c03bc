package conversation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/bot/tg"
	"aurabot/history"
	"aurabot/history/inbox"
)

// In-memory fakes of what a conversation calls, so that its decisions are tested at its
// boundary: an update goes in through Handle, and what comes out (notices, model requests,
// stored turns, finished updates, Telegram calls) is read from the fakes. No fake Bot API, no
// model server.

const (
	botID    = 42
	ann      = 7    // a user named in ALLOWED_USERS
	bob      = 8    // a stranger
	club     = -100 // a group in ALLOWED_CHATS
	otherGrp = -200 // a group nobody allowed
)

// harness is a Handler wired to fakes.
type harness struct {
	t       *testing.T
	h       *Handler
	store   *fakeStore
	journal *fakeJournal
	out     *fakeStreamer
	tg      *fakeTelegram
	model   *fakeModel
	voice   *fakeTranscriber
	seq     int64
	msgID   int
}

// newHarness is a handler with cfg (ALLOWED_USERS ann and ALLOWED_CHATS club unless set).
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if !cfg.AllowedUsers.All && len(cfg.AllowedUsers.IDs) == 0 {
		cfg.AllowedUsers.IDs = []int64{ann}
	}
	if len(cfg.AllowedChats.IDs) == 0 {
		cfg.AllowedChats.IDs = []int64{club}
	}
	if cfg.DefaultPrompt == "" {
		cfg.DefaultPrompt = "Be helpful."
	}
	x := &harness{t: t, store: newFakeStore(), journal: &fakeJournal{replies: map[int64]inbox.Reply{}, attempts: map[int64]int{}},
		out: &fakeStreamer{}, tg: &fakeTelegram{files: map[string][]byte{}}, model: &fakeModel{answer: "An answer."}}
	x.voice = &fakeTranscriber{text: "what time is it"}
	x.h = New(cfg, Deps{
		TG: x.tg, Pacer: fakePacer{}, Streamer: x.out, Registry: fakeRegistry{},
		Store: x.store, Journal: x.journal, Model: x.model, Metrics: fakeMetrics{},
		Log: slog.New(slog.DiscardHandler), Transcriber: x.voice,
	})
	x.h.SetMe(models.User{ID: botID, IsBot: true, Username: "aurabot"})
	t.Cleanup(func() { x.h.Close(); x.h.Wait() })
	return x
}

// private is a message of user in their private chat.
func (x *harness) private(user int64, text string) *models.Message {
	x.msgID++
	return &models.Message{ID: x.msgID, Chat: models.Chat{ID: user, Type: models.ChatTypePrivate},
		From: &models.User{ID: user, FirstName: fmt.Sprint("user", user)}, Text: text}
}

// group is a message of user in a group chat.
func (x *harness) group(chat, user int64, text string) *models.Message {
	m := x.private(user, text)
	m.Chat = models.Chat{ID: chat, Type: models.ChatTypeSupergroup, Title: "The club"}
	return m
}

// mentioning is text with the bot's @username in front, as a mention entity.
func mentioning(m *models.Message, text string) *models.Message {
	m.Text = "@aurabot " + text
	m.Entities = []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 0, Length: len("@aurabot")}}
	return m
}

// send hands ms to the handler as new updates and waits until everything they started is done.
// It returns the last one's inbox entry.
func (x *harness) send(ms ...*models.Message) int64 {
	for _, m := range ms {
		x.seq++
		x.h.Handle(context.Background(), x.seq, &models.Update{ID: x.seq, Message: m})
	}
	x.h.Wait()
	return x.seq
}

// notices are the notices sent in reply to message id.
func (x *harness) notices(id int) []string {
	x.out.mu.Lock()
	defer x.out.mu.Unlock()
	var out []string
	for _, n := range x.out.notices {
		if n.t.ReplyTo == id {
			out = append(out, n.text)
		}
	}
	return out
}

// told fails the test unless message id got exactly one notice that contains want.
func (x *harness) told(id int, want string) {
	x.t.Helper()
	if got := x.notices(id); len(got) != 1 || !strings.Contains(got[0], want) {
		x.t.Errorf("notices to message %d: got %q, want one with %q", id, got, want)
	}
}

// finished fails the test unless the update of entry was finished.
func (x *harness) finished(entry int64) {
	x.t.Helper()
	x.journal.mu.Lock()
	defer x.journal.mu.Unlock()
	if !slices.Contains(x.journal.finished, entry) {
		x.t.Errorf("update %d was not finished (finished: %v)", entry, x.journal.finished)
	}
}

// silent fails the test if message id got anything: a notice, a reply, a model request.
func (x *harness) silent(id int) {
	x.t.Helper()
	if n := x.notices(id); len(n) > 0 {
		x.t.Errorf("message %d got notices %q, want none", id, n)
	}
	if s := x.out.streamsTo(id); s > 0 {
		x.t.Errorf("message %d got %d replies, want none", id, s)
	}
}

// asked is the text of the newest message of each model request.
func (x *harness) asked() []string {
	x.model.mu.Lock()
	defer x.model.mu.Unlock()
	var out []string
	for _, msgs := range x.model.requests {
		out = append(out, msgs[len(msgs)-1].Content)
	}
	return out
}

// fakeStore keeps conversations in memory. Methods a test does not need panic (the nil Store).
type fakeStore struct {
	Store
	mu      sync.Mutex
	turns   map[history.Key][]history.Turn
	values  map[setting]string // system prompts and models
	summary history.Summary
	usage   []history.UserUsage
	added   []history.Usage
	nextID  int64
	panicOn string // Append panics on a turn with this content
}

type setting struct {
	k    history.Key
	name string
}

func newFakeStore() *fakeStore {
	return &fakeStore{turns: map[history.Key][]history.Turn{}, values: map[setting]string{}}
}

// get and set read and write a conversation's setting; set deletes it when v is nil.
func (s *fakeStore) get(k history.Key, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[setting{k, name}]
	return v, ok, nil
}

func (s *fakeStore) set(k history.Key, name string, v *string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == nil {
		delete(s.values, setting{k, name})
	} else {
		s.values[setting{k, name}] = *v
	}
	return nil
}

func (s *fakeStore) Append(_ context.Context, k history.Key, t history.Turn) (history.Turn, bool, error) {
	if t.Content == s.panicOn && t.Content != "" {
		panic("the store went wrong")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.turns[k] {
		if t.Role == history.RoleUser && t.MessageID != 0 && old.MessageID == t.MessageID {
			return old, false, nil
		}
	}
	s.nextID++
	t.ID = s.nextID
	s.turns[k] = append(s.turns[k], t)
	return t, true, nil
}

func (s *fakeStore) conversation(k history.Key) []history.Turn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.turns[k])
}

func (s *fakeStore) SystemPrompt(_ context.Context, k history.Key) (string, bool, error) {
	return s.get(k, "prompt")
}

func (s *fakeStore) SetSystemPrompt(_ context.Context, k history.Key, p string) error {
	return s.set(k, "prompt", &p)
}

func (s *fakeStore) ClearSystemPrompt(_ context.Context, k history.Key) error {
	return s.set(k, "prompt", nil)
}

func (s *fakeStore) Reset(_ context.Context, k history.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.turns, k)
	return nil
}

func (s *fakeStore) Rewind(_ context.Context, k history.Key) (history.Turn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.turns[k]
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].Role == history.RoleUser {
			s.turns[k] = ts[:i+1]
			return ts[i], nil
		}
	}
	return history.Turn{}, history.ErrNotFound
}

func (s *fakeStore) Request(_ context.Context, k history.Key, _ history.Budget, prompt string) (history.Request, error) {
	return history.Request{Lead: prompt, Turns: s.conversation(k)}, nil
}

func (s *fakeStore) Report(_ context.Context, k history.Key, _ history.Budget, _ string) (history.Report, error) {
	n := len(s.conversation(k))
	return history.Report{InWindow: n, Total: n}, nil
}

func (s *fakeStore) Turns(_ context.Context, k history.Key) ([]history.Turn, error) {
	return s.conversation(k), nil
}

func (s *fakeStore) Newest(_ context.Context, k history.Key) (history.Turn, bool, error) {
	ts := s.conversation(k)
	if len(ts) == 0 {
		return history.Turn{}, false, nil
	}
	return ts[len(ts)-1], true, nil
}

func (s *fakeStore) SetTranscript(_ context.Context, k history.Key, id int64, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.turns[k] {
		if t.ID == id {
			s.turns[k][i].Content = text
		}
	}
	return nil
}

func (s *fakeStore) Model(_ context.Context, k history.Key) (string, bool, error) {
	return s.get(k, "model")
}

func (s *fakeStore) SetModel(_ context.Context, k history.Key, m string) error {
	return s.set(k, "model", &m)
}

func (s *fakeStore) Summary(context.Context, history.Key) (history.Summary, error) {
	return s.summary, nil
}

func (s *fakeStore) AddUsage(_ context.Context, u history.Usage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added = append(s.added, u)
	return nil
}

func (s *fakeStore) UsageOf(_ context.Context, user int64, _ time.Time) (history.UserUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.usage {
		if u.User == user {
			return u, nil
		}
	}
	return history.UserUsage{User: user}, nil
}

func (s *fakeStore) UsageAll(context.Context, time.Time) ([]history.UserUsage, error) {
	return s.usage, nil
}

// fakeJournal is the inbox: replies recorded, attempts counted, updates finished.
type fakeJournal struct {
	mu       sync.Mutex
	replies  map[int64]inbox.Reply
	attempts map[int64]int
	finished []int64
}

func (j *fakeJournal) RecordText(_ context.Context, seq int64, r inbox.Reply) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.replies[seq] = r
	return nil
}

func (j *fakeJournal) RecordSending(context.Context, int64, int, inbox.Part) error { return nil }
func (j *fakeJournal) RecordSent(context.Context, int64, int, int64, *inbox.Lost) (int64, error) {
	return 0, nil
}
func (j *fakeJournal) RecordRemoved(context.Context, int64, int) error { return nil }

func (j *fakeJournal) Attempt(_ context.Context, seq int64) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.attempts[seq]++
	return j.attempts[seq], nil
}

func (j *fakeJournal) Get(_ context.Context, seq int64) (inbox.Update, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return inbox.Update{Seq: seq, Reply: j.replies[seq]}, nil
}

func (j *fakeJournal) Finish(_ context.Context, seq int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.finished = append(j.finished, seq)
	return nil
}

// fakeStreamer records what would be shown: notices, streamed replies, resumed replies, files.
type fakeStreamer struct {
	mu      sync.Mutex
	notices []shown
	streams []shown // text: the answer; prefix: what was shown above it; notice: below
	resumed []shown
	docs    []reply.Document
}

type shown struct {
	t                    reply.Target
	text, prefix, notice string
}

func (s *fakeStreamer) StreamWith(ctx context.Context, t reply.Target, j reply.Journal, _ string, started func(reply.Control),
	chunks func(ctx context.Context) iter.Seq2[reply.Chunk, error], opt reply.Options) reply.Outcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started(reply.Control{Stop: cancel})
	var out reply.Outcome
	for c, err := range chunks(ctx) {
		if err != nil {
			out.Err = err
			break
		}
		out.Text += c.Text
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	line, _ := opt.Notice(out.Err)
	s.streams = append(s.streams, shown{t: t, text: out.Text, prefix: opt.Prefix, notice: line})
	return out
}

func (s *fakeStreamer) streamsTo(id int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.streams {
		if r.t.ReplyTo == id {
			n++
		}
	}
	return n
}

func (s *fakeStreamer) Notify(ctx context.Context, t reply.Target, j reply.Journal, text string) error {
	if j != nil {
		if err := j.Show(ctx, reply.Shown{Text: text, Final: true, Plain: true}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notices = append(s.notices, shown{t: t, text: text})
	return nil
}

func (s *fakeStreamer) Resume(_ context.Context, t reply.Target, _ reply.Journal, rec reply.Recorded, cut string) (string, int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumed = append(s.resumed, shown{t: t, text: rec.Text + "|" + cut})
	return rec.Text, 0, false, nil
}

func (s *fakeStreamer) SendDocument(_ context.Context, _ reply.Target, _ reply.Journal, doc reply.Document) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, doc)
	return 1, nil
}

// fakeTelegram serves files and a group's administrators, and counts the other calls.
type fakeTelegram struct {
	mu        sync.Mutex
	files     map[string][]byte
	admins    []int64
	downloads []string
	asked     int // getChatAdministrators calls
	reactions int
}

func (f *fakeTelegram) Download(_ context.Context, fileID string, limit int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downloads = append(f.downloads, fileID)
	data, ok := f.files[fileID]
	switch {
	case !ok:
		return nil, errors.New("telegram: getFile: Bad Request: wrong file_id")
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("telegram: %w", tg.ErrFileTooBig)
	}
	return data, nil
}

func (f *fakeTelegram) downloaded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.downloads)
}

func (f *fakeTelegram) GetChatAdministrators(context.Context, *tgbot.GetChatAdministratorsParams) ([]models.ChatMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	var ms []models.ChatMember
	for _, id := range f.admins {
		ms = append(ms, models.ChatMember{Type: models.ChatMemberTypeAdministrator, Administrator: &models.ChatMemberAdministrator{User: models.User{ID: id}}})
	}
	return ms, nil
}

func (f *fakeTelegram) SetMessageReaction(context.Context, *tgbot.SetMessageReactionParams) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reactions++
	return true, nil
}

func (f *fakeTelegram) reacted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reactions
}

func (f *fakeTelegram) AnswerCallbackQuery(context.Context, *tgbot.AnswerCallbackQueryParams) (bool, error) {
	return true, nil
}

func (f *fakeTelegram) EditMessageReplyMarkup(context.Context, *tgbot.EditMessageReplyMarkupParams) (*models.Message, error) {
	return &models.Message{}, nil
}

func (f *fakeTelegram) EditMessageText(context.Context, *tgbot.EditMessageTextParams) (*models.Message, error) {
	return &models.Message{}, nil
}

// fakeModel answers every request with answer, or fails with err, and records the requests.
type fakeModel struct {
	mu       sync.Mutex
	answer   string
	err      error
	list     []string
	caps     aura.Capabilities
	requests [][]aura.Message
	listed   int           // Models calls
	hold     chan struct{} // when set, each answer waits until it is closed
}

func (m *fakeModel) Chat(_ context.Context, _ string, msgs []aura.Message) iter.Seq2[aura.Chunk, error] {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, msgs)
	answer, err, hold := m.answer, m.err, m.hold
	return func(yield func(aura.Chunk, error) bool) {
		if hold != nil {
			<-hold
		}
		yield(aura.Chunk{Text: answer}, err)
	}
}

func (m *fakeModel) Models(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listed++
	return m.list, nil
}

func (m *fakeModel) HasModel(_ context.Context, model string) (bool, error) {
	return model == "unlisted", nil
}

func (m *fakeModel) Capabilities(context.Context, string) (aura.Capabilities, error) {
	return m.caps, nil
}

type fakeTranscriber struct {
	text string
	err  error
}

func (f *fakeTranscriber) Transcribe(_ context.Context, _ string, audio io.Reader) (string, error) {
	if _, err := io.ReadAll(audio); err != nil {
		return "", err
	}
	return f.text, f.err
}

type fakePacer struct{}

func (fakePacer) Wait(context.Context, int64) error { return nil }
func (fakePacer) TooMany(int64, time.Duration)      {}
func (fakePacer) OK(int64)                          {}

type fakeRegistry struct{}

func (fakeRegistry) Add(int64, int)          {}
func (fakeRegistry) Hold(int64, reply.Owner) {}

type fakeMetrics struct{}

func (fakeMetrics) ReplyStarted()                                                 {}
func (fakeMetrics) ReplyEnded(string, bool, string, time.Duration, time.Duration) {}
