package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"aurabot/aura"
	"aurabot/history"
)

// An answer cut at the model's output limit says so under the reply, naming the setting, and the
// note is kept out of what is stored and sent back to the model.
func TestAnswerAtOutputLimitSaysSo(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		if lastUser(msgs) == "long" {
			if yield("A long answer that stops", nil) {
				yield("", fmt.Errorf("aura: %w", &aura.OutputLimitError{MaxTokens: 64})) // as the client cuts it with AURA_MAX_OUTPUT_TOKENS=64
			}
			return
		}
		yield("ok", nil)
	}
	id := e.say(user, user, "long")
	msgs := e.final(user, id)
	last := msgs[len(msgs)-1]
	if !strings.HasPrefix(last.Text, "A long answer that stops") || !strings.Contains(last.Text, "AURA_MAX_OUTPUT_TOKENS=64") {
		t.Fatalf("reply: got %q, want the text and a note naming AURA_MAX_OUTPUT_TOKENS", last.Text)
	}
	italic := false
	for _, ent := range last.Entities {
		italic = italic || ent.Type == "italic"
	}
	if !italic {
		t.Errorf("the note is not italic: %+v", last.Entities)
	}
	ts := e.answered(history.Key{ChatID: user}, 2)
	if ts[1].Content != "A long answer that stops" || ts[1].Status != history.StatusDone {
		t.Errorf("stored: got %+v, want the text alone, done", ts[1])
	}
	e.final(user, e.say(user, user, "next"))
	reqs := e.model.requests()
	for _, m := range reqs[len(reqs)-1] {
		if strings.Contains(m.Content, "AURA_MAX_OUTPUT_TOKENS") || strings.Contains(m.Content, "cut off") {
			t.Errorf("sent back to the model: %q", m.Content)
		}
	}
}

// Every failure notice starts with the warning sign, the empty answer's too.
func TestEmptyAnswerNoticeWarns(t *testing.T) {
	e := newEnv(t, Config{})
	e.model.fn = chunks()
	msgs := e.final(user, e.say(user, user, "hi"))
	if !strings.HasPrefix(msgs[0].Text, "⚠️ The model sent an empty answer") {
		t.Errorf("got %q, want a warning", msgs[0].Text)
	}
}
