package telegramtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"aurabot/bot/telegramtest"
)

// answer is what the fake said to one call.
type answer struct {
	OK         bool `json:"ok"`
	ErrorCode  int  `json:"error_code"`
	Parameters struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func call(t *testing.T, s *telegramtest.Server, method string, chat int64) answer {
	t.Helper()
	resp, err := http.PostForm(s.URL()+"/bot"+telegramtest.Token+"/"+method, url.Values{
		"chat_id": {strconv.FormatInt(chat, 10)},
		"text":    {"hello"},
		"action":  {"typing"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if !a.OK && resp.StatusCode != a.ErrorCode {
		t.Errorf("%s: HTTP status %d, error_code %d, want them equal", method, resp.StatusCode, a.ErrorCode)
	}
	return a
}

func newLimited(t *testing.T, l telegramtest.Limits) *telegramtest.Server {
	t.Helper()
	s := telegramtest.New()
	t.Cleanup(s.Close)
	s.SetLimits(&l)
	return s
}

// The rates below are slow (one call per 100 s), so that no token comes back while a test runs
// and every answer is certain.
const slow = 0.01

// A chat gets its burst, then 429 with retry_after; other chats are not affected.
func TestFloodChatBurstThen429(t *testing.T) {
	tests := []struct {
		name  string
		chat  int64
		burst int
	}{
		{"private", 42, 3},
		{"group", -42, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLimited(t, telegramtest.Limits{
				PrivateRate: slow, PrivateBurst: 3,
				GroupRate: slow, GroupBurst: 2,
				GlobalRate: 1000, GlobalBurst: 1000,
			})
			for i := range tt.burst {
				if a := call(t, s, "sendMessage", tt.chat); !a.OK {
					t.Fatalf("call %d of the burst: got error %d, want ok", i+1, a.ErrorCode)
				}
			}
			a := call(t, s, "sendMessage", tt.chat)
			if a.OK || a.ErrorCode != 429 {
				t.Fatalf("call after the burst: got ok=%v code %d, want 429", a.OK, a.ErrorCode)
			}
			if a.Parameters.RetryAfter < 1 {
				t.Errorf("retry_after: got %d, want at least 1", a.Parameters.RetryAfter)
			}
			// Chat actions count too; other chats have their own limit.
			if a := call(t, s, "sendChatAction", tt.chat); a.ErrorCode != 429 {
				t.Errorf("sendChatAction in the limited chat: got code %d, want 429", a.ErrorCode)
			}
			if a := call(t, s, "sendMessage", tt.chat+1); !a.OK {
				t.Errorf("another chat: got error %d, want ok", a.ErrorCode)
			}
			if got := s.TooManyRequests(); got != 2 {
				t.Errorf("TooManyRequests: got %d, want 2", got)
			}
			calls := s.Calls("sendMessage")
			if got := calls[tt.burst].Status; got != 429 {
				t.Errorf("recorded status of the refused call: got %d, want 429", got)
			}
		})
	}
}

// A call inside the penalty window is refused and makes the window longer by Penalty.
func TestFloodCallInPenaltyWindowExtendsIt(t *testing.T) {
	const penalty = 30 // seconds
	s := newLimited(t, telegramtest.Limits{
		PrivateRate: 1, PrivateBurst: 1,
		GlobalRate: 1000, GlobalBurst: 1000,
		Penalty: penalty * time.Second,
	})
	call(t, s, "sendMessage", 7)
	first := call(t, s, "sendMessage", 7)
	if first.ErrorCode != 429 || first.Parameters.RetryAfter != 1 {
		t.Fatalf("second call: got code %d retry_after %d, want 429 and 1", first.ErrorCode, first.Parameters.RetryAfter)
	}
	// These calls come well within the one-second window.
	for i := 1; i <= 2; i++ {
		a := call(t, s, "editMessageText", 7)
		if a.ErrorCode != 429 {
			t.Fatalf("call %d in the window: got code %d, want 429", i, a.ErrorCode)
		}
		if want := i * penalty; a.Parameters.RetryAfter < want {
			t.Errorf("call %d in the window: retry_after %d, want at least %d", i, a.Parameters.RetryAfter, want)
		}
	}
	if got := s.TooManyRequests(); got != 3 {
		t.Errorf("TooManyRequests: got %d, want 3", got)
	}
}

// The global limit spans chats: after its burst, a chat that has sent nothing is refused too.
func TestFloodGlobalLimit(t *testing.T) {
	s := newLimited(t, telegramtest.Limits{
		PrivateRate: 1000, PrivateBurst: 1000,
		GroupRate: 1000, GroupBurst: 1000,
		GlobalRate: slow, GlobalBurst: 4,
	})
	for i := range int64(4) {
		if a := call(t, s, "sendMessage", 100+i); !a.OK {
			t.Fatalf("chat %d: got error %d, want ok within the global burst", 100+i, a.ErrorCode)
		}
	}
	for _, chat := range []int64{200, -200} {
		a := call(t, s, "sendMessage", chat)
		if a.ErrorCode != 429 || a.Parameters.RetryAfter < 1 {
			t.Errorf("chat %d past the global burst: got code %d retry_after %d, want 429 with retry_after", chat, a.ErrorCode, a.Parameters.RetryAfter)
		}
	}
	if a := call(t, s, "sendChatAction", 300); a.ErrorCode != 429 {
		t.Errorf("sendChatAction past the global burst: got code %d, want 429 (it counts)", a.ErrorCode)
	}
}

// TelegramLimits are what the package documents: about 1 call/s per private chat, 20/min per
// group, 30/s for the bot, each with a short burst; SetLimits(nil) turns limits off.
func TestFloodTelegramLimitsAndOff(t *testing.T) {
	l := telegramtest.TelegramLimits
	if l.PrivateRate != 1 || l.GroupRate != 20.0/60 || l.GlobalRate != 30 || l.Penalty <= 0 {
		t.Errorf("TelegramLimits: got %+v", l)
	}
	s := newLimited(t, l)
	for range int(l.PrivateBurst) {
		call(t, s, "sendMessage", 1)
	}
	if a := call(t, s, "sendMessage", 1); a.ErrorCode != 429 {
		t.Fatalf("past the private burst: got code %d, want 429", a.ErrorCode)
	}
	s.SetLimits(nil)
	for range 10 {
		if a := call(t, s, "sendMessage", 1); !a.OK {
			t.Fatalf("limits off: got error %d, want ok", a.ErrorCode)
		}
	}
}
