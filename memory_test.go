package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// These tests run the bot against the fakes for issue 21: summaries instead of forgetting,
// replies that carry what they answer, usage people can see (and caps), and /export.

// summaryInstructions is how a summary request's system message begins (conversation's
// summaryInstructions).
const summaryInstructions = "You keep the memory of a conversation"

// isSummary reports whether a request to the model server asks for a summary.
func isSummary(r auraRequest) bool { return strings.HasPrefix(r.Prompt, summaryInstructions) }

// chats returns the requests that answer messages (not summaries).
func (f *fakeAura) chats() []auraRequest {
	var out []auraRequest
	for _, r := range f.requests() {
		if !isSummary(r) {
			out = append(out, r)
		}
	}
	return out
}

// summaries returns the summary requests.
func (f *fakeAura) summaries() []auraRequest {
	var out []auraRequest
	for _, r := range f.requests() {
		if isSummary(r) {
			out = append(out, r)
		}
	}
	return out
}

// poll waits until cond holds, looking every few milliseconds: for what the fake Telegram does
// not see (the bot's log, the database).
func (h *harness) poll(cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// summariesSettled waits until every summary request the bot started has ended: the log says
// when each starts (before the answer that needed it streams) and ends.
func (h *harness) summariesSettled() {
	h.t.Helper()
	h.poll(func() bool {
		l := h.logs.String()
		return strings.Count(l, "summarising a conversation's oldest turns") == strings.Count(l, "summary request ended")
	})
}

// notice waits for the bot's message answering id that contains substr, and returns its text.
func (h *harness) notice(id int, substr string) string {
	h.t.Helper()
	var text string
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == id && strings.Contains(m.Text, substr) {
				text = m.Text
				return true
			}
		}
		return false
	})
	return text
}

// summaryAnswer answers a summary request with a summary that names the last question it held,
// and any other request with a reply of about 60 tokens.
func summaryAnswer(w http.ResponseWriter, flush func(), req auraRequest) {
	if !isSummary(req) {
		streamText(answer)(w, flush, req)
		return
	}
	last := ""
	for _, q := range regexp.MustCompile(`question number \d+`).FindAllString(req.Messages[0].Content, -1) {
		last = q
	}
	streamText("SUMMARY: Ann asked many questions, up to "+last+".")(w, flush, req)
}

// A conversation that outgrows a small window keeps a summary of what fell out: the summary
// request holds the oldest turns, the summary reaches the model in the system message of the
// requests after it (and the turns it holds do not), /memory shows it, /system's report is the
// next request, /export holds the prompt, the summary and every turn, and /reset forgets it.
func TestSummaryKeepsAConversation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.aura.reply = summaryAnswer
	h.start("AURA_MAX_LENGTH=1200", "SYSTEM_PROMPT=Be kind.")
	var asked []string
	for i := 0; len(h.aura.summaries()) == 0; i++ {
		if i == 20 {
			t.Fatal("no summary was asked for in 20 exchanges: the test did not fill the window")
		}
		q := "question number " + strconv.Itoa(i)
		asked = append(asked, q)
		h.replyTo(h.send(q))
		h.summariesSettled()
	}
	sum := h.aura.summaries()[0]
	if len(sum.Messages) != 1 || !strings.Contains(sum.Messages[0].Content, "User: question number 0") ||
		!strings.Contains(sum.Messages[0].Content, "Assistant: Sure: here is an answer") {
		t.Fatalf("the summary request: got %+v, want the oldest turns in a transcript", sum.Messages)
	}
	if !strings.Contains(h.logs.String(), "stored a conversation's summary") {
		t.Fatalf("no summary stored: %s", h.logs.String())
	}

	// The next request carries the summary after the prompt, not the turns it holds.
	q := "question number " + strconv.Itoa(len(asked))
	asked = append(asked, q)
	h.replyTo(h.send(q))
	h.summariesSettled()
	reqs := h.aura.chats()
	last := reqs[len(reqs)-1]
	if !strings.HasPrefix(last.Prompt, "Be kind.\n\n"+history.SummaryHeading+"\nSUMMARY: Ann asked many questions") {
		t.Fatalf("the request after the summary: got system message %q, want the prompt and the summary", last.Prompt)
	}
	if strings.Contains(fmt.Sprint(last.Messages), "question number 0 ") || last.Messages[0].Content == "question number 0" {
		t.Errorf("the request after the summary still carries the oldest question: %+v", last.Messages)
	}
	if last.dropped != 0 {
		t.Errorf("the server would drop %d messages", last.dropped)
	}

	// /memory shows it.
	mem := h.notice(h.send("/memory"), "SUMMARY: Ann asked many questions")
	if !strings.Contains(mem, "What the model is told of the first") {
		t.Errorf("/memory: got %q", mem)
	}

	// /system says what the next request carries: the last turns and the summary.
	h.summariesSettled()
	report := h.notice(h.send("/system"), "The model sees")
	in, total := reported(t, report)
	if !strings.Contains(report, "and a summary of the") {
		t.Errorf("/system: got %q, want the summary mentioned", report)
	}
	q = "question number " + strconv.Itoa(len(asked))
	asked = append(asked, q)
	h.replyTo(h.send(q))
	h.summariesSettled()
	reqs = h.aura.chats()
	next := reqs[len(reqs)-1]
	if got := len(next.Messages) - 1; got != in || !strings.Contains(next.Prompt, history.SummaryHeading) {
		t.Errorf("/system said %d of %d and a summary; the next request carries %d turns and system message %q", in, total, got, next.Prompt)
	}

	// /export: the prompt, the summary and every turn, those the summary holds too.
	exp := h.send("/export")
	var doc *telegramtest.Document
	h.wait(func() bool {
		for _, m := range h.tg.Messages(userID) {
			if m.ReplyTo == exp && m.Document != nil {
				doc = m.Document
				return true
			}
		}
		return false
	})
	text := string(doc.Data)
	if !strings.HasSuffix(doc.Name, ".md") || !strings.Contains(text, "## System prompt\n\nBe kind.") ||
		!strings.Contains(text, "## Summary") || !strings.Contains(text, "SUMMARY: Ann asked many questions") {
		t.Errorf("export %s: got\n%s", doc.Name, text)
	}
	for _, q := range asked {
		if !strings.Contains(text, "\n"+q+"\n") {
			t.Errorf("the export lacks %q", q)
		}
	}
	if n := strings.Count(text, answer); n != len(asked) {
		t.Errorf("the export holds %d answers, want %d", n, len(asked))
	}

	// /reset forgets the summary with the history.
	h.notice(h.send("/reset"), "forgot")
	h.notice(h.send("/memory"), "There is no summary of this conversation yet")
	h.replyTo(h.send("hello again"))
	reqs = h.aura.chats()
	if last := reqs[len(reqs)-1]; last.Prompt != "Be kind." || len(last.Messages) != 1 {
		t.Errorf("after /reset: got system message %q and %d messages, want the prompt alone and the new one", last.Prompt, len(last.Messages))
	}
	h.stop()
}

// A failing summary request never holds up the conversation: every message is answered (the
// oldest turns dropped as before), the log says so once however often it fails, the requests
// for summaries thin out, and once the server writes one again the log says that too.
func TestFailingSummaryLeavesTheConversationAnswering(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	failing := true
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		if isSummary(req) {
			h.aura.mu.Lock()
			fail := failing
			h.aura.mu.Unlock()
			if fail {
				http.Error(w, "Error", http.StatusInternalServerError)
				return
			}
		}
		summaryAnswer(w, flush, req)
	}
	h.start("AURA_MAX_LENGTH=1200")
	const warning = "a summary request failed: conversations go on"
	i := 0
	ask := func() {
		q := "question number " + strconv.Itoa(i)
		i++
		if got := h.replyTo(h.send(q)).Text; got != answer {
			t.Fatalf("%s: got %q, want the answer", q, got)
		}
		h.summariesSettled()
	}
	for len(h.aura.summaries()) < 3 {
		if i == 30 {
			t.Fatalf("%d summary requests in 30 exchanges, want 3", len(h.aura.summaries()))
		}
		ask()
	}
	if n := strings.Count(h.logs.String(), warning); n != 1 {
		t.Errorf("after 3 failed summaries the log warns %d times, want once", n)
	}
	overflowing := strings.Count(h.logs.String(), "summarising a conversation's oldest turns")
	if chats := len(h.aura.chats()); chats <= overflowing {
		t.Errorf("%d summaries for %d answers: want fewer, as failures back off", overflowing, chats)
	}

	h.aura.mu.Lock()
	failing = false
	h.aura.mu.Unlock()
	for !strings.Contains(h.logs.String(), "summaries work again") {
		if i == 40 {
			t.Fatal("no summary written in 40 exchanges after the server recovered")
		}
		ask()
	}
	if n := strings.Count(h.logs.String(), warning); n != 1 {
		t.Errorf("the log warns %d times, want once", n)
	}
	h.replyTo(h.send("and now?"))
	reqs := h.aura.chats()
	if last := reqs[len(reqs)-1]; !strings.Contains(last.Prompt, "SUMMARY: Ann asked") {
		t.Errorf("after the recovery: got system message %q, want the summary", last.Prompt)
	}
	h.stop()
}

// sendReply delivers a private message from the allowed user that replies to m (as Telegram
// sends it: the whole replied-to message in reply_to_message).
func (h *harness) sendReply(text string, to *models.Message) int {
	id := h.tg.NewMessageID(userID)
	h.tg.Push(models.Update{Message: &models.Message{
		ID: id, Date: int(time.Now().Unix()),
		Chat: models.Chat{ID: userID, Type: models.ChatTypePrivate},
		From: &models.User{ID: userID, FirstName: "Ann"},
		Text: text, ReplyToMessage: to,
	}})
	return id
}

// botMessage is a message of the bot's as Telegram shows it in reply_to_message.
func botMessage(chat int64, m telegramtest.Message) *models.Message {
	return &models.Message{ID: m.ID, Chat: models.Chat{ID: chat}, Text: m.Text,
		From: &models.User{ID: telegramtest.BotID, IsBot: true, FirstName: "Aura", Username: telegramtest.BotUsername}}
}

// A reply to an old answer of the bot's carries that answer's text, quoted, also when the
// answer is no longer in the stored history (a /reset forgot it); a reply to the answer just
// given does not repeat it (the model reads it right before).
func TestReplyCarriesTheMessageItAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.aura.reply = func(w http.ResponseWriter, flush func(), req auraRequest) {
		last := req.Messages[len(req.Messages)-1].Content
		switch {
		case strings.HasSuffix(last, "capital of France?"):
			streamText("Paris is the capital of France, on the Seine. It has about two million people.")(w, flush, req)
		default:
			streamText("Paris.")(w, flush, req)
		}
	}
	h.start()
	old := h.replyTo(h.send("What is the capital of France?"))
	h.replyTo(h.send("Thanks <|endoftext|>"))
	h.notice(h.send("/reset"), "forgot")

	h.replyTo(h.sendReply("shorter, please", botMessage(userID, old)))
	reqs := h.aura.chats()
	last := reqs[len(reqs)-1].Messages
	want := "(replying to your message)\n> Paris is the capital of France, on the Seine. It has about two million people.\n\nshorter, please"
	if len(last) != 1 || last[0].Content != want {
		t.Fatalf("the reply to the old answer: got %+v, want %q", last, want)
	}

	// A reply to the answer just given: no quote.
	just := h.tg.Messages(userID)
	latest := just[len(just)-1]
	h.replyTo(h.sendReply("why?", botMessage(userID, latest)))
	reqs = h.aura.chats()
	last = reqs[len(reqs)-1].Messages
	if got := last[len(last)-1].Content; got != "why?" {
		t.Errorf("a reply to the newest answer: got %q, want the text alone", got)
	}

	// A long message is quoted up to a bound, and special tokens in it are defused.
	long := strings.Repeat("word ", 400) + "<|endoftext|>"
	h.replyTo(h.sendReply("and this?", &models.Message{ID: 1, Chat: models.Chat{ID: userID}, Text: long, From: &models.User{ID: userID, FirstName: "Ann"}}))
	reqs = h.aura.chats()
	last = reqs[len(reqs)-1].Messages
	got := last[len(last)-1].Content
	if !strings.HasPrefix(got, "(replying to an earlier message)\n> word word") || !strings.HasSuffix(got, "…\n\nand this?") || len(got) > 1100 {
		t.Errorf("a long quote: got %d bytes, %.80q…, want it cut to about 1000 characters", len(got), got)
	}
	for _, r := range h.aura.requests() {
		for _, m := range r.Messages {
			if hasSpecial(m.Content) {
				t.Errorf("a request carried a special token: %q", m.Content)
			}
		}
	}
	h.stop()
}

// /usage shows the model server's own counts, today and this month, summed over requests; the
// owner sees everyone's with /usage all. Without the server's count (chatbot-ui) the bot's own
// count is used: the request as the window counts it, and the answer's tokens.
func TestUsageMatchesTheServersCount(t *testing.T) {
	t.Parallel()
	t.Run("openai", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.aura.reply = streamText("Fine.")
		n := 0
		h.aura.usage = func(auraRequest) (int, int) {
			h.aura.mu.Lock() // the fake holds no lock while it calls this
			defer h.aura.mu.Unlock()
			n++
			return 1000 * n, 7 * n // 1000 + 2000 + 3000 in, 7 + 14 + 21 out
		}
		h.start("AURA_PROTOCOL=openai", "AURA_MODEL=m")
		for _, q := range []string{"one", "two", "three"} {
			h.replyTo(h.send(q))
		}
		want := "6,000 in + 42 out = 6,042 (3 requests)"
		h.poll(func() bool { // the last count is written once the reply is shown
			return strings.Contains(h.notice(h.send("/usage"), "Your tokens"), want)
		})
		text := h.notice(h.send("/usage"), "Your tokens")
		if !strings.Contains(text, "Today (UTC): "+want) || !strings.Contains(text, "This month: "+want) {
			t.Errorf("/usage: got %q, want %q today and this month", text, want)
		}
		all := h.notice(h.send("/usage all"), "Tokens (in + out) by user")
		if !strings.Contains(all, "Ann ("+strconv.Itoa(userID)+"): 6,042 / 6,042") {
			t.Errorf("/usage all: got %q", all)
		}
		h.stop()
	})
	t.Run("chatbot-ui", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.aura.reply = streamText("Fine, thank you.")
		h.start("SYSTEM_PROMPT=Be brief.")
		h.replyTo(h.send("How are you?"))
		in := history.CountTokens("Be brief.") + history.CountTokens("How are you?")
		out := history.CountTokens("Fine, thank you.")
		want := fmt.Sprintf("%d in + %d out = %d (1 request)", in, out, in+out)
		h.poll(func() bool { return strings.Contains(h.notice(h.send("/usage"), "Your tokens"), want) })
		h.stop()
	})
}

// A user past USER_DAILY_TOKENS gets one notice that says when the cap resets, and no model
// request, then nothing more; /usage still answers.
func TestCappedUserGetsANoticeAndNoRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.aura.reply = streamText("Fine.")
	h.aura.usage = func(auraRequest) (int, int) { return 90, 20 }
	h.start("AURA_PROTOCOL=openai", "AURA_MODEL=m", "USER_DAILY_TOKENS=100")
	h.replyTo(h.send("first"))
	h.poll(func() bool { return strings.Contains(h.notice(h.send("/usage"), "Your tokens"), "(1 request)") })

	capped := h.send("second")
	notice := h.notice(capped, "tokens this bot allows you each day")
	if !strings.Contains(notice, "100 tokens") || !strings.Contains(notice, "resets at midnight UTC (in ") {
		t.Errorf("notice: got %q, want the cap and when it resets", notice)
	}
	third := h.send("third")
	usage := h.notice(h.send("/usage"), "Your tokens")
	if !strings.Contains(usage, "You may use 100 a day (0 left)") {
		t.Errorf("/usage: got %q", usage)
	}
	for _, m := range h.tg.Messages(userID) {
		if m.ReplyTo == third {
			t.Errorf("the third message got %q, want nothing: the user was told", m.Text)
		}
	}
	if n := len(h.aura.requests()); n != 1 {
		t.Errorf("got %d model requests, want only the first", n)
	}
	h.stop()
}

// groupChat is the group of the group tests.
const groupChat = -100777

// sendGroup delivers a group message from user (a member) and returns its id.
func (h *harness) sendGroup(user int64, name, text string, entities []models.MessageEntity, to *models.Message) int {
	id := h.tg.NewMessageID(groupChat)
	h.tg.Push(models.Update{Message: &models.Message{
		ID: id, Date: int(time.Now().Unix()),
		Chat: models.Chat{ID: groupChat, Type: models.ChatTypeSupergroup, Title: "Team"},
		From: &models.User{ID: user, FirstName: name},
		Text: text, Entities: entities, ReplyToMessage: to,
	}})
	return id
}

// groupNotice waits for the bot's message in the group answering id that contains substr.
func (h *harness) groupNotice(id int, substr string) string {
	h.t.Helper()
	var text string
	h.wait(func() bool {
		for _, m := range h.tg.Messages(groupChat) {
			if m.ReplyTo == id && strings.Contains(m.Text, substr) && !strings.HasSuffix(m.Text, "▍") {
				text = m.Text
				return true
			}
		}
		return false
	})
	return text
}

// In a group, a reply to a member's message carries it with its author; /memory and /usage are
// for every member, /usage all and /export are not.
func TestGroupReplyContextAndCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.aura.reply = streamText("Not really.")
	h.start("ALLOWED_CHATS=" + strconv.Itoa(groupChat))
	const bob = 5151
	said := h.sendGroup(bob, "Bob", "Cats can fly.", nil, nil) // not for the bot: not answered
	mention := "@" + telegramtest.BotUsername
	ask := h.sendGroup(bob, "Carol", mention+" is that true?", []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 0, Length: len(mention)}},
		&models.Message{ID: said, Chat: models.Chat{ID: groupChat}, Text: "Cats can fly.", From: &models.User{ID: bob, FirstName: "Bob"}})
	h.groupNotice(ask, "Not really.")
	reqs := h.aura.chats()
	if got, want := reqs[0].Messages[0].Content, "Carol: (replying to Bob)\n> Cats can fly.\n\nis that true?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	h.groupNotice(h.sendGroup(bob, "Carol", "/memory", nil, nil), "There is no summary of this conversation yet")
	h.groupNotice(h.sendGroup(bob, "Carol", "/usage", nil, nil), "Your tokens")
	h.groupNotice(h.sendGroup(bob, "Carol", "/usage all", nil, nil), "Only the bot's owners")
	h.groupNotice(h.sendGroup(bob, "Carol", "/export", nil, nil), "Only the bot's allowed users and this group's administrators can export")
	for _, m := range h.tg.Messages(groupChat) {
		if m.Document != nil {
			t.Errorf("a member who does not steer the group got an export")
		}
	}
	// The owner may.
	exp := h.sendGroup(userID, "Ann", "/export", nil, nil)
	h.wait(func() bool {
		for _, m := range h.tg.Messages(groupChat) {
			if m.ReplyTo == exp && m.Document != nil {
				return strings.Contains(string(m.Document.Data), "### Carol") && strings.Contains(string(m.Document.Data), "*In reply to Bob:*")
			}
		}
		return false
	})
	h.stop()
}

// The command menu and /help list the new commands.
func TestNewCommandsInTheMenu(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	calls := h.tg.Calls("setMyCommands")
	menu := calls[len(calls)-1].Params["commands"]
	help := h.notice(h.send("/help"), "Commands:")
	for _, c := range []string{"memory", "usage", "export"} {
		if !strings.Contains(menu, `"command":"`+c+`"`) {
			t.Errorf("the menu lacks /%s: %s", c, menu)
		}
		if !strings.Contains(help, "/"+c+":") {
			t.Errorf("/help lacks /%s: %s", c, help)
		}
	}
	h.stop()
}

var _ = aura.Message{}
