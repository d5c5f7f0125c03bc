package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// openTest opens a store in a fresh temporary folder and closes it when the
// test ends.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "history.sqlite"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustAppend(t *testing.T, s *Store, k Key, turn Turn) Turn {
	t.Helper()
	got, inserted, err := s.Append(t.Context(), k, turn)
	if err != nil {
		t.Fatalf("Append(%v, %q): %v", k, turn.Content, err)
	}
	if !inserted {
		t.Fatalf("Append(%v, %q): inserted false, want true", k, turn.Content)
	}
	return got
}

func mustTurns(t *testing.T, s *Store, k Key) []Turn {
	t.Helper()
	ts, err := s.Turns(t.Context(), k)
	if err != nil {
		t.Fatalf("Turns(%v): %v", k, err)
	}
	return ts
}

// withoutCount checks the token count a turn read from the store carries, when it has one, and
// returns the turn without it, to compare with one built by hand.
func withoutCount(t *testing.T, tu Turn) Turn {
	t.Helper()
	if want := CountTokens(tu.Sent()); tu.counted && tu.tokens != want {
		t.Errorf("turn %d carries the count %d, want %d", tu.ID, tu.tokens, want)
	}
	tu.tokens, tu.counted = 0, false
	return tu
}

func contents(ts []Turn) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Content
	}
	return out
}

func TestAppendRoundTrip(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: -1001234, ThreadID: 7}
	at := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600))
	in := []Turn{
		{Role: RoleUser, Content: "Привет, 🙂 what's up?", Author: "Alice", MessageID: 10, CreatedAt: at},
		{Role: RoleAssistant, Content: "Not much.", MessageID: 11, Status: StatusCut, CreatedAt: at.Add(time.Second)},
		{Role: RoleUser, Content: "", MessageID: 12, CreatedAt: at.Add(2 * time.Second)},
	}
	var stored []Turn
	for _, turn := range in {
		stored = append(stored, mustAppend(t, s, k, turn))
	}
	got := mustTurns(t, s, k)
	if len(got) != len(in) {
		t.Fatalf("got %d turns, want %d", len(got), len(in))
	}
	for i, g := range got {
		want := in[i]
		want.ID = stored[i].ID
		if want.Status == "" {
			want.Status = StatusDone
		}
		want.CreatedAt = want.CreatedAt.Truncate(time.Millisecond).UTC()
		if !reflect.DeepEqual(withoutCount(t, g), want) {
			t.Errorf("turn %d: got %+v, want %+v", i, g, want)
		}
		if !reflect.DeepEqual(g, stored[i]) {
			t.Errorf("turn %d: Append returned %+v, Turns %+v", i, stored[i], g)
		}
		if g.CreatedAt.Location() != time.UTC {
			t.Errorf("turn %d: got location %v, want UTC", i, g.CreatedAt.Location())
		}
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("turn %d: got id %d after %d, want increasing", i, g.ID, got[i-1].ID)
		}
	}
}

func TestAppendDefaultsCreatedAtToNow(t *testing.T) {
	s := openTest(t)
	before := time.Now().Truncate(time.Millisecond)
	got := mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "hi"})
	after := time.Now()
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("got CreatedAt %v, want between %v and %v", got.CreatedAt, before, after)
	}
	if got.Status != StatusDone {
		t.Errorf("got Status %q, want %q", got.Status, StatusDone)
	}
}

func TestAppendRejects(t *testing.T) {
	s := openTest(t)
	for _, tc := range []struct {
		name string
		turn Turn
	}{
		{"unknown role", Turn{Role: "system", Content: "x"}},
		{"empty role", Turn{Content: "x"}},
		{"unknown status", Turn{Role: RoleAssistant, Status: "partial"}},
		{"cut user turn", Turn{Role: RoleUser, Status: StatusCut}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Append(t.Context(), Key{ChatID: 1}, tc.turn); err == nil {
				t.Errorf("got nil error, want one")
			} else if !strings.HasPrefix(err.Error(), "history: append: ") {
				t.Errorf("got error %q, want prefix %q", err, "history: append: ")
			}
		})
	}
	if got := mustTurns(t, s, Key{ChatID: 1}); len(got) != 0 {
		t.Errorf("got %d turns stored, want 0", len(got))
	}
}

func TestAppendRedeliveredIsNoOp(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 5}
	first := mustAppend(t, s, k, Turn{Role: RoleUser, Content: "question", Author: "Bob", MessageID: 42})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "answer", MessageID: 43})

	again, inserted, err := s.Append(t.Context(), k, Turn{Role: RoleUser, Content: "question (redelivered)", MessageID: 42})
	if err != nil {
		t.Fatalf("Append again: %v", err)
	}
	if inserted {
		t.Errorf("got inserted true for a redelivered message, want false")
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("got %+v, want the stored turn %+v", again, first)
	}
	if got, want := contents(mustTurns(t, s, k)), []string{"question", "answer"}; !slices.Equal(got, want) {
		t.Errorf("got turns %q, want %q", got, want)
	}

	// The same message id is a different message elsewhere, or not a user's.
	for _, tc := range []struct {
		name string
		k    Key
		turn Turn
	}{
		{"other chat", Key{ChatID: 6}, Turn{Role: RoleUser, Content: "q", MessageID: 42}},
		{"other topic", Key{ChatID: 5, ThreadID: 1}, Turn{Role: RoleUser, Content: "q", MessageID: 42}},
		{"assistant turn", k, Turn{Role: RoleAssistant, Content: "a", MessageID: 42}},
		{"answer without message id", k, Turn{Role: RoleAssistant, Content: "a"}},
		{"answer without message id twice", k, Turn{Role: RoleAssistant, Content: "a"}},
		{"no message id", k, Turn{Role: RoleUser, Content: "q"}},
		{"no message id twice", k, Turn{Role: RoleUser, Content: "q"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, inserted, err := s.Append(t.Context(), tc.k, tc.turn)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !inserted {
				t.Errorf("got inserted false, want true")
			}
		})
	}
}

// An answer stored again (a recovery after a crash finishing a reply that
// was already stored) is kept once: Append returns the stored turn.
func TestAppendAnswerTwiceIsNoOp(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 5}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "question", MessageID: 42})
	first := mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "answer", MessageID: 43})
	again, inserted, err := s.Append(t.Context(), k, Turn{Role: RoleAssistant, Content: "answer, again", MessageID: 43, Status: StatusCut})
	if err != nil {
		t.Fatalf("Append again: %v", err)
	}
	if inserted || !reflect.DeepEqual(again, first) {
		t.Errorf("got (%+v, inserted %v), want the stored turn %+v and false", again, inserted, first)
	}
	if got, want := contents(mustTurns(t, s, k)), []string{"question", "answer"}; !slices.Equal(got, want) {
		t.Errorf("got turns %q, want %q", got, want)
	}
	// The same id on another conversation's answer is another message.
	mustAppend(t, s, Key{ChatID: 6}, Turn{Role: RoleAssistant, Content: "answer", MessageID: 43})
}

// The unique index, not only the check in Append, keeps a message from being
// stored twice.
func TestDuplicateUserMessageRejectedBySchema(t *testing.T) {
	s := openTest(t)
	turn := mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "q", MessageID: 9})
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO turns (conversation_id, role, content, message_id, created_at)
		SELECT conversation_id, role, content, message_id, created_at FROM turns WHERE id = ?`, turn.ID)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("got error %v, want a UNIQUE constraint failure", err)
	}
}

func TestDuplicateAnswerRejectedBySchema(t *testing.T) {
	s := openTest(t)
	turn := mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleAssistant, Content: "a", MessageID: 9})
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO turns (conversation_id, role, content, message_id, created_at)
		SELECT conversation_id, role, content, message_id, created_at FROM turns WHERE id = ?`, turn.ID)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("got error %v, want a UNIQUE constraint failure", err)
	}
}

func TestConversationsAreSeparate(t *testing.T) {
	s := openTest(t)
	keys := []Key{{ChatID: 1}, {ChatID: 1, ThreadID: 2}, {ChatID: 2}, {ChatID: -1}}
	for _, k := range keys {
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: keyName(k)})
	}
	for _, k := range keys {
		if got, want := contents(mustTurns(t, s, k)), []string{keyName(k)}; !slices.Equal(got, want) {
			t.Errorf("Turns(%v): got %q, want %q", k, got, want)
		}
	}
	if got := mustTurns(t, s, Key{ChatID: 3}); len(got) != 0 {
		t.Errorf("Turns of an unknown conversation: got %d turns, want 0", len(got))
	}
}

func TestSystemPrompt(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	k := Key{ChatID: 1, ThreadID: 3}
	check := func(wantPrompt string, wantOK bool) {
		t.Helper()
		p, ok, err := s.SystemPrompt(ctx, k)
		if err != nil {
			t.Fatalf("SystemPrompt: %v", err)
		}
		if p != wantPrompt || ok != wantOK {
			t.Errorf("got (%q, %v), want (%q, %v)", p, ok, wantPrompt, wantOK)
		}
	}
	check("", false) // unknown conversation
	if err := s.ClearSystemPrompt(ctx, k); err != nil {
		t.Fatalf("ClearSystemPrompt of unknown conversation: %v", err)
	}
	check("", false)
	if err := s.SetSystemPrompt(ctx, k, "Be brief."); err != nil {
		t.Fatalf("SetSystemPrompt: %v", err)
	}
	check("Be brief.", true)
	if err := s.SetSystemPrompt(ctx, k, ""); err != nil { // no prompt at all, on purpose
		t.Fatalf("SetSystemPrompt: %v", err)
	}
	check("", true)
	if err := s.SetSystemPrompt(ctx, k, "Pirate."); err != nil {
		t.Fatalf("SetSystemPrompt: %v", err)
	}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "ahoy"})
	if err := s.Reset(ctx, k); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	check("Pirate.", true) // survives a reset
	if p, ok, _ := s.SystemPrompt(ctx, Key{ChatID: 1}); ok {
		t.Errorf("prompt of the chat outside the topic: got (%q, true), want none", p)
	}
	if err := s.ClearSystemPrompt(ctx, k); err != nil {
		t.Fatalf("ClearSystemPrompt: %v", err)
	}
	check("", false)
}

func TestReset(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	k, other := Key{ChatID: 1}, Key{ChatID: 2}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "secret-passphrase-8f3a", MessageID: 1})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "noted"})
	mustAppend(t, s, other, Turn{Role: RoleUser, Content: "keep me"})
	if err := s.Reset(ctx, k); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if got := mustTurns(t, s, k); len(got) != 0 {
		t.Errorf("got %d turns after Reset, want 0", len(got))
	}
	if got, want := contents(mustTurns(t, s, other)), []string{"keep me"}; !slices.Equal(got, want) {
		t.Errorf("other conversation: got %q, want %q", got, want)
	}
	if err := s.Reset(ctx, Key{ChatID: 99}); err != nil {
		t.Errorf("Reset of unknown conversation: %v", err)
	}
	// After a reset the same Telegram message may be stored again.
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "again", MessageID: 1})
}

// Reset really deletes: once the store is closed (and the WAL checkpointed),
// the text is nowhere in the database file.
func TestResetLeavesNoTraceInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.sqlite")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "secret-passphrase-8f3a"
	k := Key{ChatID: 1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: secret})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "noted " + secret})
	if err := s.Reset(t.Context(), k); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s still contains the deleted text", filepath.Base(p))
		}
	}
}

func TestRewind(t *testing.T) {
	type step struct {
		role    Role
		content string
	}
	for _, tc := range []struct {
		name     string
		turns    []step
		want     string // content of the returned user turn; "" = ErrNotFound
		wantLeft []string
	}{
		{name: "empty", want: "", wantLeft: []string{}},
		{name: "only assistant", turns: []step{{RoleAssistant, "hello"}}, want: "", wantLeft: []string{"hello"}},
		{name: "user last", turns: []step{{RoleUser, "q1"}, {RoleAssistant, "a1"}, {RoleUser, "q2"}},
			want: "q2", wantLeft: []string{"q1", "a1", "q2"}},
		{name: "one answer", turns: []step{{RoleUser, "q1"}, {RoleAssistant, "a1"}, {RoleUser, "q2"}, {RoleAssistant, "a2"}},
			want: "q2", wantLeft: []string{"q1", "a1", "q2"}},
		{name: "answer in parts", turns: []step{{RoleUser, "q1"}, {RoleAssistant, "a1"}, {RoleAssistant, "a1b"}},
			want: "q1", wantLeft: []string{"q1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			k := Key{ChatID: 1, ThreadID: 2}
			mustAppend(t, s, Key{ChatID: 1}, Turn{Role: RoleUser, Content: "other conversation"})
			var wantTurn Turn
			for _, st := range tc.turns {
				got := mustAppend(t, s, k, Turn{Role: st.role, Content: st.content})
				if st.role == RoleUser {
					wantTurn = got
				}
			}
			got, err := s.Rewind(t.Context(), k)
			if tc.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("got error %v, want ErrNotFound", err)
				}
			} else if err != nil {
				t.Fatalf("Rewind: %v", err)
			} else if !reflect.DeepEqual(got, wantTurn) {
				t.Errorf("got %+v, want %+v", got, wantTurn)
			}
			if left := contents(mustTurns(t, s, k)); !slices.Equal(left, tc.wantLeft) {
				t.Errorf("got turns left %q, want %q", left, tc.wantLeft)
			}
			if left := mustTurns(t, s, Key{ChatID: 1}); len(left) != 1 {
				t.Errorf("other conversation: got %d turns, want 1", len(left))
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "q"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"Append":     func() error { _, _, err := s.Append(ctx, k, Turn{Role: RoleUser, Content: "x"}); return err },
		"Turns":      func() error { _, err := s.Turns(ctx, k); return err },
		"Window":     func() error { _, err := s.Window(ctx, k, Budget{Chars: 100}, ""); return err },
		"Coverage":   func() error { _, _, err := s.Coverage(ctx, k, Budget{Chars: 100}, ""); return err },
		"Rewind":     func() error { _, err := s.Rewind(ctx, k); return err },
		"Reset":      func() error { return s.Reset(ctx, k) },
		"CheckWrite": func() error { return s.CheckWrite(ctx) },
		"SetSystemPrompt": func() error {
			return s.SetSystemPrompt(ctx, k, "p")
		},
		"Request":      func() error { _, err := s.Request(ctx, k, Budget{Summaries: true}, ""); return err },
		"Report":       func() error { _, err := s.Report(ctx, k, Budget{Summaries: true}, ""); return err },
		"Summary":      func() error { _, err := s.Summary(ctx, k); return err },
		"SetSummary":   func() error { _, err := s.SetSummary(ctx, k, "s", 1); return err },
		"TurnsBetween": func() error { _, err := s.TurnsBetween(ctx, k, 0, 1); return err },
		"AddUsage":     func() error { return s.AddUsage(ctx, Usage{User: 1, Kind: UsageChat}) },
		"UsageOf":      func() error { _, err := s.UsageOf(ctx, 1, time.Now()); return err },
		"UsageAll":     func() error { _, err := s.UsageAll(ctx, time.Now()); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: got error %v, want context.Canceled", name, err)
		}
	}
	if got := contents(mustTurns(t, s, k)); !slices.Equal(got, []string{"q"}) {
		t.Errorf("got turns %q, want %q", got, []string{"q"})
	}
}

func keyName(k Key) string {
	return fmt.Sprintf("chat %d thread %d", k.ChatID, k.ThreadID)
}
