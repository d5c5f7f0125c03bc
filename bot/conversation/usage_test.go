package conversation

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"aurabot/aura"
)

// The server's count is compared with the estimate: within a tenth (at least 16 tokens) says
// nothing; past it, once per model and direction, a warning when the server counts more (it
// will cut the conversation) and a note when it counts less.
func TestUsageCheck(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	u := &usageCheck{told: newOnce[string](forever)}
	ctx := context.Background()
	check := func(model string, estimate, real int) {
		u.check(ctx, log, model, estimate, 3, aura.Usage{PromptTokens: real})
	}

	check("m", 100, 116) // within 16
	check("m", 400, 440) // within a tenth
	check("m", 400, 360)
	check("m", 100, 0) // no count
	if buf.Len() != 0 {
		t.Fatalf("within the margin: got logs %q, want none", buf.String())
	}
	check("m", 100, 117)
	check("m", 100, 300)
	check("m", 400, 300)
	check("m", 400, 100)
	check("other", 100, 200)
	logs := buf.String()
	if n := strings.Count(logs, "level=WARN"); n != 2 || strings.Count(logs, "counts more tokens") != 2 {
		t.Errorf("got %d warnings, want one for each model: %s", n, logs)
	}
	if n := strings.Count(logs, "counts fewer tokens"); n != 1 {
		t.Errorf("got %d notes that the server counts fewer, want one: %s", n, logs)
	}
	if !strings.Contains(logs, "prompt_tokens=117") || !strings.Contains(logs, "estimate=100") || !strings.Contains(logs, "AURA_TOKENS_PER_MESSAGE") {
		t.Errorf("the warning lacks the figures or the setting: %s", logs)
	}
}

// replyChunks passes the answer and the thinking on, gives the usage to its callback, and ends
// with the error.
func TestReplyChunks(t *testing.T) {
	chunks := func(yield func(aura.Chunk, error) bool) {
		_ = yield(aura.Chunk{Thinking: "hm"}, nil) && yield(aura.Chunk{Text: "a"}, nil) && yield(aura.Chunk{}, nil) &&
			yield(aura.Chunk{Text: "b"}, nil) && yield(aura.Chunk{Usage: &aura.Usage{PromptTokens: 9}}, nil) &&
			yield(aura.Chunk{}, aura.ErrOutputLimit)
	}
	var got []string
	var used []aura.Usage
	var last error
	for c, err := range replyChunks(chunks, func(u aura.Usage) { used = append(used, u) }) {
		if err != nil {
			last = err
			continue
		}
		if c.Thinking != "" {
			got = append(got, "think:"+c.Thinking)
			continue
		}
		got = append(got, c.Text)
	}
	if strings.Join(got, "|") != "think:hm|a|b" || len(used) != 1 || used[0].PromptTokens != 9 || last != aura.ErrOutputLimit {
		t.Errorf("got %q, usage %+v, error %v; want the thinking, a, b, one usage and the error", got, used, last)
	}
}
