package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/aura/browser"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// fakeAura is an Aura (chatbot-ui) server that records requests and streams scripted replies.
type fakeAura struct {
	srv *httptest.Server

	mu    sync.Mutex
	reqs  []auraRequest
	reply func(w http.ResponseWriter, flush func(), req auraRequest)

	// The openai dialect's extras: the models GET /v1/models lists, those that can see
	// images (any other answers a request with one 400, as vLLM does), and speech to text.
	models      []string
	vision      map[string]bool
	transcripts []transcription
	transcribe  func(t transcription) (int, string) // status and body of the answer

	// ollama, when set, makes the openai dialect Ollama's (see ollamaFake).
	ollama *ollamaFake
	// usage, when set, is the count an openai answer reports (when asked for it, and the
	// server is not Ollama): the request's prompt tokens and the answer's completion tokens.
	usage func(req auraRequest) (prompt, completion int)
}

// ollamaFake is what an Ollama server (0.24) does beyond the openai routes: GET /api/version;
// POST /api/show with each model's capabilities (a name without a tag is the ":latest" one,
// any other is 404 "model 'x' not found", as is a chat request for it); pictures taken by any
// model, seeing or not, without a word; the prompt counted with its chat template (TemplatePer
// tokens around each message, Priming to start the answer), the request cut silently to NumCtx
// (the system prompt and the newest messages that fit stay: "truncating input messages which
// exceed context length"), and the count reported as usage.prompt_tokens when asked with
// stream_options.include_usage.
type ollamaFake struct {
	Caps        map[string][]string // by name with its tag
	NumCtx      int                 // 0: no limit
	TemplatePer int
	Priming     int
	Shown       int // /api/show requests
}

// known returns the name with its tag, and whether the fake has that model.
func (o *ollamaFake) known(name string) (string, bool) {
	if !strings.Contains(name, ":") {
		name += ":latest"
	}
	_, ok := o.Caps[name]
	return name, ok
}

// cl100kSpecial are cl100k_base's special tokens: a chatbot-ui server's tiktoken throws on any
// of them in a text, and the server answers 500.
var cl100kSpecial = []string{"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"}

func hasSpecial(s string) bool {
	for _, tok := range cl100kSpecial {
		if strings.Contains(s, tok) {
			return true
		}
	}
	return false
}

// transcription is one POST /v1/audio/transcriptions the fake received.
type transcription struct {
	Auth, Model, FileName string
	Audio                 []byte
}

type auraRequest struct {
	Model struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		MaxLength  int    `json:"maxLength"`
		TokenLimit int    `json:"tokenLimit"`
	} `json:"model"`
	Messages    []aura.Message `json:"messages"`
	Key         string         `json:"key"`
	Prompt      string         `json:"prompt"`
	Temperature float64        `json:"temperature"`

	ctx       context.Context // the server-side request's context
	at        time.Time       // when it arrived
	openai    bool
	userAgent string

	// What the server made of the request by its own count: the messages it would drop to
	// fit (chatbot-ui: tokens + 1000 > tokenLimit; Ollama: NumCtx) and, for Ollama, the prompt
	// tokens with its template.
	dropped      int
	promptTokens int
	wantUsage    bool
}

// chatbotUIDropped counts the messages a chatbot-ui server drops to fit: it counts the prompt,
// then the messages newest first in cl100k_base tokens, and stops at the first for which
// tokens + 1000 > tokenLimit.
func chatbotUIDropped(req auraRequest) int {
	n := history.CountTokens(req.Prompt)
	for i := len(req.Messages) - 1; i >= 0; i-- {
		t := history.CountTokens(req.Messages[i].Content)
		if n+t+1000 > req.Model.TokenLimit {
			return i + 1
		}
		n += t
	}
	return 0
}

// sseWriter turns each Write into an OpenAI chat-completions chunk event.
type sseWriter struct {
	w          http.ResponseWriter
	usage      *int // the prompt tokens to report at the end, if asked
	completion int  // the completion tokens reported with them; 0 reports 1
}

func (s *sseWriter) Header() http.Header  { return s.w.Header() }
func (s *sseWriter) WriteHeader(code int) { s.w.WriteHeader(code) }
func (s *sseWriter) Flush()               { s.w.(http.Flusher).Flush() }
func (s *sseWriter) Write(p []byte) (int, error) {
	chunk, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": string(p)}}}})
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", chunk); err != nil {
		return 0, err
	}
	return len(p), nil
}

// reason writes a chunk of a reasoning model's thinking in field: reasoning_content (llama.cpp,
// vLLM, DeepSeek) or reasoning (Ollama, OpenRouter).
func (s *sseWriter) reason(field, text string) {
	chunk, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{field: text}}}})
	fmt.Fprintf(s.w, "data: %s\n\n", chunk)
}

func (s *sseWriter) done() {
	fmt.Fprint(s.w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	if s.usage != nil {
		// As OpenAI, vLLM and Ollama send it: a last chunk without choices.
		completion := max(s.completion, 1)
		fmt.Fprintf(s.w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", *s.usage, completion, *s.usage+completion)
	}
	fmt.Fprint(s.w, "data: [DONE]\n\n")
}

func newFakeAura(t *testing.T) *fakeAura {
	f := &fakeAura{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := auraRequest{ctx: r.Context(), userAgent: r.UserAgent()}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/chat":
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, "Error", http.StatusBadRequest)
				return
			}
			special := hasSpecial(req.Prompt)
			for _, m := range req.Messages {
				special = special || hasSpecial(m.Content)
			}
			if special {
				// tiktoken's encode throws "The text contains a special token that is not
				// allowed"; the route's catch answers 500 with the body "Error".
				f.mu.Lock()
				f.reqs = append(f.reqs, req)
				f.mu.Unlock()
				http.Error(w, "Error", http.StatusInternalServerError)
				return
			}
			req.dropped = chatbotUIDropped(req)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
			// The OpenAI dialect: record it in the same shape, answer in server-sent events.
			var body struct {
				Model         string          `json:"model"`
				Messages      []openAIMessage `json:"messages"`
				Temperature   float64         `json:"temperature"`
				Stream        bool            `json:"stream"`
				StreamOptions struct {
					IncludeUsage bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !body.Stream {
				http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
				return
			}
			req.Model.ID, req.Temperature, req.openai = body.Model, body.Temperature, true
			req.wantUsage = body.StreamOptions.IncludeUsage
			f.mu.Lock()
			o := f.ollama
			f.mu.Unlock()
			if o != nil {
				if _, ok := o.known(body.Model); !ok {
					f.mu.Lock()
					f.reqs = append(f.reqs, req)
					f.mu.Unlock()
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusNotFound)
					msg, _ := json.Marshal(fmt.Sprintf("model %q not found, try pulling it first", body.Model))
					fmt.Fprintf(w, `{"error":{"message":%s,"type":"api_error","param":null,"code":null}}`, msg)
					return
				}
			}
			images := false
			for _, wm := range body.Messages {
				m, err := wm.decode()
				if err != nil {
					http.Error(w, `{"error":{"message":"bad content"}}`, http.StatusBadRequest)
					return
				}
				images = images || len(m.Images) > 0
				if m.Role == "system" {
					req.Prompt = m.Content
				} else {
					req.Messages = append(req.Messages, m)
				}
			}
			if o != nil {
				// Ollama's count, template included; it keeps the system prompt and the
				// newest messages that fit num_ctx.
				counts := make([]int, len(body.Messages))
				for i, wm := range body.Messages {
					m, _ := wm.decode()
					counts[i] = history.CountTokens(m.Content) + o.TemplatePer
					req.promptTokens += counts[i]
				}
				req.promptTokens += o.Priming
				if o.NumCtx > 0 && req.promptTokens > o.NumCtx {
					n := o.Priming + counts[0]
					for i := len(counts) - 1; i > 0; i-- {
						if n+counts[i] > o.NumCtx {
							req.dropped = i
							break
						}
						n += counts[i]
					}
				}
			}
			f.mu.Lock()
			blind := images && !f.vision[body.Model] && o == nil // Ollama takes any picture
			f.mu.Unlock()
			if blind {
				f.mu.Lock()
				f.reqs = append(f.reqs, req)
				f.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":{"message":"model does not support image input"}}`)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			sw := &sseWriter{w: w}
			if o != nil && req.wantUsage {
				sw.usage = &req.promptTokens
			}
			f.mu.Lock()
			counts := f.usage
			f.mu.Unlock()
			if o == nil && counts != nil && req.wantUsage {
				p, c := counts(req)
				sw.usage, sw.completion = &p, c
			}
			w = sw
			defer sw.done()
		case r.Method == http.MethodGet && r.URL.Path == "/api/version":
			f.mu.Lock()
			o := f.ollama
			f.mu.Unlock()
			if o == nil {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, `{"version":"0.24.0"}`)
			return
		case r.Method == http.MethodPost && r.URL.Path == "/api/show":
			var show struct{ Model string }
			_ = json.NewDecoder(r.Body).Decode(&show)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.ollama == nil {
				http.NotFound(w, r)
				return
			}
			f.ollama.Shown++
			name, ok := f.ollama.known(show.Model)
			w.Header().Set("Content-Type", "application/json")
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprintf(w, `{"error":"model '%s' not found"}`, show.Model)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{
				"license": "...", "modelfile": "# Modelfile", "template": "{{ .Prompt }}",
				"details": map[string]string{"format": "gguf", "family": "llama"}, "capabilities": f.ollama.Caps[name],
			})
			return
		case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
			f.mu.Lock()
			var list struct {
				Data []map[string]string `json:"data"`
			}
			for _, id := range f.models {
				list.Data = append(list.Data, map[string]string{"id": id, "object": "model"})
			}
			f.mu.Unlock()
			_ = json.NewEncoder(w).Encode(list)
			return
		case r.Method == http.MethodPost && r.URL.Path == "/v1/audio/transcriptions":
			tr := transcription{Auth: r.Header.Get("Authorization"), Model: r.FormValue("model")}
			file, hdr, err := r.FormFile("file")
			if err != nil {
				http.Error(w, `{"error":{"message":"no file"}}`, http.StatusBadRequest)
				return
			}
			tr.FileName = hdr.Filename
			tr.Audio, _ = io.ReadAll(file)
			f.mu.Lock()
			f.transcripts = append(f.transcripts, tr)
			answer := f.transcribe
			f.mu.Unlock()
			code, body := answer(tr)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprint(w, body)
			return
		default:
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		req.at = time.Now()
		f.reqs = append(f.reqs, req)
		reply := f.reply
		f.mu.Unlock()
		flush := func() { w.(http.Flusher).Flush() }
		reply(w, flush, req)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// openAIMessage is a chat message as the openai dialect sends it: content is a string, or a
// list of text and image_url parts.
type openAIMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// decode turns the message back into an aura.Message, images included.
func (m openAIMessage) decode() (aura.Message, error) {
	out := aura.Message{Role: m.Role}
	if err := json.Unmarshal(m.Content, &out.Content); err == nil {
		return out, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return out, err
	}
	for _, p := range parts {
		switch p.Type {
		case "text":
			out.Content += p.Text
		case "image_url":
			mime, data, ok := strings.Cut(strings.TrimPrefix(p.ImageURL.URL, "data:"), ";base64,")
			if !ok {
				return out, fmt.Errorf("image URL %.40q is not a base64 data URL", p.ImageURL.URL)
			}
			raw, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return out, err
			}
			out.Images = append(out.Images, aura.Image{MIME: mime, Data: raw})
		default:
			return out, fmt.Errorf("unknown part %q", p.Type)
		}
	}
	return out, nil
}

func (f *fakeAura) transcriptions() []transcription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]transcription(nil), f.transcripts...)
}

func (f *fakeAura) requests() []auraRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]auraRequest(nil), f.reqs...)
}

// harness runs the real program (run, as main calls it) against fake Telegram and Aura servers.
type harness struct {
	t    *testing.T
	tg   *telegramtest.Server
	aura *fakeAura
	db   string
	stop func()
	logs *syncBuffer // the logs of the last start
}

const userID = 4242

func newHarness(t *testing.T) *harness {
	tg := telegramtest.New()
	t.Cleanup(tg.Close)
	h := &harness{t: t, tg: tg, aura: newFakeAura(t), db: filepath.Join(t.TempDir(), "data", "bot.db")}
	return h
}

func (h *harness) start(extra ...string) {
	h.t.Helper()
	environ := append([]string{
		"TELEGRAM_TOKEN=" + telegramtest.Token,
		"TELEGRAM_API_URL=" + h.tg.URL(),
		"AURA_URL=" + h.aura.srv.URL,
		"DATABASE_PATH=" + h.db,
		"ALLOWED_USERS=" + strconv.Itoa(userID),
		"LOG_LEVEL=debug",
		"LISTEN_ADDR=127.0.0.1:0",
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	h.logs = logs
	before := len(h.tg.Calls("setMyCommands"))
	go func() { done <- run(ctx, environ, filepath.Join(h.t.TempDir(), "none.env"), logs) }()
	h.stop = func() {
		h.t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Fatalf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Fatal("the bot did not stop within 30s")
		}
		if strings.Contains(logs.String(), telegramtest.Token) {
			h.t.Fatal("the logs contain the bot token")
		}
	}
	h.t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			cancel()
			<-done
		}
	})
	// The bot is up once it has registered its commands.
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > before })
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

func (h *harness) wait(cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.tg.Wait(ctx, cond); err != nil {
		h.t.Fatal(err)
	}
}

// send delivers a private message from the allowed user and returns its message id.
func (h *harness) send(text string) int {
	id := h.tg.NewMessageID(userID)
	h.tg.Push(models.Update{Message: &models.Message{
		ID:   id,
		Date: int(time.Now().Unix()),
		Chat: models.Chat{ID: userID, Type: models.ChatTypePrivate},
		From: &models.User{ID: userID, FirstName: "Ann"},
		Text: text,
	}})
	return id
}

// replyTo waits for the bot's final message answering message id and returns it.
func (h *harness) replyTo(id int) telegramtest.Message {
	h.t.Helper()
	var got telegramtest.Message
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == id && !strings.HasSuffix(m.Text, "▍") && m.Markup == "" {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// streamText replies with the chunks, flushing each.
func streamText(chunks ...string) func(http.ResponseWriter, func(), auraRequest) {
	return func(w http.ResponseWriter, flush func(), _ auraRequest) {
		for _, c := range chunks {
			_, _ = w.Write([]byte(c))
			flush()
		}
	}
}

func TestEndToEnd(t *testing.T) {
	for _, protocol := range []string{"chatbot-ui", "openai"} {
		t.Run(protocol, func(t *testing.T) { testEndToEnd(t, protocol) })
	}
}

func testEndToEnd(t *testing.T, protocol string) {
	h := newHarness(t)
	extra := []string{"AURA_PROTOCOL=" + protocol}
	model := "openchat_3.6"
	if protocol == "openai" {
		model = "llama3.1:8b"
		extra = append(extra, "AURA_MODEL="+model)
	}

	// The first answer streams in three steps, each waiting until Telegram shows the last one,
	// so the test sees the message posted and then edited while the stream is still open.
	h.aura.reply = func(w http.ResponseWriter, flush func(), _ auraRequest) {
		_, _ = w.Write([]byte("Hello"))
		flush()
		h.wait(func() bool { return len(h.tg.Calls("sendMessage")) >= 1 })
		_, _ = w.Write([]byte(" there, "))
		flush()
		h.wait(func() bool {
			for _, c := range h.tg.Calls("editMessageText") {
				if strings.HasSuffix(c.Params["text"], "▍") {
					return true
				}
			}
			return false
		})
		_, _ = w.Write([]byte("friend. Ünïcødé ✓"))
		flush()
	}
	h.start(extra...)

	if got := h.tg.Webhook(); got != "" {
		t.Errorf("webhook after start: got %q, want it deleted", got)
	}
	if n := len(h.tg.Calls("deleteWebhook")); n != 1 {
		t.Errorf("deleteWebhook calls: got %d, want 1", n)
	}

	first := h.send("hi")
	msg := h.replyTo(first)
	if want := "Hello there, friend. Ünïcødé ✓"; msg.Text != want {
		t.Fatalf("final text: got %q, want %q", msg.Text, want)
	}
	if msg.Edits < 2 {
		t.Errorf("edits: got %d, want at least one while streaming and the final one", msg.Edits)
	}
	if n := len(h.tg.Calls("sendMessage")); n != 1 {
		t.Errorf("sendMessage calls: got %d, want 1 (one reply, edited in place)", n)
	}
	reqs := h.aura.requests()
	if len(reqs) != 1 {
		t.Fatalf("aura requests: got %d, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Prompt != "You are a helpful assistant." || r.Model.ID != model || r.Temperature != 0.5 || r.openai != (protocol == "openai") {
		t.Errorf("first request: got %+v, want the default prompt and model %s over %s", r, model, protocol)
	}
	if protocol == "chatbot-ui" && (r.Model.MaxLength != 24576 || r.Model.TokenLimit != 8192 || r.Model.Name != "OpenChat 3.6 (latest)") {
		t.Errorf("first request: got model %+v, want the configured maxLength, tokenLimit and name", r.Model)
	}
	if !equalMessages(r.Messages, []aura.Message{{Role: "user", Content: "hi"}}) {
		t.Errorf("first messages: got %+v, want [user: hi]", r.Messages)
	}

	// The history goes with the next message.
	h.aura.reply = streamText("Second ", "answer.")
	second := h.send("and now?")
	if got := h.replyTo(second).Text; got != "Second answer." {
		t.Fatalf("second reply: got %q", got)
	}
	r = h.aura.requests()[1]
	wantMsgs := []aura.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hello there, friend. Ünïcødé ✓"}, {Role: "user", Content: "and now?"}}
	if !equalMessages(r.Messages, wantMsgs) {
		t.Errorf("second messages: got %+v, want %+v", r.Messages, wantMsgs)
	}

	// /system changes the prompt Aura receives.
	sys := h.send("/system You are a pirate.")
	h.wait(func() bool { return hasReply(h.tg, sys, "System prompt set") })
	h.aura.reply = streamText("Arr.")
	third := h.send("who are you?")
	h.replyTo(third)
	if got := h.aura.requests()[2].Prompt; got != "You are a pirate." {
		t.Errorf("prompt after /system: got %q, want %q", got, "You are a pirate.")
	}
	show := h.send("/system")
	h.wait(func() bool { return hasReply(h.tg, show, "You are a pirate.") })

	// Restart on the same database: history and prompt survive.
	h.stop()
	h.start(extra...)
	fourth := h.send("still there?")
	h.replyTo(fourth)
	r = h.aura.requests()[3]
	if r.Prompt != "You are a pirate." {
		t.Errorf("prompt after restart: got %q", r.Prompt)
	}
	if len(r.Messages) != 7 || r.Messages[0].Content != "hi" || r.Messages[6].Content != "still there?" {
		t.Errorf("messages after restart: got %d %+v, want the 7 turns so far", len(r.Messages), r.Messages)
	}

	// /reset empties the history except the new message.
	reset := h.send("/reset")
	h.wait(func() bool { return hasReply(h.tg, reset, "forgot") })
	h.aura.reply = streamText("Fresh start.")
	fifth := h.send("hello again")
	h.replyTo(fifth)
	r = h.aura.requests()[4]
	if len(r.Messages) != 1 || r.Messages[0].Content != "hello again" {
		t.Errorf("messages after /reset: got %+v, want only the new one", r.Messages)
	}
	if r.Prompt != "You are a pirate." {
		t.Errorf("prompt after /reset: got %q, want it kept", r.Prompt)
	}
	h.stop()
}

func hasReply(tg *telegramtest.Server, to int, substr string) bool {
	for _, m := range tg.Messages(userID) {
		if m.ReplyTo == to && strings.Contains(m.Text, substr) {
			return true
		}
	}
	return false
}

func equalMessages(a, b []aura.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		// Message holds a slice (Images) and is not comparable.
		if a[i].Role != b[i].Role || a[i].Content != b[i].Content || len(a[i].Images) != len(b[i].Images) {
			return false
		}
	}
	return true
}

// TestMain lets a test run the real program in a subprocess, to kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("AURABOT_TEST_MAIN") == "1" {
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("AURABOT_TEST_ARGS"))...)
		main()
		return
	}
	os.Exit(m.Run())
}

// A bot killed with SIGKILL mid-reply loses nothing: after the restart the cut reply carries an
// "interrupted" notice, the message that was waiting is answered exactly once, and no user turn
// is stored twice.
func TestKilledMidReplyLosesNothing(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		last := req.Messages[len(req.Messages)-1].Content
		if last == "first" {
			_, _ = w.Write([]byte("Partial answer"))
			flush()
			<-release // never finishes while the first process lives
			return
		}
		_, _ = w.Write([]byte("Answer to " + last))
	}
	defer close(release)

	environ := append(os.Environ(),
		"AURABOT_TEST_MAIN=1",
		"TELEGRAM_TOKEN="+telegramtest.Token,
		"TELEGRAM_API_URL="+h.tg.URL(),
		"AURA_URL="+h.aura.srv.URL,
		"DATABASE_PATH="+h.db,
		"ALLOWED_USERS="+strconv.Itoa(userID),
		"LISTEN_ADDR=127.0.0.1:0",
	)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = environ
	cmd.Dir = t.TempDir() // no .env there
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.wait(func() bool { return len(h.tg.Calls("setMyCommands")) > 0 })

	first := h.send("first")
	h.wait(func() bool { return hasReply(h.tg, first, "Partial answer") })
	second := h.send("second")
	// The second message is received (and confirmed to Telegram) while the first streams.
	h.wait(func() bool { return len(h.tg.Calls("setMessageReaction")) > 0 && h.tg.PendingUpdates() == 0 })
	// Give the reply's progress a moment to be recorded, as it is after every edit.
	deadline := time.Now().Add(10 * time.Second)
	for !recorded(t, h.db, "Partial answer") {
		if time.Now().After(deadline) {
			t.Fatal("the reply's progress was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.Contains(stderr.String(), telegramtest.Token) {
		t.Error("the subprocess logged the token")
	}

	h.start()
	got := h.replyTo(first)
	if !strings.HasPrefix(got.Text, "Partial answer") || !strings.Contains(got.Text, "Interrupted") || !strings.Contains(got.Text, "/retry") {
		t.Errorf("first reply after restart: got %q, want the partial text and an interrupted notice", got.Text)
	}
	if got := h.replyTo(second).Text; got != "Answer to second" {
		t.Errorf("second reply: got %q, want %q", got, "Answer to second")
	}
	h.stop()

	answers := 0
	for _, m := range h.tg.Messages(userID) {
		if m.ReplyTo == second {
			answers++
		}
	}
	if answers != 1 {
		t.Errorf("replies to the second message: got %d, want exactly 1", answers)
	}
	reqs := h.aura.requests()
	last := reqs[len(reqs)-1].Messages
	want := []string{"first", "Partial answer\n\n[this answer was cut off]", "second"}
	if len(last) != len(want) {
		t.Fatalf("messages sent for the second: got %+v, want %q", last, want)
	}
	for i := range want {
		if last[i].Content != want[i] {
			t.Errorf("message %d: got %q, want %q", i, last[i].Content, want[i])
		}
	}
}

// waitStored waits until the user's conversation holds n turns, the last an answer.
func (h *harness) waitStored(n int) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		store, err := history.Open(context.Background(), h.db)
		if err == nil {
			turns, _ := store.Turns(context.Background(), history.Key{ChatID: userID})
			store.Close()
			if len(turns) >= n && turns[len(turns)-1].Role == history.RoleAssistant {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the conversation never held %d turns", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorded reports whether the inbox holds a streaming reply showing text.
func recorded(t *testing.T, path, text string) bool {
	store, err := history.Open(context.Background(), path)
	if err != nil {
		return false
	}
	defer store.Close()
	pending, err := store.Inbox().Pending(context.Background())
	if err != nil {
		return false
	}
	for _, p := range pending {
		if p.Reply.Text == text && len(p.Reply.Parts) > 0 {
			return true
		}
	}
	return false
}

// SIGTERM lets a reply finish for SHUTDOWN_TIMEOUT, then marks it interrupted; the restart does
// not answer it again.
func TestShutdownInterruptsSlowReplies(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		_, _ = w.Write([]byte("Slow start"))
		flush()
		<-req.ctx.Done()
	}
	h.start("SHUTDOWN_TIMEOUT=300ms")
	id := h.send("hi")
	h.wait(func() bool { return hasReply(h.tg, id, "Slow start") })
	h.stop()
	got := h.replyTo(id)
	if !strings.HasPrefix(got.Text, "Slow start") || !strings.Contains(got.Text, "Interrupted") {
		t.Fatalf("after shutdown: got %q, want the text and an interrupted notice", got.Text)
	}
	h.aura.reply = streamText("unused")
	h.start()
	next := h.send("next")
	h.replyTo(next)
	h.stop()
	if n := len(h.aura.requests()); n != 2 {
		t.Errorf("aura requests: got %d, want 2 (the interrupted message is not asked again)", n)
	}
}

func TestHealthcheckFlag(t *testing.T) {
	status, body := http.StatusOK, "ok"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body + "\n"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	none := filepath.Join(t.TempDir(), "none.env")
	check := func(listen string) error {
		var out bytes.Buffer
		return command(context.Background(), []string{"-healthcheck"}, []string{"LISTEN_ADDR=" + listen}, none, &out, &out)
	}

	if err := check(addr); err != nil {
		t.Errorf("healthy, LISTEN_ADDR=%s: got %v, want success", addr, err)
	}
	if err := check(":" + port); err != nil {
		t.Errorf("healthy, LISTEN_ADDR=:%s (all interfaces, checked on loopback): got %v, want success", port, err)
	}
	status, body = http.StatusServiceUnavailable, "database: history: ping: sql: database is closed"
	if err := check(addr); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("unhealthy: got %v, want an error with the status and the reason", err)
	}
	if err := check(""); err == nil || !strings.Contains(err.Error(), "LISTEN_ADDR") {
		t.Errorf("LISTEN_ADDR empty: got %v, want an error naming it", err)
	}
}

// -backup copies the database of a bot that is running (in another process, as far as SQLite can
// tell: it holds its own connections to the file) and refuses to overwrite.
func TestBackupFlagWhileTheBotRuns(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("Backed-up answer.")
	h.start()
	h.replyTo(h.send("remember this"))
	h.waitStored(2)

	backup := func(path string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "AURABOT_TEST_MAIN=1", "AURABOT_TEST_ARGS=-backup "+path, "DATABASE_PATH="+h.db)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if out, err := backup(path); err != nil {
		t.Fatalf("-backup: %v: %s", err, out)
	}
	if out, err := backup(path); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("-backup over an existing file: got %v: %s, want a refusal", err, out)
	}
	h.stop()

	store, err := history.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer store.Close()
	turns, err := store.Turns(context.Background(), history.Key{ChatID: userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 2 || turns[0].Content != "remember this" || turns[1].Content != "Backed-up answer." {
		t.Errorf("turns in the backup: got %+v, want the exchange", turns)
	}
}

// LOG_FORMAT=json writes JSON lines; at info a reply is one line without its text.
func TestJSONLogs(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("A confidential answer.")
	h.start("LOG_FORMAT=json", "LOG_LEVEL=info")
	h.replyTo(h.send("a private question"))
	h.stop()
	logs := h.logs

	replies := 0
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if rec["msg"] == "reply" {
			replies++
			if rec["outcome"] != "done" || rec["chars"] != float64(len("A confidential answer.")) {
				t.Errorf("reply line: got %v, want outcome done and the answer's length", rec)
			}
		}
	}
	if replies != 1 {
		t.Errorf("reply lines: got %d, want 1", replies)
	}
	for _, secret := range []string{"confidential", "private question", telegramtest.Token} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
}

func TestBrowserCaptureFailureIsReported(t *testing.T) {
	h := newHarness(t)
	h.aura.reply = streamText("never sent")
	// An executable that dies at once, like a browser that crashes on start (a missing one is
	// refused by the configuration check instead).
	crasher := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(crasher, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.start("AURA_BROWSER=" + crasher)
	msg := h.replyTo(h.send("hi"))
	if !strings.Contains(msg.Text, "⚠️") {
		t.Errorf("got reply %q, want a failure notice", msg.Text)
	}
	if n := len(h.aura.requests()); n != 0 {
		t.Errorf("got %d model requests, want none without the browser's cookies", n)
	}
	h.stop()
	if logs := h.logs.String(); !strings.Contains(logs, "browser: capture failed") {
		t.Errorf("got logs %q, want the capture failure", logs)
	}
}

func TestBrowserCaptureWiring(t *testing.T) {
	if _, err := browser.Find(browser.Auto); err != nil {
		t.Skipf("SKIP: the bot's browser capture is not tested: %v", err)
	}
	// Chromium inherits nothing of the bot's environment but gets a TMPDIR of its own inside
	// the bot's: a unique one finds its processes afterwards.
	mark := browserMark(t)
	h := newHarness(t)
	h.aura.reply = streamText("Hello ", "from the model.")
	h.start("AURA_BROWSER=auto")
	if msg := h.replyTo(h.send("hi")); msg.Text != "Hello from the model." {
		t.Errorf("got reply %q, want the model's", msg.Text)
	}
	reqs := h.aura.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d model requests, want 1", len(reqs))
	}
	if ua := reqs[0].userAgent; ua == aura.DefaultUserAgent || !strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Headless") {
		t.Errorf("got User-Agent %q, want the browser's, as a desktop Chrome", ua)
	}
	h.stop()
	if logs := h.logs.String(); !strings.Contains(logs, "browser: captured cookies") {
		t.Errorf("got logs %q, want the capture", logs)
	}
	// The browser ran only during the capture.
	want := []byte("TMPDIR=" + mark + "/")
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		status, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "status"))
		if bytes.Contains(env, want) && !bytes.Contains(status, []byte("State:\tZ")) {
			t.Errorf("got process %d with the mark still running, want no browser left", pid)
		}
	}
}

// browserMark gives the test (and so the browser it starts) a temporary folder of its own, with
// a short name (Chromium puts a socket in it), and returns it.
func browserMark(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "abm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
	return dir
}

// The cookies a browser captures are secrets the log learns at the capture: a retry warning of
// the model client whose error quotes them (a server that echoes the request's cookies in its
// error) shows none of them, though that line is written before the client removes them from
// the error it returns.
func TestCapturedCookiesNeverLogged(t *testing.T) {
	if _, err := browser.Find(browser.Auto); err != nil {
		t.Skipf("SKIP: the browser capture is not tested: %v", err)
	}
	browserMark(t)
	const cookieValue = "captured-session-0123456789abcdef"
	var tries atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/":
			http.SetCookie(w, &http.Cookie{Name: "sess", Value: cookieValue, Path: "/"})
			fmt.Fprint(w, "<!DOCTYPE html><html><body>ok</body></html>")
		case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
			_, _ = io.Copy(io.Discard, r.Body)
			if tries.Add(1) == 1 {
				// Overloaded, and it says with which cookies it was asked: retried.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				msg, _ := json.Marshal("overloaded; your cookies were " + r.Header.Get("Cookie"))
				fmt.Fprintf(w, `{"error":{"message":%s}}`, msg)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			sse := &sseWriter{w: w}
			_, _ = sse.Write([]byte("Fine now."))
			sse.done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	h := newHarness(t)
	h.start("AURA_BROWSER=auto", "AURA_URL="+srv.URL, "AURA_PROTOCOL=openai", "AURA_MODEL=m")
	if msg := h.replyTo(h.send("hi")); msg.Text != "Fine now." {
		t.Errorf("got reply %q, want the second try's", msg.Text)
	}
	h.stop()
	logs := h.logs.String()
	if !strings.Contains(logs, "aura: retrying") || !strings.Contains(logs, "your cookies were") {
		t.Fatalf("got logs %q, want the retry warning with the server's error", logs)
	}
	if strings.Contains(logs, cookieValue) {
		t.Errorf("the logs hold the captured cookie:\n%s", logs)
	}
}

// Every log line passes one redaction point, built in main from the settings: whatever a line
// holds (its message, an error, any attribute), no secret setting's value reaches the log.
func TestLoggerRedactsEverySecretSetting(t *testing.T) {
	secrets := map[string]string{
		"TELEGRAM_TOKEN": "123456:AAH-logger-test-token_0123456789",
		"AURA_KEY":       "sk-logger-test-aura-key-0123456789",
		"AURA_COOKIES":   "cf_clearance=logger-test-cookie-0123456789; consent=1",
		"TRANSCRIBE_KEY": "sk-logger-test-transcribe-0123456789",
		"WEBHOOK_SECRET": "logger-test-webhook-secret-0123456789",
		"METRICS_TOKEN":  "logger-test+metrics/token=0123456789",
	}
	environ := []string{"WEBHOOK_URL=https://bot.example.com/hook", "AURA_PROXY=http://proxyuser:proxy-password-0123@proxy.example.com:3128"}
	for k, v := range secrets {
		environ = append(environ, k+"="+v)
	}
	cfg, err := loadConfig(environ, filepath.Join(t.TempDir(), "none.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		cfg.LogFormat = format
		var out syncBuffer
		log, _ := cfg.logger(&out)
		for name, v := range secrets {
			log.Warn("a line quoting "+v, "err", fmt.Errorf("wrapped: %s", v), "url", "https://x/bot"+v+"/getMe", "name", name)
			log.Warn("escaped", "query", "https://x/?k="+url.QueryEscape(v), "path", "https://x/"+url.PathEscape(v))
		}
		log.Error("proxy", "err", errors.New("proxyconnect tcp: http://proxyuser:proxy-password-0123@proxy.example.com:3128"))
		_, half, _ := strings.Cut(secrets["TELEGRAM_TOKEN"], ":")
		for _, v := range append(slices.Collect(maps.Values(secrets)), half, "logger-test-cookie-0123456789", "proxy-password-0123") {
			for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
				if strings.Contains(out.String(), form) {
					t.Errorf("%s: the log holds %q:\n%s", format, form, out.String())
				}
			}
		}
		if strings.Count(out.String(), "[redacted]") < 3*len(secrets) {
			t.Errorf("%s: got %q, want every secret replaced", format, out.String())
		}
	}
}
