package tg

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	tgbot "github.com/go-telegram/bot"
)

func TestErrorClasses(t *testing.T) {
	bad := func(s string) error { return fmt.Errorf("%w, %s", tgbot.ErrorBadRequest, s) }
	tests := []struct {
		name                      string
		err                       error
		refused, formatting, gone bool
	}{
		{"parse entities", bad("Bad Request: can't parse entities: Unsupported start tag"), true, true, false},
		{"mention", bad("Bad Request: ENTITY_MENTION_USER_INVALID"), true, true, false},
		{"text url", bad("Bad Request: ENTITY_TEXT_URL_INVALID"), true, true, false},
		{"edit not found", bad("Bad Request: message to edit not found"), true, false, true},
		{"too long", bad("Bad Request: message is too long"), true, false, false},
		{"flood", &tgbot.TooManyRequestsError{Message: "too many requests", RetryAfter: 3}, true, false, false},
		{"reset", errors.New("read tcp: connection reset by peer"), false, false, false},
		{"5xx", errors.New("error response from telegram for method sendMessage, 502 Bad Gateway"), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Refused(tt.err); got != tt.refused {
				t.Errorf("Refused: got %v, want %v", got, tt.refused)
			}
			if got := Unknown(tt.err); got == tt.refused {
				t.Errorf("Unknown: got %v, want %v", got, !tt.refused)
			}
			if got := BadFormatting(tt.err); got != tt.formatting {
				t.Errorf("BadFormatting: got %v, want %v", got, tt.formatting)
			}
			if got := Gone(tt.err); got != tt.gone {
				t.Errorf("Gone: got %v, want %v", got, tt.gone)
			}
		})
	}
}

// A keyboard holds only the fields that are set: no copy_text that Telegram refuses.
func TestKeyboardHoldsOnlyCallbackData(t *testing.T) {
	b, err := json.Marshal(OneButton("⏹ Stop", "stop:42"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"inline_keyboard":[[{"text":"⏹ Stop","callback_data":"stop:42"}]]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
