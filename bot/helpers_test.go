package bot

import (
	"slices"
	"sync"
	"testing"
	"time"

	"aurabot/bot/pace"
)

// What the bot shows while a reply streams, as the tests look for it.
const (
	cursor       = " ▍"
	callbackStop = "stop"
)

// grants records when the pacer let each call go, per chat.
type grants struct {
	mu sync.Mutex
	at map[int64][]time.Time
}

func record(p *pace.Pacer) *grants {
	g := &grants{at: map[int64][]time.Time{}}
	p.OnGrant(func(id int64, at time.Time) {
		g.mu.Lock()
		g.at[id] = append(g.at[id], at)
		g.mu.Unlock()
	})
	return g
}

func (g *grants) of(id int64) []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.at[id])
}

// checkSpacing fails for every two calls of a chat closer than min.
func checkSpacing(t *testing.T, ts []time.Time, min time.Duration) {
	t.Helper()
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < min {
			t.Errorf("calls %d and %d are %v apart, want at least %v", i-1, i, gap, min)
		}
	}
}

// Addr is the address the HTTP listener is bound to ("" before Run listens or when it does not).
func (b *Bot) Addr() string {
	a, _ := b.addr.Load().(string)
	return a
}
