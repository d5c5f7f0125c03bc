package telegramtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"aurabot/bot/telegramtest"
)

// reply is the whole of what the fake answered to one call.
type reply struct {
	Status      int
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
}

// post makes a Bot API call with form parameters, as a plain HTTP client.
func post(t *testing.T, base, method string, params map[string]string) reply {
	t.Helper()
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	resp, err := http.PostForm(base+"/bot"+telegramtest.Token+"/"+method, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: decode the answer: %v", method, err)
	}
	return r
}

// sent is the part of a returned message the tests look at.
type sent struct {
	ID   int `json:"message_id"`
	Chat struct {
		ID int64 `json:"id"`
	} `json:"chat"`
	From struct {
		ID int64 `json:"id"`
	} `json:"from"`
	Text     string `json:"text"`
	EditDate int    `json:"edit_date"`
	Entities []struct {
		Type   string `json:"type"`
		Offset int    `json:"offset"`
		Length int    `json:"length"`
	} `json:"entities"`
	ReplyTo *struct {
		ID int `json:"message_id"`
	} `json:"reply_to_message"`
	Markup json.RawMessage `json:"reply_markup"`
}

func newServer(t *testing.T) *telegramtest.Server {
	t.Helper()
	s := telegramtest.New()
	t.Cleanup(s.Close)
	return s
}

// sendText sends a text message as the bot and returns it.
func sendText(t *testing.T, s *telegramtest.Server, chat int64, text string, extra ...string) sent {
	t.Helper()
	p := map[string]string{"chat_id": strconv.FormatInt(chat, 10), "text": text}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	r := post(t, s.URL(), "sendMessage", p)
	if !r.OK {
		t.Fatalf("sendMessage: got %d %q, want ok", r.ErrorCode, r.Description)
	}
	var m sent
	if err := json.Unmarshal(r.Result, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Each chat numbers its messages densely from 1, the user's and the bot's in one sequence, as
// Telegram does; Messages lists only the bot's.
func TestMessageIDsPerChat(t *testing.T) {
	s := newServer(t)
	steps := []struct {
		chat int64
		bot  bool // a message the bot sends, else one the user sends
		want int
	}{
		{1, false, 1},
		{1, true, 2},
		{1, false, 3},
		{2, false, 1},
		{-100, true, 1},
		{2, true, 2},
		{1, true, 4},
		{-100, false, 2},
	}
	for i, st := range steps {
		var got int
		if st.bot {
			got = sendText(t, s, st.chat, "hi").ID
		} else {
			got = s.NewMessageID(st.chat)
		}
		if got != st.want {
			t.Errorf("step %d (chat %d, bot %v): got id %d, want %d", i, st.chat, st.bot, got, st.want)
		}
	}
	var ids []int
	for _, m := range s.Messages(1) {
		ids = append(ids, m.ID)
	}
	if len(ids) != 2 || ids[0] != 2 || ids[1] != 4 {
		t.Errorf("Messages(1): got ids %v, want [2 4] (the bot's only)", ids)
	}
	if got := s.Messages(3); len(got) != 0 {
		t.Errorf("Messages of an unknown chat: got %v, want none", got)
	}
}
