package conversation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"aurabot/aura"
	"aurabot/history"
)

// Summaries instead of forgetting (SUMMARIES, on by default).
//
// When a request leaves out turns the summary does not hold yet (history.Request.Fold), the
// conversation's own model is asked, in the background, for a summary of the old one and the
// turns up to Fold. Stored with the conversation, it leads the context after the system prompt.
//
// It is asked for once the answer has ended (a server that serves one request at a time
// answers the user first); until then the oldest turns are dropped. After a failure (logged
// once as a warning until one works) the conversation tries again after 1, 2, 4, ... (at most
// 64) requests that leave turns out. It counts in the usage of the user whose message needed
// it, and is not made for a user past a cap.

const (
	maxSummaryChars    = 8000 // however large the window: what a summary holds is the gist
	minSummaryChars    = 200  // a window whose quarter is smaller gets no summary
	minSummaryTokens   = 50
	maxSummaryFailures = 10000 // conversations whose failures are remembered
)

// summaryInstructions is the system message of a summary request; %d is the most words.
const summaryInstructions = `You keep the memory of a conversation between a user (or the members of a group chat, named before their messages) and an AI assistant. The older messages of the conversation no longer fit the assistant's context window: you write the summary that replaces them.

Write one summary that holds the summary so far (if there is one) and the messages that follow it. Keep what the rest of the conversation may need: who is who, facts and numbers given, decisions, preferences and instructions the user gave, questions still open, and what the assistant answered or promised. Leave out greetings and small talk. Write in the conversation's language, in plain sentences, at most %d words. Answer with the summary alone.`

// summaries are the summary requests running: at most one per conversation, a few at once.
type summaries struct {
	ctx  context.Context // ends with stop: a summary being written is dropped
	stop context.CancelFunc
	wg   sync.WaitGroup
	sem  chan struct{}

	mu       sync.Mutex
	running  map[history.Key]bool
	failures map[history.Key]*summaryFailures
	failing  bool // the log said summaries fail, and has not said since that they work
}

type summaryFailures struct {
	n    int // in a row
	skip int // requests to let go by before the next try
}

func newSummaries(concurrent int) *summaries {
	ctx, stop := context.WithCancel(context.Background())
	return &summaries{ctx: ctx, stop: stop, sem: make(chan struct{}, concurrent),
		running: map[history.Key]bool{}, failures: map[history.Key]*summaryFailures{}}
}

// begin reports whether a summary of k may start now, and takes its place.
func (s *summaries) begin(k history.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || s.running[k] {
		return false
	}
	if f := s.failures[k]; f != nil && f.skip > 0 {
		f.skip--
		return false
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return false // the next request that leaves turns out asks again
	}
	s.running[k] = true
	return true
}

func (s *summaries) end(k history.Key) {
	s.mu.Lock()
	delete(s.running, k)
	s.mu.Unlock()
	<-s.sem
}

// failed notes that a summary of k failed, and reports the first failure since one worked.
func (s *summaries) failed(k history.Key) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[k]
	if f == nil {
		if len(s.failures) >= maxSummaryFailures {
			for other := range s.failures { // forget one at random: it tries again sooner
				delete(s.failures, other)
				break
			}
		}
		f = &summaryFailures{}
		s.failures[k] = f
	}
	f.n++
	f.skip = 1<<min(f.n-1, 6) - 1
	first = !s.failing
	s.failing = true
	return first
}

// worked notes that a summary of k was written; it reports whether summaries had been failing.
func (s *summaries) worked(k history.Key) (recovered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, k)
	recovered = s.failing
	s.failing = false
	return recovered
}

// summaryLimit is a quarter of the room beside prompt (at most maxSummaryChars); !ok: too little.
func summaryLimit(b history.Budget, prompt string) (chars, tokens int, ok bool) {
	c, t := b.Room(prompt)
	chars, tokens = min(c/4, maxSummaryChars), t
	if t != math.MaxInt {
		tokens = t / 4
	}
	return chars, tokens, chars >= minSummaryChars && tokens >= minSummaryTokens
}

// summaryWords is how many words fit chars and tokens: about 6 characters and 1.4 tokens each.
func summaryWords(chars, tokens int) int {
	words := chars / 8
	if tokens != math.MaxInt {
		words = min(words, tokens*2/3)
	}
	return max(words, 20)
}

// summarizeLater decides whether the summary request says is due is written, once start is called.
func (h *Handler) summarizeLater(ctx context.Context, r req, model, prompt string, request history.Request) (start func()) {
	start = func() {}
	if !h.cfg.Budget.Summaries || request.Fold == 0 || request.Fold <= request.Summary.Through {
		return start
	}
	chars, tokens, ok := summaryLimit(h.cfg.Budget, prompt)
	if !ok {
		return start
	}
	if _, over := h.overCap(ctx, r.from); over || !h.sums.begin(r.k) {
		return start
	}
	h.deps.Log.Debug("summarising a conversation's oldest turns", "chat_id", r.k.ChatID, "thread_id", r.k.ThreadID,
		"after", request.Summary.Through, "through", request.Fold)
	ready := make(chan struct{})
	h.sums.wg.Go(func() {
		defer h.sums.end(r.k)
		select {
		case <-ready:
		case <-h.sums.ctx.Done():
		}
		err := h.summarize(h.sums.ctx, r, model, request, chars, tokens)
		switch {
		case err == nil:
			if h.sums.worked(r.k) {
				h.deps.Log.Info("summaries work again: conversations that outgrow the context window are summarised")
			}
		case h.sums.ctx.Err() != nil: // shutting down: the next request asks again
		case h.sums.failed(r.k):
			h.deps.Log.Warn("a summary request failed: conversations go on, their oldest messages dropped as they fall out of the context window, "+
				"until a summary works (logged once; later failures at debug level)", "chat_id", r.k.ChatID, "model", model, "err", err)
		default:
			h.deps.Log.Debug("a summary request failed", "chat_id", r.k.ChatID, "model", model, "err", err)
		}
		h.deps.Log.Debug("summary request ended", "chat_id", r.k.ChatID, "thread_id", r.k.ThreadID, "ok", err == nil)
	})
	return sync.OnceFunc(func() { close(ready) })
}

// summarize asks model for a summary of request's and the turns up to Fold, and stores it.
func (h *Handler) summarize(ctx context.Context, r req, model string, request history.Request, chars, tokens int) error {
	turns, err := h.deps.Store.TurnsBetween(ctx, r.k, request.Summary.Through, request.Fold)
	if err != nil {
		return err
	}
	msgs, through := summaryRequest(h.cfg.Budget, request.Summary.Text, turns, chars, tokens)
	if through == 0 {
		return errors.New("the turns to summarise do not fit a request")
	}
	if msgs == nil { // nothing in the range is sent: the summary holds it as it is
		if request.Summary.Text != "" {
			_, err = h.deps.Store.SetSummary(context.WithoutCancel(ctx), r.k, request.Summary.Text, through)
		}
		return err
	}
	var (
		text strings.Builder
		used *aura.Usage
		serr error
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c, err := range h.deps.Model.Chat(cctx, model, msgs) {
		if err != nil {
			serr = err
			break
		}
		if c.Usage != nil {
			u := *c.Usage
			used = &u
		}
		text.WriteString(c.Text)
		if utf8.RuneCountInString(text.String()) > 4*chars {
			break // far past what is kept: the rest would be cut anyway
		}
	}
	estimate := h.cfg.Budget.RequestTokens(msgs[0].Content, []history.Turn{{Role: history.RoleUser, Content: msgs[1].Content}})
	h.countUsage(ctx, r, history.UsageSummary, used, estimate, text.String(), text.Len() > 0)
	if serr != nil {
		return serr
	}
	summary := cutText(strings.TrimSpace(text.String()), chars, tokens)
	if summary == "" {
		return errors.New("the model sent an empty summary")
	}
	applied, err := h.deps.Store.SetSummary(context.WithoutCancel(ctx), r.k, summary, through)
	if err != nil {
		return err
	}
	h.deps.Log.Debug("stored a conversation's summary", "chat_id", r.k.ChatID, "thread_id", r.k.ThreadID,
		"through", through, "chars", utf8.RuneCountInString(summary), "applied", applied)
	return nil
}

// summaryRequest is a summary request: the instructions, then the old summary and as many of
// the turns as fit b with room for the answer. through is the last turn it holds (0 when not
// even the first fits, cut); msgs is nil when none of them is sent.
func summaryRequest(b history.Budget, old string, turns []history.Turn, chars, tokens int) (msgs []aura.Message, through int64) {
	system := fmt.Sprintf(summaryInstructions, summaryWords(chars, tokens))
	roomChars, roomTokens := b.Room(system)
	if roomTokens != math.MaxInt && tokens != math.MaxInt {
		roomTokens -= tokens // the answer must fit too, where the window does not keep room for it
	}
	fits := func(text string) bool { return within(text, roomChars, roomTokens) }
	var head strings.Builder
	if old != "" {
		head.WriteString("The summary so far:\n" + old + "\n\n")
	}
	head.WriteString("The messages that follow it:\n\n")
	const tail = "Write the new summary."
	build := func(lines []string) string {
		return history.Defuse(head.String() + strings.Join(lines, "\n\n") + "\n\n" + tail)
	}

	// Sizes are added up line by line, then the whole is counted and trimmed if the sum was short.
	base := build(nil)
	usedChars, usedTokens := utf8.RuneCountInString(base), history.CountTokens(base)
	var (
		lines []string
		ids   []int64
	)
	for _, t := range turns {
		line := transcriptLine(t)
		if line == "" {
			through = t.ID // not sent: nothing to hold of it
			continue
		}
		c, n := utf8.RuneCountInString(line)+2, history.CountTokens(line)+1
		if usedChars+c > roomChars || roomTokens != math.MaxInt && usedTokens+n > roomTokens {
			if len(lines) == 0 {
				lines, ids = append(lines, line), append(ids, t.ID) // cut below
			}
			break
		}
		usedChars, usedTokens = usedChars+c, usedTokens+n
		lines, ids = append(lines, line), append(ids, t.ID)
		through = t.ID
	}
	if len(lines) == 0 {
		return nil, through
	}
	for len(lines) > 1 && !fits(build(lines)) {
		lines, ids = lines[:len(lines)-1], ids[:len(ids)-1]
	}
	if !fits(build(lines)) {
		line := fitLine(lines[0], func(l string) bool { return fits(build([]string{l})) })
		if line == "" {
			return nil, 0
		}
		lines = []string{line}
	}
	through = ids[len(ids)-1]
	return []aura.Message{
		{Role: aura.RoleSystem, Content: system},
		{Role: aura.RoleUser, Content: build(lines)},
	}, through
}

// transcriptLine is a turn as a summary request shows it; "" if not sent.
func transcriptLine(t history.Turn) string {
	if !t.IsSent() {
		return ""
	}
	line := t.Sent()
	switch {
	case t.Role == history.RoleAssistant:
		line = "Assistant: " + line
	case t.Author == "":
		line = "User: " + line
	}
	if n := t.ImageCount(); n == 1 {
		line += " [with a picture]"
	} else if n > 1 {
		line += fmt.Sprintf(" [with %d pictures]", n)
	}
	return line
}

// fitLine is the longest beginning of line, marked "…", for which fits holds; "" if none does.
func fitLine(line string, fits func(string) bool) string {
	runes := []rune(line)
	lo, hi := 0, len(runes) // fits(runes[:lo]+"…") holds or lo is 0; runes[:hi] is too much
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if fits(string(runes[:mid]) + "…") {
			lo = mid
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return ""
	}
	return string(runes[:lo]) + "…"
}

// cutText cuts text to chars and tokens, at a sentence's or word's end where it can.
func cutText(text string, chars, tokens int) string {
	fits := func(s string) bool { return within(s, chars, tokens) }
	if fits(text) {
		return text
	}
	cut := fitLine(text, fits)
	if cut == "" {
		return ""
	}
	body := strings.TrimSuffix(cut, "…")
	if i := strings.LastIndexAny(body, ".!?\n"); i > len(body)/2 {
		return body[:i+1]
	}
	if i := strings.LastIndexByte(body, ' '); i > len(body)/2 {
		return body[:i] + "…"
	}
	return cut
}
