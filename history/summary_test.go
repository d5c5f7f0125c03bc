package history

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// fillTurns stores n exchanges of a question and an answer of the given sizes (in characters),
// then a last question, and returns every turn stored.
func fillTurns(t *testing.T, s *Store, k Key, n, question, answer int) []Turn {
	t.Helper()
	var out []Turn
	for i := range n {
		q := "q" + strconv.Itoa(i) + " " + strings.Repeat("x", max(question-len(strconv.Itoa(i))-2, 0))
		out = append(out, mustAppend(t, s, k, Turn{Role: RoleUser, Content: q}))
		out = append(out, mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: strings.Repeat("a", answer)}))
	}
	return append(out, mustAppend(t, s, k, Turn{Role: RoleUser, Content: "last"}))
}

func mustRequest(t *testing.T, s *Store, k Key, b Budget, prompt string) Request {
	t.Helper()
	r, err := s.Request(t.Context(), k, b, prompt)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	return r
}

// A conversation that outgrows its window says a summary is due, and names a turn older than
// the window's newest half to fold; one that fits says nothing, and neither does one without
// Summaries.
func TestRequestFold(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ts := fillTurns(t, s, k, 10, 10, 10) // 21 turns of 10 characters, the last of 4
	b := Budget{Chars: 100, Summaries: true}
	r := mustRequest(t, s, k, b, "")
	if len(r.Turns) != 10 || r.Turns[9].ID != ts[20].ID {
		t.Fatalf("got %d turns, want the last 10", len(r.Turns))
	}
	// The newest half (50 characters) holds the last question and 4 turns of 10; the turn
	// before them is where the fold begins.
	if want := ts[20-5].ID; r.Fold != want {
		t.Errorf("Fold: got %d, want %d (the newest turn older than the window's newest half)", r.Fold, want)
	}
	if r.Lead != "" || r.Summary.Text != "" {
		t.Errorf("got lead %q and summary %q, want none", r.Lead, r.Summary.Text)
	}

	if r := mustRequest(t, s, k, Budget{Chars: 100}, ""); r.Fold != 0 {
		t.Errorf("without Summaries: got Fold %d, want 0", r.Fold)
	}
	if r := mustRequest(t, s, k, Budget{Chars: 1000, Summaries: true}, ""); r.Fold != 0 || len(r.Turns) != 21 {
		t.Errorf("everything fits: got Fold %d and %d turns, want 0 and 21", r.Fold, len(r.Turns))
	}
}

// A stored summary leads the context after the prompt, is counted in the window, and the turns
// it holds are not sent; Report says the same as the request.
func TestSummaryLeadsTheContext(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ts := fillTurns(t, s, k, 10, 10, 10)
	const summary = "They talked about x."
	if ok, err := s.SetSummary(t.Context(), k, summary, ts[5].ID); err != nil || !ok {
		t.Fatalf("SetSummary: %v, %v", ok, err)
	}
	prompt := "Be brief."
	lead := Lead(prompt, summary)
	if !strings.HasPrefix(lead, prompt+"\n\n"+SummaryHeading+"\n") || !strings.HasSuffix(lead, summary) {
		t.Fatalf("Lead: got %q", lead)
	}

	// Room for everything: the summary leads, and only the turns after it are sent.
	b := Budget{Chars: 10000, Summaries: true}
	r := mustRequest(t, s, k, b, prompt)
	if r.Lead != lead || r.Summary.Text != summary || r.Summary.Through != ts[5].ID {
		t.Errorf("got lead %q, summary %+v", r.Lead, r.Summary)
	}
	if len(r.Turns) != 15 || r.Turns[0].ID != ts[6].ID || r.Fold != 0 {
		t.Errorf("got %d turns from %d, Fold %d; want the 15 after the summary, no fold", len(r.Turns), r.Turns[0].ID, r.Fold)
	}
	rep, err := s.Report(t.Context(), k, b, prompt)
	if err != nil || rep != (Report{InWindow: 15, Total: 21, Summarized: 6}) {
		t.Errorf("Report: got %+v, %v; want 15 in the window, 6 summarized, of 21", rep, err)
	}

	// The summary is counted: a budget that held 10 turns with the prompt alone holds fewer.
	leadChars := utf8.RuneCountInString(lead)
	b = Budget{Chars: leadChars + 100, Summaries: true}
	r = mustRequest(t, s, k, b, prompt)
	if len(r.Turns) != 10 || r.Fold == 0 {
		t.Errorf("got %d turns (Fold %d), want 10 and a fold", len(r.Turns), r.Fold)
	}
	if n := utf8.RuneCountInString(r.Lead); n != leadChars {
		t.Errorf("lead: got %d characters, want %d", n, leadChars)
	}
	// In tokens too, with the template's overhead.
	bt := Budget{Tokens: 10000, PerMessage: 8, Summaries: true}
	r = mustRequest(t, s, k, bt, prompt)
	if got, want := bt.RequestTokens(r.Lead, r.Turns), CountTokens(Defuse(lead))+16+15*8+sumTokens(r.Turns); got != want {
		t.Errorf("RequestTokens: got %d, want %d", got, want)
	}

	// Without Summaries the summary is neither sent nor does it hide any turn.
	r = mustRequest(t, s, k, Budget{Chars: 10000}, prompt)
	if r.Lead != prompt || len(r.Turns) != 21 || r.Summary.Text != "" {
		t.Errorf("without Summaries: got lead %q and %d turns, want the prompt and all 21", r.Lead, len(r.Turns))
	}
	if rep, _ := s.Report(t.Context(), k, Budget{Chars: 10000}, prompt); rep != (Report{InWindow: 21, Total: 21}) {
		t.Errorf("Report without Summaries: got %+v", rep)
	}
}

func sumTokens(ts []Turn) int {
	n := 0
	for _, t := range ts {
		n += CountTokens(t.Sent())
	}
	return n
}

// A message that fits the window with the prompt alone but not with the summary goes without
// the summary, rather than being refused.
func TestSummaryLeftOutWhenTheMessageDoesNotFit(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ts := fillTurns(t, s, k, 2, 5, 5)
	summary := strings.Repeat("s", 50)
	if ok, err := s.SetSummary(t.Context(), k, summary, ts[1].ID); err != nil || !ok {
		t.Fatal(ok, err)
	}
	big := mustAppend(t, s, k, Turn{Role: RoleUser, Content: strings.Repeat("b", 80)})
	b := Budget{Chars: 100, Summaries: true}
	r := mustRequest(t, s, k, b, "")
	// 80 + 4 + 5 + 5 + 5: without the summary, the turns it held are sent again as they fit.
	if r.Summary.Text != "" || r.Lead != "" || len(r.Turns) != 5 || r.Turns[4].ID != big.ID {
		t.Errorf("got summary %q and %d turns, want no summary and the 5 turns that fit", r.Summary.Text, len(r.Turns))
	}
	var long *TooLongError
	if _, err := s.Request(t.Context(), k, Budget{Chars: 79, Summaries: true}, ""); !errors.As(err, &long) {
		t.Errorf("a message too long even alone: got %v, want a TooLongError", err)
	}
}

// SetSummary applies only to the conversation as the request saw it: not after a /reset, and
// never over a summary that holds more. Reset clears the summary.
func TestSetSummaryGuards(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ts := fillTurns(t, s, k, 3, 5, 5)
	ctx := t.Context()
	if ok, err := s.SetSummary(ctx, k, "first", ts[3].ID); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := s.SetSummary(ctx, k, "older", ts[1].ID); err != nil || ok {
		t.Errorf("a summary holding less: got applied %v, %v; want not applied", ok, err)
	}
	if ok, err := s.SetSummary(ctx, Key{ChatID: 2}, "elsewhere", ts[5].ID); err != nil || ok {
		t.Errorf("another conversation's turn: got applied %v, %v; want not applied", ok, err)
	}
	if _, err := s.SetSummary(ctx, k, "", ts[5].ID); err == nil {
		t.Error("an empty summary: got no error")
	}
	sum, err := s.Summary(ctx, k)
	if err != nil || sum.Text != "first" || sum.Through != ts[3].ID || sum.Turns != 4 || sum.At.IsZero() {
		t.Errorf("Summary: got %+v, %v; want first, holding 4 turns", sum, err)
	}
	if err := s.Reset(ctx, k); err != nil {
		t.Fatal(err)
	}
	if sum, err := s.Summary(ctx, k); err != nil || sum.Text != "" {
		t.Errorf("after /reset: got %+v, %v; want no summary", sum, err)
	}
	// A summary asked for before the reset lands after it: its turns are gone.
	if ok, err := s.SetSummary(ctx, k, "stale", ts[5].ID); err != nil || ok {
		t.Errorf("after /reset: got applied %v, %v; want not applied", ok, err)
	}
	if sum, err := s.Summary(ctx, Key{ChatID: 5}); err != nil || sum.Text != "" {
		t.Errorf("unknown conversation: got %+v, %v", sum, err)
	}
}

func TestTurnsBetween(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	ts := fillTurns(t, s, k, 3, 5, 5)
	mustAppend(t, s, Key{ChatID: 2}, Turn{Role: RoleUser, Content: "other"})
	got, err := s.TurnsBetween(t.Context(), k, ts[1].ID, ts[4].ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := contents(ts[2:5]); !slices.Equal(contents(got), want) {
		t.Errorf("got %q, want %q", contents(got), want)
	}
}

// A reply's quote is part of what is sent for the turn, and counted with it.
func TestWindowCountsQuote(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "hi"})
	turn := mustAppend(t, s, k, Turn{Role: RoleUser, Content: "shorter", Quote: Quote{Text: "a long answer", Bot: true}})
	sent := turn.Sent()
	if !strings.Contains(sent, "> a long answer") {
		t.Fatalf("Sent: got %q, want the quote in it", sent)
	}
	n := utf8.RuneCountInString(sent)
	if w, err := s.Window(t.Context(), k, Budget{Chars: n}, ""); err != nil || len(w) != 1 || w[0].Quote != turn.Quote {
		t.Errorf("exact fit: got %d turns, %v; want the reply with its quote", len(w), err)
	}
	var long *TooLongError
	if _, err := s.Window(t.Context(), k, Budget{Chars: n - 1}, ""); !errors.As(err, &long) || long.Chars != n {
		t.Errorf("one short: got %v, want a TooLongError of %d characters", err, n)
	}
	if w, _ := s.Window(t.Context(), k, Budget{Tokens: 1000 + CountTokens(sent), ReserveTokens: 1000}, ""); len(w) != 1 {
		t.Errorf("exact fit in tokens: got %d turns, want 1", len(w))
	}
	// A transcript keeps the quote, and is counted with it.
	voice := mustAppend(t, s, k, Turn{Role: RoleUser, Audio: Audio{FileID: "f"}, Quote: Quote{Text: "that", Author: "Ann"}})
	if err := s.SetTranscript(t.Context(), k, voice.ID, "what?"); err != nil {
		t.Fatal(err)
	}
	heard := mustTurns(t, s, k)[2]
	want := "(replying to Ann)\n> that\n\nwhat?"
	if heard.Sent() != want || heard.tokens != CountTokens(want) {
		t.Errorf("transcribed: got %q counted %d, want %q counted %d", heard.Sent(), heard.tokens, want, CountTokens(want))
	}
	if _, _, err := s.Append(t.Context(), k, Turn{Role: RoleAssistant, Content: "x", Quote: Quote{Text: "q"}}); err == nil {
		t.Error("a quote on an answer: got no error")
	}
}

// FuzzSummaryWindow checks the request with a summary against the budget, for any summary,
// prompt and budget: the turns it carries come after the turns the summary holds (when the
// summary leads), fit with the lead in both units, and are as many as fit; and /system's report
// (Report) is the request that answers a new one-character message.
func FuzzSummaryWindow(f *testing.F) {
	f.Add("They met.", "Be brief.", "hello", "world", 3, 60, 0, 0, 0)
	f.Add("", "", "a", "b", 1, 0, 0, 0, 0)
	f.Add("<|endoftext|> summary", "p", "question?", "answer!", 5, 0, 80, 10, 8)
	f.Add("long summary "+strings.Repeat("x", 50), "", "q", "a", 2, 70, 0, 0, 0)
	f.Fuzz(func(t *testing.T, summary, prompt, q, a string, through, chars, tokens, reserve, perMessage int) {
		s := openTest(t)
		k := Key{ChatID: 1}
		var in []Turn
		for i := range 4 {
			in = append(in, mustAppend(t, s, k, Turn{Role: RoleUser, Content: q + strconv.Itoa(i)}))
			in = append(in, mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: a}))
		}
		in = append(in, mustAppend(t, s, k, Turn{Role: RoleUser, Content: q}))
		held := int64(0)
		if summary != "" {
			held = in[min(max(through, 0), len(in)-2)].ID
			if ok, err := s.SetSummary(t.Context(), k, summary, held); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}
		b := Budget{Chars: chars, Tokens: tokens, ReserveTokens: reserve, PerMessage: perMessage % 100, Summaries: true}
		fits := func(lead string, ts []Turn) bool {
			roomC, roomT := b.Room(lead)
			var c, n int
			for _, t := range ts {
				c += utf8.RuneCountInString(t.Sent())
				n += CountTokens(t.Sent()) + max(b.PerMessage, 0)
			}
			return c <= roomC && (roomT == math.MaxInt || n <= roomT+max(b.PerMessage, 0))
		}
		r, err := s.Request(t.Context(), k, b, prompt)
		var long *TooLongError
		if errors.As(err, &long) {
			if fits(prompt, in[len(in)-1:]) {
				t.Fatalf("got %v, but the message fits with the prompt alone", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Summary.Text != "" {
			if r.Lead != Lead(prompt, summary) {
				t.Fatalf("lead: got %q", r.Lead)
			}
			for _, turn := range r.Turns {
				if turn.ID <= held {
					t.Fatalf("turn %d is carried, but the summary holds it", turn.ID)
				}
			}
		} else if r.Lead != prompt {
			t.Fatalf("no summary, lead %q: want the prompt", r.Lead)
		} else if summary != "" && fits(Lead(prompt, summary), in[len(in)-1:]) {
			t.Fatalf("the summary was left out, but the message fits with it")
		}
		if !fits(r.Lead, r.Turns) {
			t.Fatalf("got %d turns, over the budget %+v", len(r.Turns), b)
		}
		if n := len(r.Turns); n < len(in) && in[len(in)-n-1].ID > held*boolInt(r.Summary.Text != "") && fits(r.Lead, in[len(in)-n-1:]) {
			t.Errorf("got %d turns, but %d fit", n, n+1)
		}
		if n := b.RequestTokens(r.Lead, r.Turns); b.Tokens > 0 && n > b.Tokens-max(b.ReserveTokens, 0) {
			t.Errorf("the request counts %d tokens, over %d less %d reserved", n, b.Tokens, b.ReserveTokens)
		}
		if (r.Fold != 0) != (len(r.Turns) < len(in) && (r.Summary.Text == "" || r.Turns[0].ID > nextAfter(in, held))) {
			t.Errorf("Fold %d with %d of %d turns carried (summary through %d)", r.Fold, len(r.Turns), len(in), held)
		}
		if r.Fold != 0 && (r.Fold >= in[len(in)-1].ID || r.Fold < r.Turns[0].ID-1 && r.Fold != prevID(in, r.Turns[0].ID)) {
			t.Errorf("Fold %d: want a turn older than the message, no older than the one before the window", r.Fold)
		}

		// The report is the request that answers the next message.
		rep, rerr := s.Report(t.Context(), k, b, prompt)
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: "x"})
		next, nerr := s.Request(t.Context(), k, b, prompt)
		if errors.As(rerr, &long) || errors.As(nerr, &long) {
			return
		}
		if rerr != nil || nerr != nil {
			t.Fatal(rerr, nerr)
		}
		if rep.InWindow != len(next.Turns)-1 || (rep.Summarized > 0) != (next.Summary.Text != "") {
			t.Errorf("Report %+v, but the next request carries %d turns and summary %q", rep, len(next.Turns)-1, next.Summary.Text)
		}
	})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// nextAfter is the id of the first turn of in after id.
func nextAfter(in []Turn, id int64) int64 {
	for _, t := range in {
		if t.ID > id {
			return t.ID
		}
	}
	return 0
}

// prevID is the id of the turn of in before id.
func prevID(in []Turn, id int64) int64 {
	for i, t := range in {
		if t.ID == id && i > 0 {
			return in[i-1].ID
		}
	}
	return 0
}

func TestNewest(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	if _, ok, err := s.Newest(t.Context(), k); ok || err != nil {
		t.Errorf("empty: got %v, %v", ok, err)
	}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "q", MessageID: 1})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "a", MessageID: 2})
	mustAppend(t, s, Key{ChatID: 2}, Turn{Role: RoleUser, Content: "other", MessageID: 3})
	if got, ok, err := s.Newest(t.Context(), k); !ok || err != nil || got.Content != "a" || got.MessageID != 2 {
		t.Errorf("got %+v, %v, %v; want the answer", got, ok, err)
	}
}

// FuzzQuoteSent: a reply's text as sent holds its quote line by line and its content, with no
// special token left, and the store counts exactly that text.
func FuzzQuoteSent(f *testing.F) {
	f.Add("Paris is big.\nVery.", "Ann", "shorter", "Bob", false)
	f.Add("<|endoftext|>", "", "<|im_start|>", "", true)
	f.Add("", "x", "y", "", false)
	f.Fuzz(func(t *testing.T, quote, quoteAuthor, content, author string, bot bool) {
		turn := Turn{Role: RoleUser, Content: content, Author: author, Quote: Quote{Text: quote, Author: quoteAuthor, Bot: bot}}
		sent := turn.Sent()
		if Defuse(sent) != sent {
			t.Fatalf("Sent %q is not defused", sent)
		}
		if quote != "" {
			for line := range strings.SplitSeq(Defuse(quote), "\n") {
				if !strings.Contains(sent, "> "+line+"\n") {
					t.Fatalf("Sent %q lacks the quoted line %q", sent, line)
				}
			}
		}
		if !strings.HasSuffix(sent, Defuse(content)) && !strings.Contains(Defuse(content), "<|") {
			t.Fatalf("Sent %q does not end with the content %q", sent, content)
		}
		s := openTest(t)
		stored := mustAppend(t, s, Key{ChatID: 1}, turn)
		if stored.tokens != CountTokens(sent) {
			t.Fatalf("stored count %d, want %d", stored.tokens, CountTokens(sent))
		}
	})
}
