package tg

// Keyboard is an inline keyboard for reply_markup. go-telegram/bot's InlineKeyboardButton always
// carries "copy_text":{"text":""} (omitempty does not omit a struct), which Telegram refuses
// (BUTTON_COPY_TEXT_INVALID); these types hold only what is set, and go wherever
// models.ReplyMarkup does.
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
