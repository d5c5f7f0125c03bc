package tg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	tgbot "github.com/go-telegram/bot"
)

// recordingPacer records what Call and Do tell it.
type recordingPacer struct {
	waitErr error
	waits   int
	tooMany []time.Duration
	ok      int
}

func (p *recordingPacer) Wait(context.Context, int64) error   { p.waits++; return p.waitErr }
func (p *recordingPacer) TooMany(_ int64, wait time.Duration) { p.tooMany = append(p.tooMany, wait) }
func (p *recordingPacer) OK(int64)                            { p.ok++ }

// Every call's outcome reaches the pacer the same way: a 429 holds the chat for retry_after, any
// other answer of Telegram counts as a success, and a call with no answer tells it nothing.
func TestCallTellsThePacer(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		err     error
		tooMany []time.Duration
		ok      int
	}{
		{"success", nil, nil, 1},
		{"flood", &tgbot.TooManyRequestsError{Message: "too many requests", RetryAfter: 3}, []time.Duration{3 * time.Second}, 0},
		{"refused", fmt.Errorf("%w, message to edit not found", tgbot.ErrorBadRequest), nil, 1},
		{"no answer", errors.New("read tcp: connection reset by peer"), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &recordingPacer{}
			got, err := Call(t.Context(), p, log, 1, func(context.Context) (int, error) { return 7, tt.err })
			if got != 7 || !errors.Is(err, tt.err) {
				t.Errorf("Call: got %d, %v, want 7, %v", got, err, tt.err)
			}
			if p.waits != 1 || p.ok != tt.ok || fmt.Sprint(p.tooMany) != fmt.Sprint(tt.tooMany) {
				t.Errorf("pacer: %d waits, %d OK, 429s %v; want 1 wait, %d OK, 429s %v", p.waits, p.ok, p.tooMany, tt.ok, tt.tooMany)
			}
			if _, _ = Do(t.Context(), p, log, 1, func(context.Context) (int, error) { return 0, tt.err }); p.waits != 1 {
				t.Errorf("Do waited for the pacer; the caller has its turn")
			}
		})
	}
	t.Run("the wait ends", func(t *testing.T) {
		p := &recordingPacer{waitErr: context.Canceled}
		called := false
		_, err := Call(t.Context(), p, log, 1, func(context.Context) (int, error) { called = true; return 0, nil })
		if !errors.Is(err, context.Canceled) || called || p.ok != 0 {
			t.Errorf("got %v, called %v, %d OK; want the wait's error and no call", err, called, p.ok)
		}
	})
}
