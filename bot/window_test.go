package bot

import (
	"context"
	"strings"
	"testing"

	"aurabot/aura"
	"aurabot/bot/conversation"
	"aurabot/history"
)

// The window counts tokens as the model server does: a message that fits in characters but not
// in tokens is refused with a notice saying how long it may be, and never sent; older turns
// that no longer fit are left out of the request (not trimmed silently by the server), and
// /system says how much of the conversation the model sees.
func TestWindowCountsTokens(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Budget: history.Budget{Chars: 100000, Tokens: 120}}})
	e.model.fn = func(_ context.Context, msgs []aura.Message, yield func(string, error) bool) {
		yield("ok "+strings.Repeat("word ", 60), nil)
	}
	cjk := strings.Repeat("漢字", 100) // 200 characters, far more than 120 tokens
	long := e.say(user, user, cjk)
	e.wait(func() bool { return hasText(e.tg, user, long, "too long") && hasText(e.tg, user, long, "tokens") })
	if n := len(e.model.requests()); n != 0 {
		t.Fatalf("model requests: got %d, want 0 for a message over the token window", n)
	}
	for i := range 3 {
		e.final(user, e.say(user, user, "question "+jsonInt(i)))
	}
	reqs := e.model.requests()
	last := reqs[len(reqs)-1]
	total := 0
	for _, m := range last {
		total += history.CountTokens(m.Content)
	}
	if total > 120 {
		t.Errorf("the last request holds %d tokens, over the window of 120", total)
	}
	if lastUser(last) != "question 2" || len(last) >= 6 {
		t.Errorf("the last request: got %d messages, want the newest that fit, ending with the question", len(last))
	}
	show := e.say(user, user, "/system")
	e.wait(func() bool { return hasText(e.tg, user, show, "The model sees the last") })
}
