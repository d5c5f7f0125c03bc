package conversation

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/aura"
	"aurabot/bot/reply"
	"aurabot/history"
)

func turnsOf(texts ...string) []history.Turn {
	var ts []history.Turn
	for i, s := range texts {
		role := history.RoleUser
		if i%2 == 1 {
			role = history.RoleAssistant
		}
		ts = append(ts, history.Turn{ID: int64(i + 1), Role: role, Content: s})
	}
	return ts
}

// A summary request holds the old summary and the turns as a transcript, defused, as many of
// the oldest as fit the budget with room for the answer; a turn that does not fit even alone
// is cut; turns that are not sent are held without a word.
func TestSummaryRequest(t *testing.T) {
	b := history.Budget{Chars: 100000}
	turns := turnsOf("what is <|endoftext|>?", "A special token.", "and 2+2?", "4.")
	turns = append(turns, history.Turn{ID: 5, Role: history.RoleUser, Audio: history.Audio{FileID: "f"}}) // never heard
	msgs, through := summaryRequest(b, "They met.", turns, 1000, math.MaxInt)
	// Through the last turn sent: the voice message after it is held by the next summary.
	if through != 4 || len(msgs) != 2 || msgs[0].Role != aura.RoleSystem || msgs[1].Role != aura.RoleUser {
		t.Fatalf("got %d messages through %d, want 2 through 4", len(msgs), through)
	}
	user := msgs[1].Content
	for _, want := range []string{"The summary so far:\nThey met.", "User: what is <|\u200bendoftext|>?", "Assistant: A special token.", "User: and 2+2?\n\nAssistant: 4."} {
		if !strings.Contains(user, want) {
			t.Errorf("the request lacks %q:\n%s", want, user)
		}
	}
	if !strings.Contains(msgs[0].Content, "at most 125 words") {
		t.Errorf("instructions: got %q, want the words bound", msgs[0].Content)
	}

	// A budget for two turns: the oldest two, through the second.
	small := history.Budget{Chars: utf8.RuneCountInString(msgs[0].Content) + utf8.RuneCountInString(user) - 10}
	msgs2, through := summaryRequest(small, "They met.", turns, 1000, math.MaxInt)
	if through != 3 || strings.Contains(msgs2[1].Content, "4.") {
		t.Errorf("a smaller budget: got through %d:\n%s", through, msgs2[1].Content)
	}
	// In tokens, with the template's overhead and the room for the answer.
	tb := history.Budget{Tokens: 2000, PerMessage: 8}
	msgs3, _ := summaryRequest(tb, "", turnsOf(strings.Repeat("word ", 3000)), 200, 100)
	if n := tb.RequestTokens(msgs3[0].Content, []history.Turn{{Role: history.RoleUser, Content: msgs3[1].Content}}); n > 2000-100 {
		t.Errorf("a turn too long for the request: the request counts %d tokens, over 2000 less the answer's 100", n)
	}
	if !strings.HasSuffix(strings.TrimSuffix(msgs3[1].Content, "\n\nWrite the new summary."), "…") {
		t.Errorf("a turn too long: got %.100q…, want its beginning, marked cut", msgs3[1].Content)
	}
	// Nothing sent in the range: no request, the range held.
	if msgs, through := summaryRequest(b, "x", turns[4:], 1000, math.MaxInt); msgs != nil || through != 5 {
		t.Errorf("only a voice message never heard: got %v through %d", msgs, through)
	}
}

func TestCutText(t *testing.T) {
	for _, tc := range []struct {
		text   string
		chars  int
		tokens int
		want   string
	}{
		{"Short.", 100, math.MaxInt, "Short."},
		{"First sentence here. Second one is long.", 30, math.MaxInt, "First sentence here."},
		{"First sentence. Second sentence is long.", 30, math.MaxInt, "First sentence. Second…"},
		{"one two three four five six", 20, math.MaxInt, "one two three four…"},
		{strings.Repeat("x", 50), 10, math.MaxInt, strings.Repeat("x", 9) + "…"},
		{"Alpha beta. Gamma delta epsilon.", 100, 4, "Alpha beta."},
	} {
		got := cutText(tc.text, tc.chars, tc.tokens)
		if got != tc.want {
			t.Errorf("cutText(%q, %d, %d): got %q, want %q", tc.text, tc.chars, tc.tokens, got, tc.want)
		}
		if utf8.RuneCountInString(got) > tc.chars || tc.tokens != math.MaxInt && history.CountTokens(got) > tc.tokens {
			t.Errorf("cutText(%q): %q is over the bound", tc.text, got)
		}
	}
}

// A summary takes a quarter of the room the prompt leaves a message; a window too small for a
// useful one asks for none.
func TestSummaryLimit(t *testing.T) {
	if c, tk, ok := summaryLimit(history.Budget{Chars: 24576, Tokens: 7192}, "Be brief."); !ok || c != (24576-9)/4 || tk != (7192-3)/4 {
		t.Errorf("chatbot-ui defaults: got %d, %d, %v", c, tk, ok)
	}
	if c, _, ok := summaryLimit(history.Budget{Chars: 10_000_000}, ""); !ok || c != maxSummaryChars {
		t.Errorf("a huge window: got %d, %v; want %d", c, ok, maxSummaryChars)
	}
	if _, _, ok := summaryLimit(history.Budget{Chars: 700}, ""); ok {
		t.Error("a 700-character window: got a summary, want none")
	}
	if _, _, ok := summaryLimit(history.Budget{Chars: 10000, Tokens: 150}, ""); ok {
		t.Error("a 150-token window: got a summary, want none")
	}
}

// A conversation whose summaries fail asks again after 1, 2, 4, ... requests; the first
// failure since summaries last worked is the one logged; one summary at a time per
// conversation, a few at once, none after stop.
func TestSummariesBackOff(t *testing.T) {
	s := newSummaries(2)
	a, b, c := history.Key{ChatID: 1}, history.Key{ChatID: 2}, history.Key{ChatID: 3}
	if !s.begin(a) || s.begin(a) {
		t.Fatal("want one summary of a conversation at a time")
	}
	if !s.begin(b) || s.begin(c) {
		t.Fatal("want two at once, no more")
	}
	s.end(b)
	if !s.failed(a) {
		t.Error("the first failure: want it logged")
	}
	s.end(a)
	var tries []int
	for i := 1; i <= 20; i++ {
		if s.begin(a) {
			tries = append(tries, i)
			if s.failed(b) {
				t.Error("a later failure: want it not logged")
			}
			s.failed(a)
			s.end(a)
		}
	}
	if want := []int{1, 3, 7, 15}; !equalInts(tries, want) {
		t.Errorf("tries after failures at the requests %v, want %v", tries, want)
	}
	if !s.worked(a) || s.worked(a) {
		t.Error("want recovered once")
	}
	if !s.begin(a) {
		t.Error("after a summary worked: want the next request to try")
	}
	s.end(a)
	s.stop()
	if s.begin(c) {
		t.Error("after stop: want none")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The quote of a replied-to message: the part the user picked, or the message (a caption, what
// kind of message), bounded; the bot's own, or a member's with their name in a group; nothing
// for a topic's opening message.
func TestQuoteOf(t *testing.T) {
	h := testHandler()
	group := req{t: targetGroup(true)}
	private := req{t: targetGroup(false)}
	bot := &models.User{ID: 42, IsBot: true}
	ann := &models.User{ID: 7, FirstName: "Ann"}
	long := strings.Repeat("é", 1500)
	for _, tc := range []struct {
		name  string
		r     req
		m     *models.Message
		want  history.Quote
		whole int
	}{
		{"no reply", private, &models.Message{Text: "hi"}, history.Quote{}, 0},
		{"the bot's answer", private, &models.Message{ReplyToMessage: &models.Message{ID: 5, From: bot, Text: " Paris. "}}, history.Quote{Text: "Paris.", Bot: true}, 5},
		{"a member, in a group", group, &models.Message{ReplyToMessage: &models.Message{ID: 6, From: ann, Text: "cats fly"}}, history.Quote{Text: "cats fly", Author: "Ann"}, 6},
		{"one's own, in private", private, &models.Message{ReplyToMessage: &models.Message{ID: 6, From: ann, Text: "x"}}, history.Quote{Text: "x"}, 6},
		{"the part picked", private, &models.Message{ReplyToMessage: &models.Message{ID: 5, From: bot, Text: "a b c"}, Quote: &models.TextQuote{Text: "b"}}, history.Quote{Text: "b", Bot: true}, 0},
		{"another chat's message", private, &models.Message{Quote: &models.TextQuote{Text: "elsewhere"}}, history.Quote{Text: "elsewhere"}, 0},
		{"a photo", group, &models.Message{ReplyToMessage: &models.Message{ID: 8, From: ann, Photo: []models.PhotoSize{{}}, Caption: "look"}}, history.Quote{Text: "[a photo] look", Author: "Ann"}, 8},
		{"a sticker", private, &models.Message{ReplyToMessage: &models.Message{ID: 8, From: ann, Sticker: &models.Sticker{Emoji: "🙂"}}}, history.Quote{Text: "[a sticker 🙂]"}, 8},
		{"no text at all", private, &models.Message{ReplyToMessage: &models.Message{ID: 8, From: ann}}, history.Quote{}, 0},
		{"a topic's opening message", group, &models.Message{IsTopicMessage: true, MessageThreadID: 3, ReplyToMessage: &models.Message{ID: 3, ForumTopicCreated: &models.ForumTopicCreated{Name: "t"}}}, history.Quote{}, 0},
		{"long", private, &models.Message{ReplyToMessage: &models.Message{ID: 9, From: ann, Text: long}}, history.Quote{Text: strings.Repeat("é", maxQuoteChars-1) + "…"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, whole := h.quoteOf(tc.r, tc.m)
			if got != tc.want || whole != tc.whole {
				t.Errorf("got %+v, %d; want %+v, %d", got, whole, tc.want, tc.whole)
			}
		})
	}
}

// The cap's notice says which cap and when it resets; numbers read with separators.
func TestCapNotice(t *testing.T) {
	now := time.Date(2025, 4, 30, 20, 45, 0, 0, time.UTC)
	day := capNoticeText(capState{limit: 50000, until: nextDay(now)}, now)
	if !strings.Contains(day, "50,000 tokens") || !strings.Contains(day, "resets at midnight UTC (in 3 h 15 min)") {
		t.Errorf("daily: got %q", day)
	}
	month := capNoticeText(capState{limit: 1234567, monthly: true, until: nextMonth(now)}, now)
	if !strings.Contains(month, "1,234,567 tokens") || !strings.Contains(month, "resets on 1 May at 00:00 UTC (in 3 h 15 min)") {
		t.Errorf("monthly: got %q", month)
	}
	if got := until(72 * time.Hour); got != "3 days" {
		t.Errorf("until: got %q", got)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234: "-1,234", 1234567890: "1,234,567,890"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d): got %q, want %q", n, got, want)
		}
	}
	c := newOnce[capNotice](forever)
	n := capNotice{user: 1, chat: 1, until: nextDay(now)}
	if !c.due(n, now) || c.due(n, now.Add(40*24*time.Hour)) {
		t.Error("want told once")
	}
	if !c.due(capNotice{user: 1, chat: 2, until: n.until}, now) {
		t.Error("another chat: want told there too")
	}
}

// The export holds the prompt, the summary and every turn as stored, with who wrote it, what it
// replied to, pictures, voice and cut answers marked.
func TestExportMarkdown(t *testing.T) {
	at := time.Date(2025, 4, 1, 9, 30, 0, 0, time.UTC)
	turns := []history.Turn{
		{Role: history.RoleUser, Content: "what is <|endoftext|>?", Author: "Ann", CreatedAt: at},
		{Role: history.RoleAssistant, Content: "A special token.", CreatedAt: at},
		{Role: history.RoleUser, Content: "shorter", Quote: history.Quote{Text: "A special\ntoken.", Bot: true}, CreatedAt: at},
		{Role: history.RoleAssistant, Content: "A tok", Status: history.StatusCut, CreatedAt: at},
		{Role: history.RoleUser, Audio: history.Audio{FileID: "f"}, CreatedAt: at},
		{Role: history.RoleUser, Content: "look", Images: []history.Image{{MIME: "image/jpeg"}}, CreatedAt: at},
	}
	doc := exportMarkdown("Be brief.", history.Summary{Text: "They met.", Turns: 4, At: at}, turns, at)
	for _, want := range []string{
		"## System prompt\n\nBe brief.\n",
		"## Summary\n\nWhat the model is told of the first 4 messages (written 2025-04-01 09:30 UTC):\n\nThey met.\n",
		"### Ann · 2025-04-01 09:30\n\nwhat is <|endoftext|>?\n",
		"### Assistant · 2025-04-01 09:30\n\nA special token.\n",
		"*In reply to the assistant:*\n\n> A special\n> token.\n\nshorter\n",
		"A tok\n\n*(this answer was cut off)*",
		"*(a voice message, not transcribed)*",
		"look\n\n*(1 picture)*",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the export lacks %q:\n%s", want, doc)
		}
	}
}

func targetGroup(group bool) reply.Target { return reply.Target{Group: group} }

// FuzzCutText: a summary cut to its bound fits it, and is the beginning of the text (less the
// "…" that marks a cut).
func FuzzCutText(f *testing.F) {
	f.Add("Alpha beta. Gamma delta epsilon.", 20, 5)
	f.Add("é🙂你好 <|endoftext|>", 3, 0)
	f.Add("", 0, 0)
	f.Fuzz(func(t *testing.T, text string, chars, tokens int) {
		if !utf8.ValidString(text) {
			return
		}
		chars, tokens = max(chars%5000, 0), tokens%2000
		if tokens <= 0 {
			tokens = math.MaxInt
		}
		got := cutText(text, chars, tokens)
		if utf8.RuneCountInString(got) > chars || tokens != math.MaxInt && history.CountTokens(got) > tokens {
			t.Fatalf("cutText(%q, %d, %d) = %q: over the bound", text, chars, tokens, got)
		}
		if !strings.HasPrefix(text, strings.TrimSuffix(got, "…")) {
			t.Fatalf("cutText(%q, %d, %d) = %q: not its beginning", text, chars, tokens, got)
		}
	})
}

// FuzzSummaryRequest: a summary request fits the budget with room for the answer, holds its
// turns oldest first from the first, and carries no special token.
func FuzzSummaryRequest(f *testing.F) {
	f.Add("They met.", "what is <|endoftext|>?", "A special token.", 2000, 500, 8)
	f.Add("", "hi", "", 0, 0, 0)
	f.Add(strings.Repeat("s", 300), strings.Repeat("q ", 800), strings.Repeat("a", 90), 900, 0, 0)
	f.Fuzz(func(t *testing.T, old, q, a string, chars, tokens, perMessage int) {
		b := history.Budget{Chars: max(chars, 0) % 20000, Tokens: max(tokens, 0) % 5000, PerMessage: max(perMessage, 0) % 20}
		limChars, limTokens, ok := summaryLimit(b, "")
		if !ok {
			return
		}
		turns := turnsOf(q, a, q+a, a)
		msgs, through := summaryRequest(b, old, turns, limChars, limTokens)
		if msgs == nil {
			return
		}
		if through < 1 || through > 4 {
			t.Fatalf("through %d, want one of the turns", through)
		}
		n := b.RequestTokens(msgs[0].Content, []history.Turn{{Role: history.RoleUser, Content: msgs[1].Content}})
		size := utf8.RuneCountInString(msgs[0].Content) + utf8.RuneCountInString(msgs[1].Content)
		if b.Chars > 0 && size > b.Chars {
			t.Fatalf("the request is %d characters, over %d", size, b.Chars)
		}
		if b.Tokens > 0 && n+limTokens > b.Tokens {
			t.Fatalf("the request counts %d tokens and the answer %d, over %d", n, limTokens, b.Tokens)
		}
		for _, m := range msgs {
			if strings.Contains(m.Content, "<|endoftext|>") {
				t.Fatalf("a special token in %q", m.Content)
			}
		}
	})
}
