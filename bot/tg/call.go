package tg

import (
	"context"

	tgbot "github.com/go-telegram/bot"

	"aurabot/bot/pace"
)

// Slot is how a call waits for its turn in the pacer.
type Slot int

const (
	Paced   Slot = iota // pace.Pacer.Wait: the chat's interval, then the global rate
	Idle                // WaitIdle: behind every other call of the chat (the lost-message search)
	Unpaced             // WaitUnpaced: penalties and the global rate only (drafts, "typing…")
	Paid                // the caller has waited for its slot already
)

// Call is how the rooms call Telegram in a chat: it waits for the pacer's slot (how), makes the
// call, and tells the pacer how it went: a 429 holds the chat for retry_after, any other answer
// lets an interval grown by 429s shrink back. Metrics and health see the call in the HTTP client.
// A wait that ends with ctx makes no call and returns ctx's error; any other error is the call's,
// to be told apart with Refused, Unknown, Gone and the rest.
func Call[T any](ctx context.Context, c *Client, p *pace.Pacer, chat int64, how Slot, call func(context.Context, *tgbot.Bot) (T, error)) (T, error) {
	var err error
	switch how {
	case Paced:
		err = p.Wait(ctx, chat)
	case Idle:
		err = p.WaitIdle(ctx, chat)
	case Unpaced:
		err = p.WaitUnpaced(ctx, chat)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := call(ctx, c.Bot)
	if d, ok := RetryAfter(err); ok {
		p.TooMany(chat, d)
		c.log.Warn("telegram flood limit", "chat_id", chat, "retry_after", d)
	} else if err == nil || Refused(err) {
		p.OK(chat)
	}
	return v, err
}
