package telegramtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// checkMarkup checks the inline keyboard of a reply_markup parameter the way Telegram does and
// answers the fault Telegram would, or nil. Other kinds of markup are only checked to be a JSON
// object.
//
// Wording: the "can't parse ..." descriptions are those of telegram-bot-api (the Bot API server),
// which lower-cases the first letter after "Bad Request: "; BUTTON_DATA_INVALID and
// BUTTON_COPY_TEXT_INVALID are Telegram's own names for a callback_data outside 1-64 bytes and a
// copy_text outside 1-256 characters. The documentation says a button must use exactly one of the
// optional type fields; telegram-bot-api itself takes the first one present in the order of
// buttonTypes, so a button with more than one is refused here with BUTTON_TYPE_INVALID (Telegram's
// name for a button it cannot type), which makes the fake stricter than the server for that case.
func checkMarkup(raw string) *Fault {
	if raw == "" {
		return nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return badRequest("Can't parse reply keyboard markup JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return badRequest("Object expected as reply markup")
	}
	kb, ok := obj["inline_keyboard"]
	if !ok || kb == nil {
		return nil
	}
	rows, ok := kb.([]any)
	if !ok {
		return badRequest(`Field "inline_keyboard" must be of type Array`)
	}
	for _, row := range rows {
		buttons, ok := row.([]any)
		if !ok {
			return badRequest(`Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays`)
		}
		for _, b := range buttons {
			if f := checkButton(b); f != nil {
				return f
			}
		}
	}
	return nil
}

// buttonTypes are the optional fields of an InlineKeyboardButton that give it its type, in the
// order telegram-bot-api looks for them (telegram-bot-api/Client.cpp,
// get_inline_keyboard_button_type), with the JSON type each must have ("any" for fields whose
// presence is all that counts).
func buttonTypes() [10][2]string {
	return [...][2]string{
		{"url", "string"},
		{"callback_data", "string"},
		{"callback_game", "any"},
		{"pay", "any"},
		{"switch_inline_query", "string"},
		{"switch_inline_query_chosen_chat", "object"},
		{"switch_inline_query_current_chat", "string"},
		{"login_url", "object"},
		{"web_app", "object"},
		{"copy_text", "object"},
	}
}

func checkButton(v any) *Fault {
	bad := func(msg string) *Fault { return badRequest("Can't parse inline keyboard button: " + msg) }
	b, ok := v.(map[string]any)
	if !ok {
		return bad("InlineKeyboardButton must be an Object")
	}
	if msg := requiredString(b, "text"); msg != "" {
		return bad(msg)
	}
	types := 0
	for _, t := range buttonTypes() {
		field, kind := t[0], t[1]
		fv, present := b[field]
		if !present || fv == nil {
			continue
		}
		switch kind {
		case "string":
			s, ok := stringValue(fv)
			if !ok {
				return bad(`Field "` + field + `" must be of type String`)
			}
			if s == "" && (field == "url" || field == "callback_data") {
				continue // telegram-bot-api treats an empty url or callback_data as absent
			}
			if field == "callback_data" && len(s) > 64 {
				return badRequest("BUTTON_DATA_INVALID")
			}
		case "object":
			o, ok := fv.(map[string]any)
			if !ok {
				return bad(`Field "` + field + `" must be of type Object`)
			}
			switch field {
			case "login_url", "web_app":
				if msg := requiredString(o, "url"); msg != "" {
					return bad(msg)
				}
			case "copy_text":
				if msg := requiredString(o, "text"); msg != "" {
					return bad(msg)
				}
				s, _ := stringValue(o["text"])
				if n := len(utf16.Encode([]rune(s))); n < 1 || n > 256 {
					return badRequest("BUTTON_COPY_TEXT_INVALID")
				}
			}
		}
		types++
	}
	switch {
	case types == 0:
		return bad("Text buttons are unallowed in the inline keyboard")
	case types > 1:
		return badRequest("BUTTON_TYPE_INVALID")
	}
	return nil
}

// requiredString checks a required string field as telegram-bot-api does (a number is taken as
// its text) and returns the complaint, or "".
func requiredString(o map[string]any, field string) string {
	v, ok := o[field]
	if !ok {
		return `Can't find field "` + field + `"`
	}
	if _, ok := stringValue(v); !ok {
		return `Field "` + field + `" must be of type String`
	}
	return ""
}

func stringValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func decodeJSON(raw string) (any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(raw)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("telegramtest: trailing data after the JSON value")
	}
	return v, nil
}

// badRequest words a 400 the way telegram-bot-api does: "Bad Request: " and the message with its
// first letter in lower case.
func badRequest(msg string) *Fault {
	r, n := utf8.DecodeRuneInString(msg)
	if r != utf8.RuneError && unicode.IsUpper(r) && !isErrorName(msg) {
		msg = string(unicode.ToLower(r)) + msg[n:]
	}
	return &Fault{Code: 400, Description: "Bad Request: " + msg}
}

// isErrorName reports whether msg is an upper-case Telegram error name such as BUTTON_DATA_INVALID,
// which keeps its case.
func isErrorName(msg string) bool {
	for _, r := range msg {
		if !unicode.IsUpper(r) && r != '_' && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
