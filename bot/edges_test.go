package bot

import (
	"strings"
	"testing"

	"aurabot/bot/conversation"
	"aurabot/bot/telegramtest"
	"aurabot/history"
)

// Every text the bot sends goes through the same splitting as answers: a notice longer than
// one Telegram message (a long system prompt shown back, the "unknown command" notice of a very
// long command) arrives in several messages instead of being refused as too long.
func TestLongNoticesAreSplit(t *testing.T) {
	e := newEnv(t, Config{Conversation: conversation.Config{Budget: history.Budget{Chars: 100000}}})
	prompt := strings.Repeat("p", 4080)
	set := e.say(user, user, "/system "+prompt)
	e.wait(func() bool { return hasText(e.tg, user, set, "System prompt set") })
	show := e.say(user, user, "/system")
	e.wait(func() bool { return hasText(e.tg, user, show, "The system prompt is") })
	unknown := e.say(user, user, "/"+strings.Repeat("x", 4090))
	e.wait(func() bool { return hasText(e.tg, user, unknown, "I don't know") })
	e.stop()
	shown := ""
	parts := 0
	for _, m := range e.tg.Messages(user) {
		if m.ReplyTo == show || m.ReplyTo == 0 && strings.Contains(m.Text, "ppp") {
			shown += m.Text
			parts++
		}
	}
	if parts < 2 || strings.Count(shown, "p") < 4080 {
		t.Errorf("the prompt shown back: %d messages holding %d p's, want it whole in at least 2", parts, strings.Count(shown, "p"))
	}
	for _, c := range e.tg.Calls("sendMessage") {
		if c.Status == 400 {
			t.Errorf("a sendMessage was refused: %.80q", c.Params["text"])
		}
	}
}

// Any 400 about formatting, however Telegram words it, falls back to plain text: a mention
// link Telegram refuses leaves no reply stuck.
func TestRefusedMentionFallsBackToPlainText(t *testing.T) {
	e := newEnv(t, Config{})
	e.tg.SetFaults(func(method string, p map[string]string) *telegramtest.Fault {
		if strings.Contains(p["entities"], "tg://user") {
			return &telegramtest.Fault{Code: 400, Description: "Bad Request: ENTITY_MENTION_USER_INVALID"}
		}
		return nil
	})
	e.model.fn = chunks("Ask [the admin](tg://user?id=123) about it.")
	msgs := e.final(user, e.say(user, user, "who?"))
	if msgs[0].Text != "Ask the admin about it." || len(msgs[0].Entities) != 0 {
		t.Errorf("got %q %+v, want the text, plain", msgs[0].Text, msgs[0].Entities)
	}
}
