package telegramtest_test

import (
	"maps"
	"testing"

	"aurabot/bot/telegramtest"
)

// By default every call that targets a chat counts against the chat's budget and the global one.
func TestFloodCountsEveryChatCall(t *testing.T) {
	counted := []string{
		"sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage",
		"sendMessageDraft", "setMessageReaction", "sendChatAction", "sendPhoto",
	}
	for _, method := range counted {
		t.Run(method, func(t *testing.T) {
			s := newLimited(t, telegramtest.Limits{
				PrivateRate: slow, PrivateBurst: 1,
				GlobalRate: 1000, GlobalBurst: 1000,
			})
			if a := call(t, s, method, 5); a.ErrorCode == 429 {
				t.Fatalf("first call: got 429, want it within the burst")
			}
			if a := call(t, s, "sendMessage", 5); a.ErrorCode != 429 {
				t.Errorf("sendMessage after one %s: got code %d, want 429 (the %s took the chat's token)", method, a.ErrorCode, method)
			}
		})
	}
	// A counted call without a chat takes a global token only.
	s := newLimited(t, telegramtest.Limits{
		PrivateRate: slow, PrivateBurst: 1,
		GlobalRate: slow, GlobalBurst: 2,
	})
	if a := call(t, s, "answerCallbackQuery", 0); !a.OK {
		t.Fatalf("answerCallbackQuery: got error %d, want ok", a.ErrorCode)
	}
	if a := call(t, s, "sendMessage", 9); !a.OK {
		t.Fatalf("sendMessage: got error %d, want ok (answerCallbackQuery took no chat token)", a.ErrorCode)
	}
	if a := call(t, s, "sendMessage", 10); a.ErrorCode != 429 {
		t.Errorf("a third call: got code %d, want 429 (answerCallbackQuery took a global token)", a.ErrorCode)
	}
	// Bot-level calls never count.
	for _, method := range []string{"getMe", "setMyCommands", "deleteWebhook"} {
		if a := call(t, s, method, 0); !a.OK {
			t.Errorf("%s past the global burst: got error %d, want ok (it does not count)", method, a.ErrorCode)
		}
	}
}

// Limits.Counts chooses the methods that count; the counters say who called what and who got 429.
func TestFloodCountsConfigurableAndCounted(t *testing.T) {
	s := newLimited(t, telegramtest.Limits{
		PrivateRate: slow, PrivateBurst: 1,
		GlobalRate: 1000, GlobalBurst: 1000,
		Counts: func(method string) bool { return method == "sendMessage" || method == "editMessageText" },
	})
	steps := []struct {
		method string
		want   int // error code, 0 for ok
	}{
		{"sendMessage", 0},
		{"sendChatAction", 0},
		{"setMessageReaction", 0},
		{"sendMessage", 429},
		{"editMessageText", 429},
		{"sendChatAction", 0},
	}
	for i, st := range steps {
		if a := call(t, s, st.method, 11); a.ErrorCode != st.want {
			t.Errorf("step %d %s: got code %d, want %d", i, st.method, a.ErrorCode, st.want)
		}
	}
	wantCalls := map[string]int{"sendMessage": 2, "sendChatAction": 2, "setMessageReaction": 1, "editMessageText": 1}
	if got := s.CallCounts(); !maps.Equal(got, wantCalls) {
		t.Errorf("CallCounts: got %v, want %v", got, wantCalls)
	}
	want429 := map[string]int{"sendMessage": 1, "editMessageText": 1}
	if got := s.TooManyRequestsBy(); !maps.Equal(got, want429) {
		t.Errorf("TooManyRequestsBy: got %v, want %v", got, want429)
	}
	if got := s.TooManyRequests(); got != 2 {
		t.Errorf("TooManyRequests: got %d, want 2", got)
	}
}
