package telegramtest_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/go-telegram/bot/models"
)

// Inline keyboards are checked on every call that carries one, with Telegram's answers.
func TestInlineKeyboardChecks(t *testing.T) {
	const (
		unallowed = `Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard`
		copyText  = `Bad Request: BUTTON_COPY_TEXT_INVALID`
		data      = `Bad Request: BUTTON_DATA_INVALID`
	)
	kb := func(buttons ...string) string {
		return `{"inline_keyboard":[[` + strings.Join(buttons, ",") + `]]}`
	}
	tests := []struct {
		name, markup, want string // want "" for success
	}{
		{"callback", kb(`{"text":"⏹ Stop","callback_data":"stop:1"}`), ""},
		{"url", kb(`{"text":"a","url":"https://example.com"}`), ""},
		{"copy text", kb(`{"text":"a","copy_text":{"text":"secret"}}`), ""},
		{"copy text of 256", kb(`{"text":"a","copy_text":{"text":"` + strings.Repeat("é", 256) + `"}}`), ""},
		{"callback data of 64 bytes", kb(`{"text":"a","callback_data":"` + strings.Repeat("x", 64) + `"}`), ""},
		{"several rows", `{"inline_keyboard":[[{"text":"a","callback_data":"1"}],[{"text":"b","pay":true},{"text":"c","switch_inline_query":""}]]}`, ""},
		{"numeric callback data", kb(`{"text":"a","callback_data":12}`), ""},
		{"reply keyboard is not checked", `{"keyboard":[[{"text":"a"}]]}`, ""},
		{"empty inline keyboard", `{"inline_keyboard":[]}`, ""},

		{"text only", kb(`{"text":"a"}`), unallowed},
		{"empty url and callback data count as absent", kb(`{"text":"a","url":"","callback_data":""}`), unallowed},
		{"no text", kb(`{"callback_data":"x"}`), `Bad Request: can't parse inline keyboard button: Can't find field "text"`},
		{"text not a string", kb(`{"text":true,"callback_data":"x"}`), `Bad Request: can't parse inline keyboard button: Field "text" must be of type String`},
		{"url not a string", kb(`{"text":"a","url":[1]}`), `Bad Request: can't parse inline keyboard button: Field "url" must be of type String`},
		{"callback data over 64 bytes", kb(`{"text":"a","callback_data":"` + strings.Repeat("é", 33) + `"}`), data},
		{"copy text empty", kb(`{"text":"a","copy_text":{"text":""}}`), copyText},
		{"copy text over 256", kb(`{"text":"a","copy_text":{"text":"` + strings.Repeat("x", 257) + `"}}`), copyText},
		{"copy text not an object", kb(`{"text":"a","copy_text":"x"}`), `Bad Request: can't parse inline keyboard button: Field "copy_text" must be of type Object`},
		{"copy text without text", kb(`{"text":"a","copy_text":{}}`), `Bad Request: can't parse inline keyboard button: Can't find field "text"`},
		{"callback data and an empty copy text", kb(`{"text":"a","callback_data":"x","copy_text":{"text":""}}`), copyText},
		{"two types", kb(`{"text":"a","callback_data":"x","url":"https://example.com"}`), `Bad Request: BUTTON_TYPE_INVALID`},
		{"web app without url", kb(`{"text":"a","web_app":{}}`), `Bad Request: can't parse inline keyboard button: Can't find field "url"`},
		{"a bad button in the second row", `{"inline_keyboard":[[{"text":"a","callback_data":"1"}],[{"text":"b"}]]}`, unallowed},
		{"button not an object", kb(`"a"`), `Bad Request: can't parse inline keyboard button: InlineKeyboardButton must be an Object`},
		{"row not an array", `{"inline_keyboard":[{"text":"a"}]}`, `Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays`},
		{"not JSON", `{"inline_keyboard":`, `Bad Request: can't parse reply keyboard markup JSON object`},
		{"not an object", `[1]`, `Bad Request: object expected as reply markup`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			const chat = 3
			target := sendText(t, s, chat, "target").ID
			for _, method := range []string{"sendMessage", "editMessageReplyMarkup", "editMessageText"} {
				r := post(t, s.URL(), method, map[string]string{
					"chat_id": strconv.Itoa(chat), "message_id": strconv.Itoa(target),
					"text": "new text " + method, "reply_markup": tt.markup,
				})
				switch {
				case tt.want == "" && !r.OK:
					t.Errorf("%s: got %d %q, want ok", method, r.ErrorCode, r.Description)
				case tt.want != "" && (r.Status != 400 || r.ErrorCode != 400 || r.Description != tt.want):
					t.Errorf("%s: got %d/%d %q, want 400 %q", method, r.Status, r.ErrorCode, r.Description, tt.want)
				}
			}
			if tt.want != "" {
				if ms := s.Messages(chat); len(ms) != 1 || ms[0].Text != "target" || ms[0].Markup != "" {
					t.Errorf("messages after refused calls: got %+v, want the target unchanged", ms)
				}
			}
		})
	}
}

// go-telegram/bot v1.19.0 writes "copy_text":{"text":""} into every button (the field is a struct,
// which omitempty never omits); Telegram refuses such a keyboard, and so does the fake.
func TestInlineKeyboardAsGoTelegramWritesIt(t *testing.T) {
	b, err := json.Marshal(models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
		{Text: "⏹ Stop", CallbackData: "stop:42"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"copy_text":{"text":""}`) {
		t.Skipf("go-telegram/bot no longer writes an empty copy_text: %s", b)
	}
	s := newServer(t)
	r := post(t, s.URL(), "sendMessage", map[string]string{"chat_id": "1", "text": "hi", "reply_markup": string(b)})
	if r.OK || r.Description != "Bad Request: BUTTON_COPY_TEXT_INVALID" {
		t.Errorf("sendMessage with %s: got ok=%v %q, want 400 BUTTON_COPY_TEXT_INVALID", b, r.OK, r.Description)
	}
	if n := len(s.Messages(1)); n != 0 {
		t.Errorf("messages: got %d, want none", n)
	}
}
