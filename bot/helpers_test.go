package bot

import (
	"testing"
	"time"

	"aurabot/bot/telegramtest"
)

// What the bot shows while a reply streams, as the tests look for it.
const (
	cursor       = " ▍"
	callbackStop = "stop"
)

// checkSpacing fails for every two calls in chat that the pacer spaces (all but drafts and
// "typing…") which reached the fake Telegram less than half of interval apart. The pacer's own
// tests check its spacing to the nanosecond; the fake server's clock adds to each call its journal
// write and its transit, which vary under load, while a call that skips the pacer, or uses a slot
// held across a pause of the model, comes right after the one before.
func checkSpacing(t *testing.T, tg *telegramtest.Server, chat int64, interval time.Duration) {
	t.Helper()
	var last time.Time
	for _, c := range tg.Calls("") {
		if c.ChatID() != chat || c.Method == "sendChatAction" || c.Method == "sendMessageDraft" {
			continue
		}
		if gap := c.At.Sub(last); gap < interval/2 {
			t.Errorf("%s came %v after the call before it, want about %v", c.Method, gap, interval)
		}
		last = c.At
	}
}

// Addr is the address the HTTP listener is bound to ("" before Run listens or when it does not).
func (b *Bot) Addr() string {
	a, _ := b.addr.Load().(string)
	return a
}
