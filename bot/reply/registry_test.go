package reply

import (
	"context"
	"testing"
	"time"
)

// The registry remembers a bounded number of ids per chat and of chats: a bot that has talked
// in a million chats holds the newest ones only.
func TestRegistryIsBounded(t *testing.T) {
	r := NewRegistry()
	for id := 1; id <= 3*registryKeep; id++ {
		r.Add(-5, id)
	}
	if r.Known(-5, 1) || !r.Known(-5, 3*registryKeep) || r.Max(-5) != 3*registryKeep {
		t.Errorf("a chat's ids: want only the newest %d kept", registryKeep)
	}
	for chat := int64(1); chat <= registryChats+100; chat++ {
		r.Add(chat, 7)
	}
	if r.Max(1) != 0 {
		t.Error("the chat used least recently is still remembered")
	}
	if r.Max(registryChats+100) != 7 {
		t.Error("the newest chat is forgotten")
	}
	r.mu.Lock()
	n := len(r.chats)
	r.mu.Unlock()
	if n > registryChats {
		t.Errorf("chats remembered: got %d, want at most %d", n, registryChats)
	}
}

// A chat whose send gate is held (a send of unknown outcome) is never forgotten.
func TestRegistryKeepsAHeldChat(t *testing.T) {
	r := NewRegistry()
	r.Hold(-9, 42)
	r.Add(-9, 10)
	for chat := int64(1); chat <= 2*registryChats; chat++ {
		r.Add(chat, 1)
	}
	if r.Holder(-9) != 42 || !r.Known(-9, 10) {
		t.Error("a chat with its gate held was forgotten")
	}
}

// Sends in a chat take turns: the gate's holder may send again (a display resumed by its own
// entry), another waits until it is released.
func TestGate(t *testing.T) {
	r := NewRegistry()
	ctx := context.Background()
	if err := r.Acquire(ctx, 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Acquire(ctx, 1, 10); err != nil {
		t.Fatalf("the holder again: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- r.Acquire(ctx, 1, 20) }()
	select {
	case err := <-got:
		t.Fatalf("another owner got the gate while it was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	r.Release(1, 20) // not the holder: nothing
	r.Release(1, 10)
	if err := <-got; err != nil || r.Holder(1) != 20 {
		t.Errorf("after the release: got %v, holder %d, want the gate for 20", err, r.Holder(1))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Acquire(cctx, 1, 30); err == nil {
		t.Error("a cancelled wait got the gate")
	}
}
