package conversation

import (
	"testing"
	"time"
)

// The memory of who was told is bounded: past its size the oldest are forgotten.
func TestOnceIsBounded(t *testing.T) {
	r := newOnce[int64](time.Hour)
	r.max = 3
	now := time.Unix(1000, 0)
	for chat := range int64(10) {
		if !r.due(chat, now) {
			t.Fatalf("chat %d: not due the first time", chat)
		}
	}
	if n := len(r.last); n != 3 {
		t.Fatalf("remembered: got %d chats, want 3", n)
	}
	if r.due(9, now.Add(time.Minute)) {
		t.Error("chat 9 told twice within the hour")
	}
	if !r.due(0, now.Add(time.Minute)) {
		t.Error("chat 0, forgotten, was not told again")
	}
	if !r.due(9, now.Add(2*time.Hour)) {
		t.Error("chat 9 not told again after an hour")
	}
}
