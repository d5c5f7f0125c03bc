// Package telegramtest is a fake Telegram Bot API server for tests and benchmarks.
//
// It speaks the subset of the Bot API that aurabot uses (getMe, getUpdates, sendMessage,
// sendDocument (a multipart upload, kept so that tests can read it), editMessageText, editMessageReplyMarkup, deleteMessage, sendChatAction, sendMessageDraft,
// setMyCommands, deleteWebhook, setWebhook, setMessageReaction, answerCallbackQuery, getFile and
// file downloads), keeps the current text and entities of every message it has accepted and the
// last state of every draft (an empty one is Telegram's "Thinking…" placeholder), records every
// call, hands out only the kinds of update the bot asked for (allowed_updates), and answers like
// Telegram does: "message is not modified", 400 for text over 4096
// UTF-16 units, bad entities or bad inline keyboards, 400 for edits of messages the bot did not
// send or that are gone, 403 for chats marked as blocked, and 429 with retry_after when a flood
// limit is crossed (see Limits). Message ids are numbered per chat, as in Telegram. Push queues
// updates; StopGeneration presses Telegram's own Stop button of a draft; PushPhoto and its kin
// queue media messages whose files getFile and /file/ hand out
// (see SetLocalMode for telegram-bot-api --local). Proxy sits between a bot and a Server to
// inject latency, lost answers and connection resets.
//
// It is not a Telegram emulator: anything it does not know it answers with 404.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"
)

// Token is the bot token the server accepts.
const Token = "123456:TEST-token-secret"

// BotUsername is the username getMe reports.
const BotUsername = "aura_test_bot"

// BotID is the user id of the bot.
const BotID = 123456

// Call is one recorded Bot API call.
type Call struct {
	Method string
	Params map[string]string
	At     time.Time
	// Status is the HTTP-like error code the server answered (0 for success).
	Status int
}

// ChatID returns the call's chat_id parameter.
func (c Call) ChatID() int64 {
	id, _ := strconv.ParseInt(c.Params["chat_id"], 10, 64)
	return id
}

// Message is the server's view of a message the bot sent.
type Message struct {
	ID        int
	ChatID    int64
	ThreadID  int
	ReplyTo   int
	Text      string
	Entities  []models.MessageEntity
	Markup    string
	Edits     int // editMessageText calls that changed the message
	CreatedAt time.Time
	UpdatedAt time.Time // the last change of text, entities or markup
	// Document is the file of a message sent with sendDocument (its Text is empty and Caption
	// holds what goes under it); nil for a text message.
	Document *Document
	Caption  string
}

// Document is a file the bot uploaded with sendDocument.
type Document struct {
	Name string // the file name of the upload
	MIME string // its Content-Type in the upload
	Data []byte
}

// maxUpload is the largest file the Bot API takes from a bot (50 MB).
const maxUpload = 50 << 20

// Fault is an answer a test wants for a call instead of the normal one.
type Fault struct {
	Code        int
	Description string
	RetryAfter  int
}

// Server is the fake Bot API. Create it with New; it is safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu      sync.Mutex
	cond    chan struct{} // closed and replaced on every state change
	nextUpd int64
	updates []models.Update
	chats   map[int64]*chat
	calls   []Call
	blocked map[int64]bool
	admins  map[int64][]int64
	faults  func(method string, params map[string]string) *Fault
	webhook string
	limits  *flood
	drafts  map[draftKey]*Draft
	// allowed is the last allowed_updates the bot gave (getUpdates, setWebhook); nil: every kind.
	allowed map[string]bool

	nextFile int
	files    map[string]*storedFile // by file_id
	localDir string                 // "" unless in local mode

	drainEvery, requests, drains atomic.Int64 // see DrainEvery
}

// New starts a server. Close it with Close.
func New() *Server {
	s := newServer()
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func newServer() *Server {
	return &Server{
		cond:    make(chan struct{}),
		nextUpd: 1,
		chats:   map[int64]*chat{},
		blocked: map[int64]bool{},
		admins:  map[int64][]int64{},
		files:   map[string]*storedFile{},
		drafts:  map[draftKey]*Draft{},
	}
}

// Draft is the server's view of a draft (sendMessageDraft): its last state.
type Draft struct {
	ChatID   int64
	ThreadID int
	ID       int64
	Text     string // "": Telegram's "Thinking…" placeholder
	Entities []models.MessageEntity
	// CanStop and KeepOnStop are the last call's: Telegram's Stop button shows on the draft,
	// and the draft's text stays on the screen when it is pressed.
	CanStop, KeepOnStop bool
	Updates             int // sendMessageDraft calls with text
	Placeholders        int // sendMessageDraft calls without text
	// Stopped: the user pressed Stop (StopGeneration); Kept: its text stayed (keep_on_stop).
	Stopped, Kept bool
}

type draftKey struct {
	chat   int64
	thread int
	id     int64
}

// Drafts returns copies of the drafts of a chat, in no particular order.
func (s *Server) Drafts(chatID int64) []Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Draft
	for k, d := range s.drafts {
		if k.chat == chatID {
			c := *d
			c.Entities = append([]models.MessageEntity(nil), d.Entities...)
			out = append(out, c)
		}
	}
	return out
}

// StopGeneration presses Telegram's own Stop button on a draft, as the user of a private chat
// may: Telegram then sends the bot a stopped_message_generation update naming the chat, the
// topic (threadID, 0 for none) and the draft. It refuses a draft that was never shown with
// can_stop (no button to press) and returns the update's id.
func (s *Server) StopGeneration(chatID int64, threadID int, draftID int64) (int64, error) {
	s.mu.Lock()
	d := s.drafts[draftKey{chatID, threadID, draftID}]
	if d == nil || !d.CanStop {
		s.mu.Unlock()
		return 0, fmt.Errorf("telegramtest: no draft %d with a Stop button in chat %d, topic %d", draftID, chatID, threadID)
	}
	d.Stopped, d.Kept = true, d.KeepOnStop
	s.mu.Unlock()
	return s.Push(models.Update{StoppedMessageGeneration: &models.MessageGenerationStopped{
		Chat: models.Chat{ID: chatID, Type: models.ChatTypePrivate}, MessageThreadID: threadID, DraftID: int(draftID),
	}}), nil
}

// URL is the value for TELEGRAM_API_URL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetFaults installs a function that may answer a call with an error instead of handling it.
func (s *Server) SetFaults(f func(method string, params map[string]string) *Fault) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Block makes every call for chatID answer 403, as when a user has blocked the bot.
func (s *Server) Block(chatID int64) {
	s.mu.Lock()
	s.blocked[chatID] = true
	s.mu.Unlock()
}

// SetAdministrators makes getChatAdministrators of chatID answer users (the first as the
// owner).
func (s *Server) SetAdministrators(chatID int64, users ...int64) {
	s.mu.Lock()
	s.admins[chatID] = users
	s.mu.Unlock()
}

// RenumberUpdates makes the next update numbered next, as Telegram does after a week without
// updates: "the identifier of the next update will be chosen randomly instead of sequentially",
// possibly below every id given out before.
func (s *Server) RenumberUpdates(next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUpd = next
}

// DeleteUserMessage deletes message id of chatID, as its author (a user) may.
func (s *Server) DeleteUserMessage(chatID int64, id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(chatID)
	if c.user[id] {
		delete(c.user, id)
		c.deleted = append(c.deleted, id)
		s.changed()
	}
}

// Push queues an update for getUpdates and returns its update_id.
func (s *Server) Push(u models.Update) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	addMentions(u.Message) // as Telegram parses @username into entities
	u.ID = s.nextUpd
	s.nextUpd++
	s.updates = append(s.updates, u)
	s.changed()
	return u.ID
}

// chat is the server's view of one chat. As in Telegram, the messages of a chat are numbered
// densely from 1, the user's and the bot's in one sequence.
type chat struct {
	last int              // the last message id given out
	bot  map[int]*Message // the bot's messages
	user map[int]bool     // ids of incoming (user) messages
	// deleted lists the ids deleted by deleteMessage, in the order they were deleted.
	deleted []int
}

// chat returns the state of a chat, creating it. It runs with s.mu held.
func (s *Server) chat(id int64) *chat {
	c := s.chats[id]
	if c == nil {
		c = &chat{bot: map[int]*Message{}, user: map[int]bool{}}
		s.chats[id] = c
	}
	return c
}

// NewMessageID reserves the next message id in chatID for an incoming (user) message, for
// building updates to Push.
func (s *Server) NewMessageID(chatID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chat(chatID)
	c.last++
	c.user[c.last] = true
	return c.last
}

// PendingUpdates counts updates not yet confirmed by getUpdates.
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// Calls returns the recorded calls of one method ("" for all).
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns copies of the messages the bot has in a chat, oldest first.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	for id := 1; id <= c.last; id++ {
		if m, ok := c.bot[id]; ok {
			c := *m
			c.Entities = append([]models.MessageEntity(nil), m.Entities...)
			out = append(out, c)
		}
	}
	return out
}

// Deleted returns the ids of the messages deleted in a chat, in the order they were deleted.
func (s *Server) Deleted(chatID int64) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		return append([]int(nil), c.deleted...)
	}
	return nil
}

// Webhook returns the URL of the last setWebhook call ("" after deleteWebhook).
func (s *Server) Webhook() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}

// Wait blocks until cond returns true (checked after every change of the server's state) or
// ctx ends. cond runs without the server's lock held.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.cond
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("telegramtest: condition not met: %w", ctx.Err())
		case <-ch:
		}
	}
}

func (s *Server) changed() {
	close(s.cond)
	s.cond = make(chan struct{})
}

type apiResponse struct {
	OK          bool   `json:"ok"`
	Result      any    `json:"result,omitempty"`
	ErrorCode   int    `json:"error_code,omitempty"`
	Description string `json:"description,omitempty"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after,omitempty"`
	} `json:"parameters,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v apiResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, f Fault) {
	r := apiResponse{ErrorCode: f.Code, Description: f.Description}
	if f.RetryAfter > 0 {
		r.Parameters = &struct {
			RetryAfter int `json:"retry_after,omitempty"`
		}{f.RetryAfter}
	}
	writeJSON(w, f.Code, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.drain(w)
	if fp, ok := strings.CutPrefix(r.URL.Path, "/file/bot"+Token+"/"); ok && r.Method == http.MethodGet {
		s.download(w, fp)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot"+Token+"/")
	if !ok {
		fail(w, Fault{Code: 401, Description: "Unauthorized"})
		return
	}
	method := rest
	params, files, err := readParams(r)
	if err != nil {
		fail(w, Fault{Code: 400, Description: "Bad Request: " + err.Error()})
		return
	}
	if method == "getUpdates" {
		s.getUpdates(r.Context(), w, params)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Params: params, At: time.Now()}
	res, f := s.handle(method, params, files, call.At)
	if f != nil {
		call.Status = f.Code
	}
	s.calls = append(s.calls, call)
	s.changed()
	if f != nil {
		fail(w, *f)
		return
	}
	writeJSON(w, http.StatusOK, apiResponse{OK: true, Result: res})
}

// handle runs with s.mu held.
func (s *Server) handle(method string, p map[string]string, files map[string]Document, now time.Time) (any, *Fault) {
	chatID, _ := strconv.ParseInt(p["chat_id"], 10, 64)
	if s.faults != nil {
		if f := s.faults(method, p); f != nil {
			return nil, f
		}
	}
	// telegram-bot-api parses the markup before it asks Telegram, so a bad keyboard is refused
	// before any other check.
	if f := checkMarkup(p["reply_markup"]); f != nil {
		return nil, f
	}
	if chatID != 0 && s.blocked[chatID] {
		return nil, &Fault{Code: 403, Description: "Forbidden: bot was blocked by the user"}
	}
	if s.limits != nil && s.limits.counts(method) {
		if f := s.limits.check(chatID, now); f != nil {
			return nil, f
		}
	}
	switch method {
	case "getMe":
		return models.User{ID: BotID, IsBot: true, FirstName: "Aura", Username: BotUsername}, nil
	case "deleteWebhook":
		s.webhook = ""
		return true, nil
	case "setWebhook":
		s.webhook = p["url"]
		s.allow(p)
		return true, nil
	case "getFile":
		return s.getFile(p)
	case "getChatAdministrators":
		var out []map[string]any
		for i, id := range s.admins[chatID] {
			status := "administrator"
			if i == 0 {
				status = "creator"
			}
			out = append(out, map[string]any{"status": status, "user": models.User{ID: id, FirstName: "Admin"}, "is_anonymous": false})
		}
		if out == nil {
			out = []map[string]any{}
		}
		return out, nil
	case "setMyCommands", "sendChatAction", "setMessageReaction", "answerCallbackQuery":
		return true, nil
	case "sendMessageDraft":
		return s.draft(chatID, p)
	case "sendMessage":
		if f := checkText(p); f != nil {
			return nil, f
		}
		ents, f := checkEntities(p)
		if f != nil {
			return nil, f
		}
		return s.post(chatID, p, &Message{Text: p["text"], Entities: ents, Markup: p["reply_markup"], CreatedAt: now, UpdatedAt: now}), nil
	case "sendDocument":
		doc, ok := files["document"]
		switch {
		case !ok && p["document"] != "":
			return nil, &Fault{Code: 400, Description: "Bad Request: wrong file identifier/HTTP URL specified"} // only uploads here
		case !ok:
			return nil, &Fault{Code: 400, Description: "Bad Request: there is no document in the request"}
		case len(doc.Data) == 0:
			return nil, &Fault{Code: 400, Description: "Bad Request: file must be non-empty"}
		case len(doc.Data) > maxUpload:
			return nil, &Fault{Code: 413, Description: "Request Entity Too Large"}
		case len(utf16.Encode([]rune(p["caption"]))) > 1024:
			return nil, &Fault{Code: 400, Description: "Bad Request: message caption is too long"}
		}
		return s.post(chatID, p, &Message{Caption: p["caption"], Document: &doc, CreatedAt: now, UpdatedAt: now}), nil
	case "editMessageText":
		m, f := s.editable(chatID, p)
		if f != nil {
			return nil, f
		}
		if m.Document != nil {
			return nil, &Fault{Code: 400, Description: "Bad Request: there is no text in the message to edit"}
		}
		if f := checkText(p); f != nil {
			return nil, f
		}
		ents, f := checkEntities(p)
		if f != nil {
			return nil, f
		}
		if m.Text == p["text"] && sameEntities(m.Entities, ents) && m.Markup == p["reply_markup"] {
			return nil, &Fault{Code: 400, Description: notModified}
		}
		m.Text, m.Entities, m.Markup, m.UpdatedAt = p["text"], ents, p["reply_markup"], now
		m.Edits++
		return s.wire(m, true), nil
	case "editMessageReplyMarkup":
		m, f := s.editable(chatID, p)
		if f != nil {
			return nil, f
		}
		if m.Markup == p["reply_markup"] {
			return nil, &Fault{Code: 400, Description: notModified}
		}
		m.Markup, m.UpdatedAt = p["reply_markup"], now
		return s.wire(m, true), nil
	case "deleteMessage":
		id, _ := strconv.Atoi(p["message_id"])
		c := s.chat(chatID)
		switch {
		case c.bot[id] != nil:
			delete(c.bot, id)
		case c.user[id]:
			delete(c.user, id)
		default:
			return nil, &Fault{Code: 400, Description: "Bad Request: message to delete not found"}
		}
		c.deleted = append(c.deleted, id)
		return true, nil
	}
	return nil, &Fault{Code: 404, Description: "Not Found: method " + method}
}

// draft takes a sendMessageDraft call. It runs with s.mu held.
func (s *Server) draft(chatID int64, p map[string]string) (any, *Fault) {
	id, err := strconv.ParseInt(p["draft_id"], 10, 64)
	if err != nil || id == 0 {
		return nil, &Fault{Code: 400, Description: "Bad Request: draft_id must be non-zero"}
	}
	// "0-4096 characters after entities parsing": an empty text shows "Thinking…".
	if n := len(utf16.Encode([]rune(p["text"]))); n > 4096 {
		return nil, &Fault{Code: 400, Description: "Bad Request: message is too long"}
	}
	ents, f := checkEntities(p)
	if f != nil {
		return nil, f
	}
	thread, _ := strconv.Atoi(p["message_thread_id"])
	k := draftKey{chatID, thread, id}
	d := s.drafts[k]
	if d == nil {
		d = &Draft{ChatID: chatID, ThreadID: thread, ID: id}
		s.drafts[k] = d
	}
	d.Text, d.Entities = p["text"], ents
	d.CanStop, d.KeepOnStop = p["can_stop"] == "true", p["keep_on_stop"] == "true"
	if d.Text == "" {
		d.Placeholders++
	} else {
		d.Updates++
	}
	return true, nil
}

const notModified = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

// editable finds the bot's message that an edit names. It runs with s.mu held.
func (s *Server) editable(chatID int64, p map[string]string) (*Message, *Fault) {
	id, _ := strconv.Atoi(p["message_id"])
	c := s.chat(chatID)
	if c.user[id] {
		return nil, &Fault{Code: 400, Description: "Bad Request: message can't be edited"}
	}
	m := c.bot[id]
	if m == nil {
		return nil, &Fault{Code: 400, Description: "Bad Request: message to edit not found"}
	}
	return m, nil
}

// wireMessage is a message as the Bot API answers it.
type wireMessage struct {
	ID          int                    `json:"message_id"`
	ThreadID    int                    `json:"message_thread_id,omitempty"`
	From        *models.User           `json:"from,omitempty"`
	Chat        wireChat               `json:"chat"`
	Date        int64                  `json:"date"`
	EditDate    int64                  `json:"edit_date,omitempty"`
	ReplyTo     *wireMessage           `json:"reply_to_message,omitempty"`
	Text        string                 `json:"text,omitempty"`
	Entities    []models.MessageEntity `json:"entities,omitempty"`
	ReplyMarkup json.RawMessage        `json:"reply_markup,omitempty"`
	Document    *wireDocument          `json:"document,omitempty"`
	Caption     string                 `json:"caption,omitempty"`
}

type wireDocument struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MIMEType     string `json:"mime_type,omitempty"`
	FileSize     int    `json:"file_size,omitempty"`
}

type wireChat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

func chatOf(id int64) wireChat {
	if id > 0 {
		return wireChat{ID: id, Type: "private"}
	}
	return wireChat{ID: id, Type: "supergroup"}
}

func botUser() *models.User {
	return &models.User{ID: BotID, IsBot: true, FirstName: "Aura", Username: BotUsername}
}

// wire renders one of the bot's messages as Telegram answers sendMessage and the edits: with the
// message it replied to (its id and chat, and its text when it is the bot's) and the inline
// keyboard it carries. It runs with s.mu held.
// post gives m the next id of chatID, the topic and the message it replies to from p, and keeps
// it as the bot's.
func (s *Server) post(chatID int64, p map[string]string, m *Message) wireMessage {
	c := s.chat(chatID)
	c.last++
	m.ID, m.ChatID = c.last, chatID
	m.ThreadID, _ = strconv.Atoi(p["message_thread_id"])
	m.ReplyTo, _ = strconv.Atoi(p["reply_to_message_id"])
	if rp := p["reply_parameters"]; rp != "" {
		var v models.ReplyParameters
		_ = json.Unmarshal([]byte(rp), &v)
		m.ReplyTo = v.MessageID
	}
	c.bot[m.ID] = m
	return s.wire(m, false)
}

func (s *Server) wire(m *Message, edited bool) wireMessage {
	w := wireMessage{
		ID: m.ID, ThreadID: m.ThreadID, From: botUser(), Chat: chatOf(m.ChatID),
		Date: m.CreatedAt.Unix(), Text: m.Text, Entities: m.Entities, ReplyMarkup: inlineKeyboard(m.Markup),
	}
	if edited {
		w.EditDate = m.UpdatedAt.Unix()
	}
	if d := m.Document; d != nil {
		id := fmt.Sprintf("doc-%d-%d", m.ChatID, m.ID)
		w.Document = &wireDocument{FileID: id, FileUniqueID: id, FileName: d.Name, MIMEType: d.MIME, FileSize: len(d.Data)}
		w.Caption = m.Caption
	}
	if m.ReplyTo != 0 {
		r := &wireMessage{ID: m.ReplyTo, Chat: w.Chat}
		if b := s.chat(m.ChatID).bot[m.ReplyTo]; b != nil {
			r.From, r.Date, r.Text, r.Entities = botUser(), b.CreatedAt.Unix(), b.Text, b.Entities
		}
		w.ReplyTo = r
	}
	return w
}

// inlineKeyboard returns the inline keyboard of a reply_markup parameter, as Telegram echoes it
// in a message (other kinds of markup are not part of a message), or nil.
func inlineKeyboard(markup string) json.RawMessage {
	var v struct {
		InlineKeyboard json.RawMessage `json:"inline_keyboard"`
	}
	if markup == "" || json.Unmarshal([]byte(markup), &v) != nil || len(v.InlineKeyboard) == 0 || string(v.InlineKeyboard) == "null" {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

func checkText(p map[string]string) *Fault {
	t := p["text"]
	n := len(utf16.Encode([]rune(t)))
	if strings.TrimSpace(t) == "" {
		return &Fault{Code: 400, Description: "Bad Request: message text is empty"}
	}
	if n > 4096 {
		return &Fault{Code: 400, Description: "Bad Request: message is too long"}
	}
	return nil
}

// checkEntities rejects entities outside the text or not on UTF-16 boundaries, as Telegram does.
func checkEntities(p map[string]string) ([]models.MessageEntity, *Fault) {
	raw := p["entities"]
	if raw == "" {
		return nil, nil
	}
	var ents []models.MessageEntity
	if err := json.Unmarshal([]byte(raw), &ents); err != nil {
		return nil, &Fault{Code: 400, Description: "Bad Request: can't parse entities JSON object"}
	}
	u := utf16.Encode([]rune(p["text"]))
	for _, e := range ents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > len(u) {
			return nil, &Fault{Code: 400, Description: "Bad Request: can't parse entities: entity beyond the end of the text"}
		}
		if utf16.IsSurrogate(rune(u[e.Offset])) && e.Offset > 0 && isHigh(u[e.Offset-1]) {
			return nil, &Fault{Code: 400, Description: "Bad Request: can't parse entities: entity starts inside a character"}
		}
	}
	return ents, nil
}

func isHigh(c uint16) bool { return c >= 0xD800 && c < 0xDC00 }

func sameEntities(a, b []models.MessageEntity) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Offset != b[i].Offset || a[i].Length != b[i].Length ||
			a[i].URL != b[i].URL || a[i].Language != b[i].Language {
			return false
		}
	}
	return true
}

func (s *Server) getUpdates(ctx context.Context, w http.ResponseWriter, p map[string]string) {
	offset, _ := strconv.ParseInt(p["offset"], 10, 64)
	timeout, _ := strconv.Atoi(p["timeout"])
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	s.mu.Lock()
	s.allow(p)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		// Confirm everything below offset, as Telegram does, and drop the kinds of update the
		// bot did not ask for: Telegram never sends them.
		kept := s.updates[:0]
		for _, u := range s.updates {
			if u.ID >= offset && (s.allowed == nil || s.allowed[updateKind(u)]) {
				kept = append(kept, u)
			}
		}
		if len(kept) != len(s.updates) {
			s.updates = kept
			s.changed()
		}
		out := append([]models.Update(nil), s.updates...)
		ch := s.cond
		s.mu.Unlock()
		if len(out) > 0 || timeout == 0 {
			writeJSON(w, http.StatusOK, apiResponse{OK: true, Result: out})
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			writeJSON(w, http.StatusOK, apiResponse{OK: true, Result: []models.Update{}})
			return
		case <-ctx.Done():
			return
		}
	}
}

// allow takes the allowed_updates of a getUpdates or setWebhook call: a list replaces the one
// before; an empty list means every kind; none keeps the one before, as in Telegram. It runs
// with s.mu held.
func (s *Server) allow(p map[string]string) {
	raw, ok := p["allowed_updates"]
	if !ok {
		return
	}
	var kinds []string
	if json.Unmarshal([]byte(raw), &kinds) != nil {
		return
	}
	if len(kinds) == 0 {
		s.allowed = nil
		return
	}
	s.allowed = map[string]bool{}
	for _, k := range kinds {
		s.allowed[k] = true
	}
}

// AllowedUpdates returns the kinds of update the bot asked for last (nil: every kind).
func (s *Server) AllowedUpdates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allowed == nil {
		return nil
	}
	out := make([]string, 0, len(s.allowed))
	for k := range s.allowed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// updateKind is the kind of an update, as allowed_updates names it: "message", "callback_query"…
func updateKind(u models.Update) string {
	b, _ := json.Marshal(u)
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(b, &fields)
	for k := range fields {
		if k != "update_id" {
			return k
		}
	}
	return ""
}

// readParams flattens a multipart, urlencoded or JSON request into strings: nested values stay
// JSON, as go-telegram/bot sends them. The files of a multipart upload (parts with a file name)
// come apart, by field.
func readParams(r *http.Request) (map[string]string, map[string]Document, error) {
	out := map[string]string{}
	files := map[string]Document{}
	ct, ps, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxUpload+1<<20))
		if err != nil || len(body) == 0 {
			return out, files, err // go-telegram/bot sends an empty body for calls without parameters
		}
		mr := multipart.NewReader(bytes.NewReader(body), ps["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return out, files, nil
			}
			if err != nil {
				return nil, nil, err
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return nil, nil, err
			}
			if name := part.FileName(); name != "" {
				files[part.FormName()] = Document{Name: name, MIME: part.Header.Get("Content-Type"), Data: b}
				continue
			}
			out[part.FormName()] = string(b)
		}
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, nil, err
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else {
				out[k] = string(v)
			}
		}
		return out, files, nil
	default:
		if err := r.ParseForm(); err != nil {
			return nil, nil, err
		}
		for k := range r.Form {
			out[k] = r.Form.Get(k)
		}
		return out, files, nil
	}
}
