package reply

import (
	"context"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/render"
	"aurabot/bot/telegramtest"
)

// memJournal records what a reply shows, in memory.
type memJournal struct {
	mu    sync.Mutex
	shown []Shown
}

func (j *memJournal) Owner() Owner { return 5 }
func (j *memJournal) Show(_ context.Context, s Shown) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.shown = append(j.shown, s)
	return nil
}
func (j *memJournal) Sending(context.Context, int, Sending) error          { return nil }
func (j *memJournal) Sent(context.Context, int, int, *Lost) (int64, error) { return 0, nil }
func (j *memJournal) Removed(context.Context, int) error                   { return nil }

func (j *memJournal) all() []Shown {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Shown(nil), j.shown...)
}

// waitFor waits until cond holds on srv's state.
func waitFor(t *testing.T, srv *telegramtest.Server, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Wait(ctx, cond); err != nil {
		t.Fatal(err)
	}
}

// The thinking is shown at once, counts as the first text the user sees, is recorded as shown,
// and is never part of the answer.
func TestThinkingIsTheFirstText(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	s := NewStreamer(newDeps(t, srv), Config{})
	j := &memJournal{}
	begin := time.Now()
	var answerAt time.Duration
	chunks := func(ctx context.Context) iter.Seq2[Chunk, error] {
		return func(yield func(Chunk, error) bool) {
			if !yield(Chunk{Thinking: "\n\nHmm, a greeting."}, nil) {
				return
			}
			waitFor(t, srv, func() bool { return len(srv.Messages(77)) > 0 })
			if !yield(Chunk{Thinking: " Say hello."}, nil) {
				return
			}
			// Shown as well: the reply has counted the first show by now, as it makes one at a time.
			waitFor(t, srv, func() bool { return srv.Messages(77)[0].Edits > 0 })
			answerAt = time.Since(begin)
			yield(Chunk{Text: "Hello!"}, nil)
		}
	}
	out := s.StreamWith(context.Background(), Target{ChatID: 77, ReplyTo: 1}, j, "stop:1", nil, chunks, Options{})
	if out.Err != nil || out.Text != "Hello!" {
		t.Fatalf("outcome: got (%q, %v), want the answer alone", out.Text, out.Err)
	}
	if out.FirstText <= 0 || out.FirstText >= answerAt {
		t.Errorf("first text after %v, the answer came after %v: want the thinking to count as the first text", out.FirstText, answerAt)
	}
	shown := j.all()
	if len(shown) < 2 || !strings.Contains(shown[0].Text, "Hmm, a greeting.") || strings.Contains(shown[0].Text, "Hello") {
		t.Fatalf("journal: got %+v, want the thinking recorded before the answer", shown)
	}
	last := shown[len(shown)-1]
	if !last.Final || render.WithoutThinking(last.Text) != "Hello!" || !strings.Contains(last.Text, "💭 Thought for") {
		t.Errorf("final record: got %+v, want the collapsed thinking and the answer", last)
	}
	m := srv.Messages(77)[0]
	if !strings.HasPrefix(m.Text, "💭 Thought for 1 s\nHmm, a greeting. Say hello.\n\nHello!") {
		t.Errorf("final message: got %q", m.Text)
	}
}

// A reply cut by a crash while the model thought shows what it showed, and has no answer to
// store; one cut after it answered gives back the answer alone.
func TestResumeWithThinking(t *testing.T) {
	srv := telegramtest.New()
	defer srv.Close()
	s := NewStreamer(newDeps(t, srv), Config{})
	id := send(t, srv, 9, "💭 Thinking…")
	head := render.Thinking("💭 Thinking… 4 s", "Let me see")
	text, _, _, err := s.Resume(context.Background(), Target{ChatID: 9}, nil, Recorded{Parts: []RecordedPart{{ID: id}}, Shown: Shown{Text: head}}, "⚠️ Interrupted")
	if err != nil || text != "" {
		t.Fatalf("resume during the thinking: got (%q, %v), want no answer", text, err)
	}
	m := srv.Messages(9)[0]
	if !strings.HasPrefix(m.Text, "💭 Thinking… 4 s\nLet me see") || !strings.Contains(m.Text, "Interrupted") {
		t.Errorf("resumed message: got %q, want the thinking shown and the interruption", m.Text)
	}
	if len(m.Entities) == 0 || m.Entities[0].Type != models.MessageEntityTypeExpandableBlockquote {
		t.Errorf("resumed message entities: got %+v, want the quote", m.Entities)
	}
	id2 := send(t, srv, 10, "x")
	final := render.Thinking("💭 Thought for 5 s", "Let me see") + "The **answer**."
	text, _, complete, err := s.Resume(context.Background(), Target{ChatID: 10}, nil, Recorded{Parts: []RecordedPart{{ID: id2}}, Shown: Shown{Text: final, Final: true, Complete: true}}, "⚠️ Interrupted")
	if err != nil || !complete || text != "The **answer**." {
		t.Errorf("resume after the answer: got (%q, %v, %v), want the answer alone, complete", text, complete, err)
	}
}

func TestThinkingBlock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var th thinking
	if b := th.block(true, false, t0); b != "" {
		t.Errorf("no thinking: got %q, want nothing", b)
	}
	th.add("  \n", t0)
	if b := th.block(true, false, t0); b != "" {
		t.Errorf("whitespace only: got %q, want nothing", b)
	}
	th.add("One.\nTwo.\nThree.\nFour.\n", t0)
	if got := render.Markdown(th.block(true, false, t0.Add(500*time.Millisecond))).Text; got != "💭 Thinking…\n…Two.\nThree.\nFour." {
		t.Errorf("live, newest lines: got %q", got)
	}
	if got := render.Markdown(th.block(false, false, t0.Add(12*time.Second))).Text; got != "💭 Thinking… 12 s" {
		t.Errorf("live, hidden: got %q", got)
	}
	th.answering(t0.Add(75 * time.Second))
	th.answering(t0.Add(99 * time.Second)) // the first start of the answer counts
	if got := render.Markdown(th.block(true, true, t0.Add(200*time.Second))).Text; got != "💭 Thought for 1 min 15 s\nOne.\nTwo.\nThree.\nFour." {
		t.Errorf("collapsed: got %q", got)
	}
	if got := render.Markdown(th.block(false, true, t0)).Text; got != "💭 Thought for 1 min 15 s" {
		t.Errorf("collapsed, hidden: got %q", got)
	}
	var long thinking
	for range 400 {
		long.add("a long thought without end ", t0)
	}
	if long.tail.Len() > 2*quoteBytes {
		t.Errorf("kept %d bytes of thinking, want at most %d", long.tail.Len(), 2*quoteBytes)
	}
	live := render.Markdown(long.block(true, false, t0)).Text
	if n := len([]rune(live)); n > liveRunes+20 || !strings.Contains(live, "\n…") {
		t.Errorf("live quote of a long thinking: got %d characters %q, want its end, cut", n, live)
	}
	if got := render.Markdown(long.block(true, true, t0)).Text; got != "💭 Thought for 1 s" {
		t.Errorf("collapsed long thinking: got %q, want the one line", got)
	}
	if got := newest(strings.Repeat("x", 500), false); len(got) > liveRunes+len("…") || !strings.HasPrefix(got, "…") {
		t.Errorf("newest of one long word: got %q", got)
	}
}
