package telegramtest_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"aurabot/bot/telegramtest"
)

const stopMarkup = `{"inline_keyboard":[[{"text":"⏹ Stop","callback_data":"stop:1"}]]}`

// sendMessage and the edits answer with the message as Telegram does: id, chat, the bot as
// sender, text, entities, inline keyboard and the message it replied to.
func TestEditAnswersTheEditedMessage(t *testing.T) {
	s := newServer(t)
	const chat = 7
	in := s.NewMessageID(chat)
	m := sendText(t, s, chat, "Hel▍", "reply_parameters", `{"message_id":`+strconv.Itoa(in)+`}`, "reply_markup", stopMarkup)
	if m.ID != in+1 || m.Chat.ID != chat || m.From.ID != telegramtest.BotID || m.Text != "Hel▍" {
		t.Errorf("sendMessage: got %+v, want id %d in chat %d from the bot", m, in+1, chat)
	}
	if m.ReplyTo == nil || m.ReplyTo.ID != in {
		t.Errorf("sendMessage reply_to_message: got %+v, want message %d", m.ReplyTo, in)
	}
	if !sameJSON(t, m.Markup, stopMarkup) {
		t.Errorf("sendMessage reply_markup: got %s, want %s", m.Markup, stopMarkup)
	}

	tests := []struct {
		method string
		params map[string]string
		text   string
		markup string
	}{
		{"editMessageText", map[string]string{"text": "Hello", "entities": `[{"type":"bold","offset":0,"length":5}]`, "reply_markup": stopMarkup}, "Hello", stopMarkup},
		{"editMessageReplyMarkup", map[string]string{}, "Hello", ""},
		{"editMessageText", map[string]string{"text": "Hello!"}, "Hello!", ""},
	}
	for _, tt := range tests {
		p := map[string]string{"chat_id": strconv.Itoa(chat), "message_id": strconv.Itoa(m.ID)}
		for k, v := range tt.params {
			p[k] = v
		}
		r := post(t, s.URL(), tt.method, p)
		if !r.OK {
			t.Fatalf("%s: got %d %q, want ok", tt.method, r.ErrorCode, r.Description)
		}
		var e sent
		if err := json.Unmarshal(r.Result, &e); err != nil {
			t.Fatalf("%s: result %s: %v", tt.method, r.Result, err)
		}
		if e.ID != m.ID || e.Chat.ID != chat || e.Text != tt.text || e.EditDate == 0 {
			t.Errorf("%s: got %+v, want message %d with text %q and an edit_date", tt.method, e, m.ID, tt.text)
		}
		if e.ReplyTo == nil || e.ReplyTo.ID != in {
			t.Errorf("%s reply_to_message: got %+v, want message %d", tt.method, e.ReplyTo, in)
		}
		if tt.markup == "" && len(e.Markup) != 0 || tt.markup != "" && !sameJSON(t, e.Markup, tt.markup) {
			t.Errorf("%s reply_markup: got %s, want %q", tt.method, e.Markup, tt.markup)
		}
		if tt.method == "editMessageText" && tt.params["entities"] != "" && (len(e.Entities) != 1 || e.Entities[0].Type != "bold") {
			t.Errorf("%s entities: got %+v, want the bold entity", tt.method, e.Entities)
		}
	}
}

// Edits of a user's message, of an unknown id and of a deleted message fail as in Telegram;
// deleteMessage removes a message from Messages and lists it in Deleted.
func TestEditAndDeleteErrors(t *testing.T) {
	s := newServer(t)
	const chat = -1001
	user := s.NewMessageID(chat)
	bot := sendText(t, s, chat, "answer").ID
	other := sendText(t, s, chat, "another").ID
	id := func(n int) string { return strconv.Itoa(n) }
	c := strconv.Itoa(chat)

	steps := []struct {
		name, method, id string
		want             string // "" for success
	}{
		{"edit a user message", "editMessageText", id(user), "Bad Request: message can't be edited"},
		{"edit the markup of a user message", "editMessageReplyMarkup", id(user), "Bad Request: message can't be edited"},
		{"edit an unknown id", "editMessageText", id(99), "Bad Request: message to edit not found"},
		{"edit the markup of an unknown id", "editMessageReplyMarkup", id(99), "Bad Request: message to edit not found"},
		{"delete an unknown id", "deleteMessage", id(99), "Bad Request: message to delete not found"},
		{"delete the bot's message", "deleteMessage", id(bot), ""},
		{"edit the deleted message", "editMessageText", id(bot), "Bad Request: message to edit not found"},
		{"delete it again", "deleteMessage", id(bot), "Bad Request: message to delete not found"},
		{"delete the user's message", "deleteMessage", id(user), ""},
		{"edit the deleted user message", "editMessageText", id(user), "Bad Request: message to edit not found"},
	}
	for _, st := range steps {
		r := post(t, s.URL(), st.method, map[string]string{"chat_id": c, "message_id": st.id, "text": "new", "reply_markup": stopMarkup})
		switch {
		case st.want == "" && !r.OK:
			t.Errorf("%s: got %d %q, want ok", st.name, r.ErrorCode, r.Description)
		case st.want != "" && (r.Status != 400 || r.ErrorCode != 400 || r.Description != st.want):
			t.Errorf("%s: got %d/%d %q, want 400 %q", st.name, r.Status, r.ErrorCode, r.Description, st.want)
		}
	}
	var left []int
	for _, m := range s.Messages(chat) {
		left = append(left, m.ID)
	}
	if !slices.Equal(left, []int{other}) {
		t.Errorf("Messages after the delete: got %v, want [%d]", left, other)
	}
	if got, want := s.Deleted(chat), []int{bot, user}; !slices.Equal(got, want) {
		t.Errorf("Deleted: got %v, want %v", got, want)
	}
	if got := s.Deleted(5); len(got) != 0 {
		t.Errorf("Deleted of an unknown chat: got %v, want none", got)
	}
}

func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
