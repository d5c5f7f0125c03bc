package telegramtest_test

import (
	"encoding/json"
	"testing"

	"github.com/go-telegram/bot/models"
)

// Drafts: an empty text is Telegram's "Thinking…" placeholder, can_stop and keep_on_stop are
// kept, a text over 4096 units or a zero draft_id is refused, and StopGeneration presses the
// Stop button of a draft that has one, and only then.
func TestDrafts(t *testing.T) {
	s := newServer(t)
	draft := func(params map[string]string) reply {
		p := map[string]string{"chat_id": "42", "draft_id": "7"}
		for k, v := range params {
			p[k] = v
		}
		return post(t, s.URL(), "sendMessageDraft", p)
	}
	if r := draft(map[string]string{"text": ""}); !r.OK {
		t.Fatalf("empty draft: got %d %q, want ok (the placeholder)", r.ErrorCode, r.Description)
	}
	if _, err := s.StopGeneration(42, 0, 7); err == nil {
		t.Error("StopGeneration of a draft without can_stop: got no error, want one (no button)")
	}
	if r := draft(map[string]string{"text": "Hello", "can_stop": "true", "keep_on_stop": "true", "message_thread_id": "5"}); !r.OK {
		t.Fatalf("draft in a topic: got %d %q, want ok", r.ErrorCode, r.Description)
	}
	if r := draft(map[string]string{"draft_id": "0", "text": "x"}); r.OK || r.ErrorCode != 400 {
		t.Errorf("draft_id 0: got ok=%v %d, want 400", r.OK, r.ErrorCode)
	}
	long := make([]byte, 4097)
	for i := range long {
		long[i] = 'a'
	}
	if r := draft(map[string]string{"text": string(long)}); r.OK || r.ErrorCode != 400 {
		t.Errorf("draft of 4097 characters: got ok=%v %d, want 400", r.OK, r.ErrorCode)
	}
	ds := s.Drafts(42)
	if len(ds) != 2 {
		t.Fatalf("drafts: got %+v, want one in the chat and one in topic 5", ds)
	}
	for _, d := range ds {
		switch d.ThreadID {
		case 0:
			if d.Placeholders != 1 || d.Updates != 0 || d.CanStop {
				t.Errorf("draft outside the topic: got %+v, want one placeholder without a Stop button", d)
			}
		case 5:
			if d.Text != "Hello" || !d.CanStop || !d.KeepOnStop || d.Updates != 1 {
				t.Errorf("draft in the topic: got %+v, want Hello with can_stop and keep_on_stop", d)
			}
		}
	}
	if _, err := s.StopGeneration(42, 0, 8); err == nil {
		t.Error("StopGeneration of an unknown draft: got no error, want one")
	}
	id, err := s.StopGeneration(42, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, s.URL(), "getUpdates", map[string]string{"allowed_updates": `["message","stopped_message_generation"]`})
	var us []models.Update
	if err := json.Unmarshal(r.Result, &us); err != nil {
		t.Fatal(err)
	}
	if len(us) != 1 || us[0].ID != id || us[0].StoppedMessageGeneration == nil {
		t.Fatalf("updates: got %s, want the stop", r.Result)
	}
	st := us[0].StoppedMessageGeneration
	if st.Chat.ID != 42 || st.Chat.Type != models.ChatTypePrivate || st.MessageThreadID != 5 || st.DraftID != 7 {
		t.Errorf("stop: got %+v, want chat 42 (private), topic 5, draft 7", st)
	}
	for _, d := range s.Drafts(42) {
		if d.ThreadID == 5 && (!d.Stopped || !d.Kept) {
			t.Errorf("stopped draft: got %+v, want stopped and kept", d)
		}
	}
}

// getUpdates hands out only the kinds of update the bot asked for, as Telegram does; the others
// are never sent.
func TestAllowedUpdates(t *testing.T) {
	s := newServer(t)
	s.Push(models.Update{Message: &models.Message{ID: 1, Text: "hi", Chat: models.Chat{ID: 42, Type: models.ChatTypePrivate}}})
	s.Push(models.Update{EditedMessage: &models.Message{ID: 1, Text: "edited", Chat: models.Chat{ID: 42, Type: models.ChatTypePrivate}}})
	s.Push(models.Update{StoppedMessageGeneration: &models.MessageGenerationStopped{Chat: models.Chat{ID: 42}, DraftID: 3}})
	get := func(allowed string) []models.Update {
		p := map[string]string{}
		if allowed != "" {
			p["allowed_updates"] = allowed
		}
		var us []models.Update
		if err := json.Unmarshal(post(t, s.URL(), "getUpdates", p).Result, &us); err != nil {
			t.Fatal(err)
		}
		return us
	}
	if us := get(`["message","callback_query"]`); len(us) != 1 || us[0].Message == nil {
		t.Fatalf("asked for messages: got %+v, want the message alone", us)
	}
	if got := s.AllowedUpdates(); len(got) != 2 {
		t.Errorf("AllowedUpdates: got %v", got)
	}
	// The other kinds were dropped: asking for them now finds nothing but the message.
	if us := get(`[]`); len(us) != 1 || us[0].Message == nil {
		t.Errorf("asked for every kind afterwards: got %+v, want the message alone", us)
	}
	s.Push(models.Update{EditedMessage: &models.Message{ID: 1, Chat: models.Chat{ID: 42}}})
	if us := get(""); len(us) != 2 {
		t.Errorf("every kind (an empty list before): got %d updates, want 2", len(us))
	}
}
