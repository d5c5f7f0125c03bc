package tg

import (
	"context"
	"log/slog"
	"time"
)

// Pacer spaces the calls to each chat and learns from their outcomes (pace.Pacer).
type Pacer interface {
	Wait(ctx context.Context, chat int64) error
	TooMany(chat int64, retryAfter time.Duration)
	OK(chat int64)
}

// Call is how the rooms call Telegram in a chat: it waits for the chat's turn (p.Wait), then
// makes the call as Do does. A wait that ends with ctx makes no call and returns ctx's error.
func Call[T any](ctx context.Context, p Pacer, log *slog.Logger, chat int64, call func(context.Context) (T, error)) (T, error) {
	if err := p.Wait(ctx, chat); err != nil {
		var zero T
		return zero, err
	}
	return Do(ctx, p, log, chat, call)
}

// Do makes a call in chat whose turn the caller has waited for itself (a slot it held, WaitIdle,
// WaitUnpaced) and tells p how it went: a 429 holds the chat for retry_after, any other answer
// lets a grown interval shrink back. The error is the call's (see Refused, Unknown, Gone...).
func Do[T any](ctx context.Context, p Pacer, log *slog.Logger, chat int64, call func(context.Context) (T, error)) (T, error) {
	v, err := call(ctx)
	if d, ok := RetryAfter(err); ok {
		p.TooMany(chat, d)
		log.Warn("telegram flood limit", "chat_id", chat, "retry_after", d)
	} else if err == nil || Refused(err) {
		p.OK(chat)
	}
	return v, err
}
