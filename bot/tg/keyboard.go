package tg

// Keyboard is an inline keyboard for reply_markup. go-telegram/bot's own InlineKeyboardButton
// always carries "copy_text":{"text":""} (a struct field with omitempty, which encoding/json never
// omits), and Telegram refuses such a button with BUTTON_COPY_TEXT_INVALID: a button has exactly
// one of its optional type fields. These types hold only what is set. The library takes
// reply_markup as an interface, so a Keyboard goes wherever models.ReplyMarkup does.
type Keyboard struct {
	Rows [][]Button `json:"inline_keyboard"`
}

// Button is a callback button: text and callback_data (1-64 bytes), nothing else.
type Button struct {
	Text string `json:"text"`
	Data string `json:"callback_data"`
}

// OneButton is a keyboard of a single callback button.
func OneButton(text, data string) Keyboard {
	return Keyboard{Rows: [][]Button{{{Text: text, Data: data}}}}
}
