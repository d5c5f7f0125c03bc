package telegramtest

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzCheckMarkup: any reply_markup gets either nil or a 400 worded as Telegram words it, and
// whatever is accepted is a JSON object.
func FuzzCheckMarkup(f *testing.F) {
	for _, s := range []string{
		`{"inline_keyboard":[[{"text":"a","callback_data":"x"}]]}`,
		`{"inline_keyboard":[[{"text":"a","callback_data":"x","copy_text":{"text":""}}]]}`,
		`{"inline_keyboard":[[{"text":"a","copy_text":{"text":"é"}},{"text":1,"url":2}]]}`,
		`{"inline_keyboard":[{}]}`,
		`{"keyboard":[[{"text":"a"}]]}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fault := checkMarkup(raw)
		if fault == nil {
			if raw == "" {
				return
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(raw), &v); err != nil || v == nil {
				t.Fatalf("accepted %q, which is not a JSON object", raw)
			}
			return
		}
		if fault.Code != 400 || !strings.HasPrefix(fault.Description, "Bad Request: ") {
			t.Fatalf("%q: got %+v, want a 400 Bad Request", raw, fault)
		}
	})
}
