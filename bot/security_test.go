package bot

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	tgapi "aurabot/bot/tg"
	"aurabot/history"
)

// groupAnonymousBot is the user Telegram puts in "from" of a message an anonymous administrator
// sends as the group (sender_chat is then the group itself).
var groupAnonymousBot = models.User{ID: 1087968824, IsBot: true, FirstName: "Group", Username: "GroupAnonymousBot"}

// post delivers m (its id, date and chat type filled in) and returns its id.
func (e *env) post(m models.Message) int {
	m.ID = e.tg.NewMessageID(m.Chat.ID)
	m.Date = int(time.Now().Unix())
	if m.Chat.Type == "" {
		m.Chat.Type = models.ChatTypeSupergroup
		if m.Chat.ID > 0 {
			m.Chat.Type = models.ChatTypePrivate
		}
	}
	e.tg.Push(models.Update{Message: &m})
	return m.ID
}

// anonymously delivers text from an anonymous administrator of chat.
func (e *env) anonymously(chat int64, text string) int {
	from := groupAnonymousBot
	return e.post(models.Message{Text: text, Chat: models.Chat{ID: chat, Title: "The Group"}, SenderChat: &models.Chat{ID: chat, Type: models.ChatTypeSupergroup, Title: "The Group"}, From: &from, AuthorSignature: "Boss"})
}

// handled waits until every update the bot has taken is finished in the inbox.
func (e *env) handled() {
	e.t.Helper()
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 0 && e.tg.PendingUpdates() == 0
	})
}

// replyTexts returns the bot's texts in reply to message id of chat.
func replyTexts(tg *telegramtest.Server, chat int64, id int) []string {
	var out []string
	for _, m := range tg.Messages(chat) {
		if m.ReplyTo == id {
			out = append(out, m.Text)
		}
	}
	return out
}

const refusedSteer = "Only the bot's allowed users and this group's administrators"

// In a group, each command that steers the shared conversation takes a user named in
// ALLOWED_USERS or an administrator of the group, an anonymous one included; a member is told so,
// and nothing happens: no prompt set, no history cleared, no answer deleted and asked again, and
// the model server not even asked for its list of models.
func TestGroupSteeringTakesAStewardEach(t *testing.T) {
	const (
		member = 11
		admin  = 12
		owner  = 13
	)
	steps := []struct {
		cmd   string
		after string // what a steward's command is answered (/retry: a new model request)
	}{
		{"/system Talk like a pirate.", "System prompt set"},
		{"/system default", "back to the default"},
		{"/reset", "I forgot this conversation"},
		{"/retry", ""},
		{"/model", "The model is"},
		{"/model large", "Switched to large"},
	}
	for _, step := range steps {
		t.Run(step.cmd, func(t *testing.T) {
			e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{IDs: []int64{owner}}, AllowedChats: conversation.IDList{IDs: []int64{group}}}})
			e.tg.SetAdministrators(group, 99, admin)
			var listed atomic.Int32
			e.model.list = func() ([]string, error) { listed.Add(1); return []string{"small", "large"}, nil }
			k := history.Key{ChatID: group}
			ctx := context.Background()
			if err := e.store.SetSystemPrompt(ctx, k, "Be kind."); err != nil {
				t.Fatal(err)
			}
			e.final(group, e.say(group, member, "@"+telegramtest.BotUsername+" question"))
			before := e.answered(k, 2)
			asked := len(e.model.requests())

			id := e.say(group, member, step.cmd)
			e.wait(func() bool { return hasText(e.tg, group, id, refusedSteer) })
			e.handled()
			if p, ok, _ := e.store.SystemPrompt(ctx, k); !ok || p != "Be kind." {
				t.Errorf("member's %s: system prompt %q (set %v), want it unchanged", step.cmd, p, ok)
			}
			if got := e.turns(k); len(got) != len(before) {
				t.Errorf("member's %s: %d turns, want the %d before", step.cmd, len(got), len(before))
			}
			if m, ok, _ := e.store.Model(ctx, k); ok {
				t.Errorf("member's %s: model set to %q", step.cmd, m)
			}
			if n := len(e.model.requests()); n != asked {
				t.Errorf("member's %s: %d model requests, want %d", step.cmd, n, asked)
			}
			if n := listed.Load(); n != 0 {
				t.Errorf("member's %s: the model server was asked for its models %d times, want none", step.cmd, n)
			}

			for _, steward := range []string{"administrator", "named user", "anonymous administrator"} {
				var id int
				switch steward {
				case "administrator":
					id = e.say(group, admin, step.cmd)
				case "named user":
					id = e.say(group, owner, step.cmd)
				default:
					id = e.anonymously(group, step.cmd)
				}
				if step.cmd == "/retry" {
					// The new answer replies to the question, not to /retry.
					e.wait(func() bool { return len(e.model.requests()) > asked })
					asked = len(e.model.requests())
				} else {
					e.wait(func() bool { return hasText(e.tg, group, id, step.after) })
				}
				if hasText(e.tg, group, id, refusedSteer) {
					t.Errorf("%s's %s: refused", steward, step.cmd)
				}
				e.handled()
			}
		})
	}
}

// Buttons: a member cannot switch the model with a steward's /model keyboard, nor stop someone
// else's reply; the steward can. With ALLOWED_USERS=* everyone may talk to the bot, but nobody is
// named: a member still cannot steer the group.
func TestGroupButtonsTakeAStewardToo(t *testing.T) {
	const (
		member = 21
		admin  = 22
	)
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true}}})
	e.tg.SetAdministrators(group, 99, admin)
	e.model.list = func() ([]string, error) { return []string{"small", "large"}, nil }
	reset := e.say(group, member, "/reset")
	e.wait(func() bool { return hasText(e.tg, group, reset, refusedSteer) })

	cmd := e.say(group, admin, "/model")
	var picker telegramtest.Message
	e.wait(func() bool {
		for _, m := range e.tg.Messages(group) {
			if m.ReplyTo == cmd && strings.Contains(m.Markup, "large") {
				picker = m
				return true
			}
		}
		return false
	})
	press := func(id string, from int64) {
		e.tg.Push(models.Update{CallbackQuery: &models.CallbackQuery{
			ID: id, From: models.User{ID: from}, Data: modelButton(t, picker.Markup, "large"),
			Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeMessage, Message: &models.Message{ID: picker.ID, Chat: models.Chat{ID: group, Type: models.ChatTypeSupergroup}}},
		}})
	}
	answer := func(id string) string {
		for _, c := range e.tg.Calls("answerCallbackQuery") {
			if c.Params["callback_query_id"] == id {
				return c.Params["text"]
			}
		}
		return "(none)"
	}
	press("by-member", member)
	e.wait(func() bool { return strings.Contains(answer("by-member"), refusedSteer) })
	if m, ok, _ := e.store.Model(context.Background(), history.Key{ChatID: group}); ok {
		t.Errorf("a member's press switched the model to %q", m)
	}
	press("by-admin", admin)
	e.wait(func() bool { return strings.Contains(answer("by-admin"), "Switched to large") })

	// Someone else's Stop button, and /stop: refused to a member, granted to an administrator
	// and to an anonymous one.
	release := make(chan struct{})
	defer close(release)
	e.model.fn = func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if !yield("A long story", nil) {
			return
		}
		select {
		case <-ctx.Done():
			yield("", ctx.Err())
		case <-release:
		}
	}
	q := e.say(group, 31, "@"+telegramtest.BotUsername+" tell a story")
	e.wait(func() bool { return hasText(e.tg, group, q, "A long story") })
	stop := e.say(group, member, "/stop")
	e.wait(func() bool { return hasText(e.tg, group, stop, "Only the person who asked") })
	e.anonymously(group, "/stop")
	if msgs := e.final(group, q); !strings.Contains(msgs[0].Text, "Stopped") {
		t.Errorf("after an anonymous administrator's /stop: got %q, want the reply stopped", msgs[0].Text)
	}
}

// The bot is addressed by its mention entity (any case), a text mention of it, or a reply to
// it; never by a substring: @<its name>_x is another bot, and an @ without an entity (in code,
// say) is no mention. Posts a linked channel forwards into the group, messages sent as a channel
// and other bots' messages are ignored, whatever they mention. An anonymous administrator is
// answered, under their signature.
func TestGroupAddressing(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("re: "+lastUser(msgs), nil)
	}
	bot := "@" + telegramtest.BotUsername
	chat := models.Chat{ID: group}
	ann := &models.User{ID: 5, FirstName: "Ann"}

	// Ignored, each of them.
	e.say(group, 5, bot+"_x what do you think?")
	e.say(group, 5, "mail me at ann"+bot+".example.com")
	e.post(models.Message{Text: "`" + bot + "` is the bot's name", Entities: []models.MessageEntity{{Type: models.MessageEntityTypeCode, Offset: 0, Length: len(bot) + 2}}, Chat: chat, From: ann})
	e.post(models.Message{Text: bot + " a new post on the channel", Chat: chat, IsAutomaticForward: true,
		SenderChat: &models.Chat{ID: -1009999, Type: models.ChatTypeChannel, Title: "News"}, From: &models.User{ID: 777000, FirstName: "Telegram"}})
	e.post(models.Message{Text: bot + " hello from my channel", Chat: chat,
		SenderChat: &models.Chat{ID: -1008888, Type: models.ChatTypeChannel, Title: "Mine"}, From: &models.User{ID: 136817688, IsBot: true, FirstName: "Channel"}})
	e.post(models.Message{Text: bot + " I am a bot too", Chat: chat, From: &models.User{ID: 4242, IsBot: true, FirstName: "Other", Username: "other_bot"}})

	// Answered.
	upper := e.say(group, 5, "@"+strings.ToUpper(telegramtest.BotUsername)+" ask "+bot+"_x, then tell me")
	if got := e.final(group, upper)[0].Text; got != "re: Ann: ask "+bot+"_x, then tell me" {
		t.Errorf("upper-case mention: got %q, want the other bot's name kept and this one's removed", got)
	}
	textMention := e.post(models.Message{Text: "Aura, what is Go?", Chat: chat, From: ann, Entities: []models.MessageEntity{
		{Type: models.MessageEntityTypeTextMention, Offset: 0, Length: 4, User: &models.User{ID: telegramtest.BotID, IsBot: true}},
	}})
	if got := e.final(group, textMention)[0].Text; got != "re: Ann: , what is Go?" {
		t.Errorf("text mention: got %q", got)
	}
	anon := e.anonymously(group, bot+" status?")
	if got := e.final(group, anon)[0].Text; got != "re: Boss: status?" {
		t.Errorf("anonymous administrator: got %q, want an answer under their signature", got)
	}
	e.handled()
	if n := len(e.model.requests()); n != 3 {
		t.Errorf("model requests: got %d, want 3 (the mention, the text mention, the anonymous administrator)", n)
	}
	if n := len(e.tg.Calls("sendMessage")); n != 3 {
		t.Errorf("messages sent: got %d, want only the 3 answers", n)
	}
}

// One user sending 30 messages in a second costs at most the one running and maxWaiting model
// calls, and gets one notice, not 26; another member's message, sent after the flood, is
// answered.
func TestOneUserCannotSwampTheBot(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedChats: conversation.IDList{IDs: []int64{group}}}})
	release := make(chan struct{})
	e.model.fn = heldUntil(release)
	const flooder, other = 41, 42
	bot := "@" + telegramtest.BotUsername
	var ids []int
	for i := range 30 {
		ids = append(ids, e.say(group, flooder, bot+" message "+strconv.Itoa(i)))
	}
	b := e.say(group, other, bot+" my question")
	// Every update taken: all but the flooder's first four and the other member's are finished.
	e.eventually(func() bool {
		p, err := e.store.Inbox().Pending(context.Background())
		return err == nil && len(p) == 1+maxWaitingPerUser+1 && e.tg.PendingUpdates() == 0 && len(e.model.requests()) == 1
	})
	close(release)
	if got := e.final(group, b)[0].Text; got != "re: Ann: my question" {
		t.Errorf("the other member: got %q", got)
	}
	e.answered(history.Key{ChatID: group}, 10)
	e.handled()

	if n := len(e.model.requests()); n != 1+maxWaitingPerUser+1 {
		t.Errorf("model requests: got %d, want %d (the flooder's running one and %d waiting, and the other member's)", n, 1+maxWaitingPerUser+1, maxWaitingPerUser)
	}
	notices := 0
	for _, id := range ids {
		for _, text := range replyTexts(e.tg, group, id) {
			if strings.Contains(text, "so I skipped this one") {
				notices++
			}
		}
	}
	if notices != 1 {
		t.Errorf("notices to the flooder: got %d, want 1", notices)
	}
	answers := 0
	for _, id := range ids {
		for _, text := range replyTexts(e.tg, group, id) {
			if strings.HasPrefix(text, "re: Ann: message ") {
				answers++
			}
		}
	}
	if answers != 1+maxWaitingPerUser {
		t.Errorf("answers to the flooder: got %d, want %d", answers, 1+maxWaitingPerUser)
	}
}

// maxWaitingPerUser is conversation's bound, as the tests see it.
const maxWaitingPerUser = 3

// USER_MESSAGES_PER_MINUTE: a user past it is told once, and the rest is not answered; a user
// named in ALLOWED_USERS is not bounded.
func TestUserMessagesPerMinute(t *testing.T) {
	const perMinute = 4
	e := newEnv(t, Config{Conversation: conversation.Config{AllowedUsers: conversation.IDList{All: true, IDs: []int64{user}}, UserMessagesPerMinute: perMinute}})
	const stranger = 51
	start := time.Now()
	for i := range 10 {
		e.say(stranger, stranger, "message "+strconv.Itoa(i))
		e.handled()
	}
	// The bucket refills one message every 15 s: a slow run may earn one more.
	allowed := perMinute + int(time.Since(start)/(time.Minute/perMinute))
	answered, notices := 0, 0
	for _, m := range e.tg.Messages(stranger) {
		switch {
		case m.Text == "ok":
			answered++
		case strings.Contains(m.Text, "faster than this bot allows (4 messages a minute)"):
			notices++
		}
	}
	if answered < perMinute || answered > allowed || notices != 1 {
		t.Errorf("got %d answers and %d notices, want %d answers (at most %d) and 1 notice", answered, notices, perMinute, allowed)
	}
	for i := range perMinute + 2 {
		e.final(user, e.say(user, user, "owner "+strconv.Itoa(i)))
	}
}

// 100 requests with a wrong webhook secret make at most 2 log lines, which count them all.
func TestWebhookRefusalsAreLoggedOnceAMinute(t *testing.T) {
	var logs syncBuffer
	e := newWebhookEnv(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 100 {
		body, _ := e.update(int64(i+1), "sneaky")
		if code := e.hook("wrong-"+strconv.Itoa(i), body); code != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", code)
		}
	}
	e.stop()
	lines, total := countLines(t, logs.String(), "wrong or missing secret")
	if lines < 1 || lines > 2 || total != 100 {
		t.Errorf("got %d lines counting %d requests, want 1 or 2 lines counting 100:\n%s", lines, total, logs.String())
	}
}

// Messages from 50 strangers make at most 2 log lines, which count them all.
func TestStrangersAreLoggedOnceAMinute(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 50 {
		e.say(int64(1000+i), int64(1000+i), "let me in")
	}
	e.final(user, e.say(user, user, "hi"))
	e.handled()
	e.stop()
	lines, total := countLines(t, logs.String(), "refused messages from users")
	if lines < 1 || lines > 2 || total != 50 {
		t.Errorf("got %d lines counting %d messages, want 1 or 2 lines counting 50:\n%s", lines, total, logs.String())
	}
}

// countLines counts the log lines that contain msg, and adds up their count= attributes.
func countLines(t *testing.T, logs, msg string) (lines, total int) {
	t.Helper()
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, msg) {
			continue
		}
		lines++
		_, after, ok := strings.Cut(line, " count=")
		if !ok {
			t.Fatalf("line %q has no count", line)
		}
		n, err := strconv.Atoi(strings.Fields(after)[0])
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		total += n
	}
	return lines, total
}

// countingStore counts the health check's real writes.
type countingStore struct {
	*history.Store
	writes atomic.Int32
}

func (s *countingStore) CheckWrite(ctx context.Context) error {
	s.writes.Add(1)
	return s.Store.CheckWrite(ctx)
}

// 1,000 calls of /healthz write to the database at most once every few seconds: a handful.
func TestHealthzWritesAHandfulOfTimes(t *testing.T) {
	store, err := history.Open(context.Background(), filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tg := telegramtest.New()
	defer tg.Close()
	counting := &countingStore{Store: store}
	b, err := New(Config{Telegram: tgapi.Config{Token: telegramtest.Token, APIURL: tg.URL()}, Conversation: conversation.Config{AllowedUsers: conversation.IDList{IDs: []int64{user}}}, ListenAddr: "127.0.0.1:0", PollTimeout: 5 * time.Second}, counting, &fakeModel{fn: chunks("ok")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := tg.Wait(wctx, func() bool { return len(tg.Calls("setMyCommands")) > 0 }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				resp, err := http.Get("http://" + b.Addr() + "/healthz")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("got %d, want 200", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	// One write per interval the calls spanned (and one for the interval they began in).
	most := 1 + int(time.Since(start)/(5*time.Second))
	if n := int(counting.writes.Load()); n < 1 || n > most {
		t.Errorf("1,000 calls wrote %d times, want 1 to %d", n, most)
	}
}

// METRICS_TOKEN: /metrics answers only the bearer of the token; /healthz stays open.
func TestMetricsToken(t *testing.T) {
	e := newEnv(t, Config{ListenAddr: "127.0.0.1:0", MetricsToken: "metrics-token-0123456789"})
	if code, _ := e.get("/metrics"); code != http.StatusUnauthorized {
		t.Errorf("no token: got %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url("/metrics"), nil)
	req.Header.Set("Authorization", "Bearer metrics-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: got %d, want 200", resp.StatusCode)
	}
	if code, _ := e.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: got %d, want 200", code)
	}
}

// A Bot API server that answers getFile with a path on the bot's disk outside
// TELEGRAM_LOCAL_FILES (or with none set) gets nothing of it read: the model never sees the
// file, and the user is told the download failed.
func TestGetFileOutsideTheLocalFilesIsNotRead(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "environ")
	if err := os.WriteFile(secret, []byte("TELEGRAM_TOKEN=TOPSECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, local := range []bool{false, true} {
		t.Run(map[bool]string{false: "no directory set", true: "outside the directory"}[local], func(t *testing.T) {
			cfg := Config{}
			if local {
				cfg.Telegram.LocalFiles = t.TempDir()
			}
			e := newEnv(t, cfg)
			m := e.tg.PushDocument(from("what does it say?"), telegramtest.File{Data: []byte("harmless"), FileName: "notes.txt", MIMEType: "text/plain"})
			e.tg.AnswerFilePath(m.Document.FileID, secret)
			e.wait(func() bool { return hasText(e.tg, user, m.ID, "could not download your file") })
			e.handled()
			for _, req := range e.model.requests() {
				for _, msg := range req {
					if strings.Contains(msg.Content, "TOPSECRET") {
						t.Fatal("the file outside reached the model")
					}
				}
			}
			if n := len(e.model.requests()); n != 0 {
				t.Errorf("model requests: got %d, want none", n)
			}
		})
	}
}

// The bot's owners (named in ALLOWED_USERS) are not bounded: a long text that Telegram split
// into several messages is answered whole.
func TestNamedUsersAreNotBounded(t *testing.T) {
	e := newEnv(t, Config{})
	release := make(chan struct{})
	e.model.fn = heldUntil(release)
	var ids []int
	for i := range 2 * maxWaitingPerUser {
		ids = append(ids, e.say(user, user, "part "+strconv.Itoa(i)))
	}
	e.eventually(func() bool { return e.tg.PendingUpdates() == 0 && len(e.model.requests()) == 1 })
	close(release)
	for i, id := range ids {
		if got := e.final(user, id)[0].Text; got != "re: part "+strconv.Itoa(i) {
			t.Errorf("part %d: got %q", i, got)
		}
	}
}

// heldUntil is a model that answers "re: " and the user's last message once release is closed.
func heldUntil(release <-chan struct{}) func(context.Context, []aura.Message, func(string, error) bool) {
	return func(ctx context.Context, msgs []aura.Message, yield func(string, error) bool) {
		select {
		case <-release:
		case <-ctx.Done():
			yield("", ctx.Err())
			return
		}
		yield("re: "+lastUser(msgs), nil)
	}
}
