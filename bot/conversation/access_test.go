package conversation

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/history"
)

func testHandler() *Handler {
	h := &Handler{}
	h.SetMe(models.User{ID: 42, IsBot: true, Username: "aurabot"})
	return h
}

func mention(text, sub string) models.MessageEntity {
	i := strings.Index(text, sub)
	return models.MessageEntity{Type: models.MessageEntityTypeMention, Offset: len(utf16.Encode([]rune(text[:i]))), Length: len(utf16.Encode([]rune(sub)))}
}

// The bot's mention is its entity, whole and in any case; another bot's name that starts with
// it is not; text around it, emoji and all, is kept.
func TestStripMentions(t *testing.T) {
	h := testHandler()
	tests := []struct {
		name, text string
		entities   []models.MessageEntity
		want       string
		found      bool
	}{
		{"mention", "@aurabot hi", []models.MessageEntity{mention("@aurabot hi", "@aurabot")}, " hi", true},
		{"any case", "hi @AuraBot!", []models.MessageEntity{mention("hi @AuraBot!", "@AuraBot")}, "hi !", true},
		{"another bot", "@aurabot_x hi", []models.MessageEntity{mention("@aurabot_x hi", "@aurabot_x")}, "@aurabot_x hi", false},
		{"no entity", "@aurabot hi", nil, "@aurabot hi", false},
		{"after emoji", "🙂🙂 @aurabot go", []models.MessageEntity{mention("🙂🙂 @aurabot go", "@aurabot")}, "🙂🙂  go", true},
		{"text mention", "Aura, go", []models.MessageEntity{{Type: models.MessageEntityTypeTextMention, Offset: 0, Length: 4, User: &models.User{ID: 42}}}, ", go", true},
		{"text mention of someone else", "Bob, go", []models.MessageEntity{{Type: models.MessageEntityTypeTextMention, Offset: 0, Length: 3, User: &models.User{ID: 7}}}, "Bob, go", false},
		{"out of range", "@aurabot", []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: 3, Length: 40}}, "@aurabot", false},
		{"negative", "@aurabot", []models.MessageEntity{{Type: models.MessageEntityTypeMention, Offset: -1, Length: 8}}, "@aurabot", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := h.stripMentions(tt.text, tt.entities)
			if got != tt.want || found != tt.found {
				t.Errorf("got %q %v, want %q %v", got, found, tt.want, tt.found)
			}
		})
	}
}

// Who is listened to: people and anonymous administrators; not bots, channels or a linked
// channel's automatic forwards.
func TestSender(t *testing.T) {
	g := models.Chat{ID: -100, Type: models.ChatTypeSupergroup}
	tests := []struct {
		name string
		m    models.Message
		id   int64
		anon bool
		ok   bool
	}{
		{"a person", models.Message{Chat: g, From: &models.User{ID: 5}}, 5, false, true},
		{"a bot", models.Message{Chat: g, From: &models.User{ID: 6, IsBot: true}}, 0, false, false},
		{"no sender", models.Message{Chat: g}, 0, false, false},
		{"anonymous administrator", models.Message{Chat: g, SenderChat: &g, From: &models.User{ID: 1087968824, IsBot: true}}, -100, true, true},
		{"as a channel", models.Message{Chat: g, SenderChat: &models.Chat{ID: -200}, From: &models.User{ID: 136817688, IsBot: true}}, 0, false, false},
		{"automatic forward", models.Message{Chat: g, IsAutomaticForward: true, SenderChat: &models.Chat{ID: -200}, From: &models.User{ID: 777000}}, 0, false, false},
	}
	for _, tt := range tests {
		id, anon, ok := sender(&tt.m)
		if id != tt.id || anon != tt.anon || ok != tt.ok {
			t.Errorf("%s: got %d %v %v, want %d %v %v", tt.name, id, anon, ok, tt.id, tt.anon, tt.ok)
		}
	}
}

// A user has at most perUser jobs waiting in a lane; the first refusal is the one to tell, the
// next ones are not, until nothing of theirs waits.
func TestDispatcherBoundsEachUser(t *testing.T) {
	d := newDispatcher(1, 3)
	k := history.Key{ChatID: 1}
	gate := make(chan struct{})
	ran := make(chan int64, 100)
	j := func(user int64) job {
		return job{user: user, run: func(context.Context) { <-gate; ran <- user }}
	}
	ctx := context.Background()
	d.submit(ctx, k, j(1)) // runs (once the worker starts), or waits: either way not over the bound
	var firsts, oks int
	for range 10 {
		_, ok, first := d.submitCapped(ctx, k, j(1))
		if ok {
			oks++
		}
		if first {
			firsts++
		}
	}
	if _, ok, _ := d.submitCapped(ctx, k, j(2)); !ok {
		t.Error("another user was refused")
	}
	if oks < 2 || oks > 3 || firsts != 1 {
		t.Errorf("got %d queued and %d first refusals, want 2 or 3 and 1", oks, firsts)
	}
	close(gate)
	d.wait()
	if _, ok, first := d.submitCapped(ctx, k, j(1)); !ok || first {
		t.Errorf("after the queue drained: got ok %v first %v, want queued", ok, first)
	}
	d.wait()
}

// The rate's memory is bounded.
func TestRatesAreBounded(t *testing.T) {
	r := newRates(2)
	now := time.Unix(1000, 0)
	for u := range int64(maxRateUsers + 10) {
		if ok, _ := r.allow(u, now); !ok {
			t.Fatalf("user %d refused at their first message", u)
		}
	}
	if n := len(r.users); n > maxRateUsers {
		t.Errorf("remembered %d users, want at most %d", n, maxRateUsers)
	}
	const fresh = maxRateUsers + 100
	var got []bool
	for range 4 {
		ok, tell := r.allow(fresh, now)
		got = append(got, ok, tell)
	}
	if want := []bool{true, false, true, false, false, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("a minute's worth, then two more: got (ok, tell) %v, want %v", got, want)
	}
	if ok, _ := r.allow(fresh, now.Add(30*time.Second)); !ok {
		t.Error("half a minute later: refused, want one more let through")
	}
}

// FuzzStripMentions: any text and entities, however wrong, give valid text no longer than the
// input, and only a bot's mention is found.
func FuzzStripMentions(f *testing.F) {
	f.Add("@aurabot hi", 0, 8, true)
	f.Add("🙂 @AURABOT", 3, 8, true)
	f.Add("@aurabot_x", 0, 10, true)
	f.Add("x", 5, -3, false)
	h := testHandler()
	f.Fuzz(func(t *testing.T, text string, offset, length int, isMention bool) {
		typ := models.MessageEntityTypeBold
		if isMention {
			typ = models.MessageEntityTypeMention
		}
		got, found := h.stripMentions(text, []models.MessageEntity{{Type: typ, Offset: offset, Length: length}})
		if found && !utf8.ValidString(got) {
			t.Fatalf("got invalid UTF-8 %q", got)
		}
		if !found && got != text {
			t.Fatalf("nothing found, but %q became %q", text, got)
		}
		if found && (!isMention || len(utf16.Encode([]rune(got))) != len(utf16.Encode([]rune(text)))-length) {
			t.Fatalf("found in %q (%d+%d): got %q", text, offset, length, got)
		}
	})
}
