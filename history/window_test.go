package history

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// chars returns text of n characters, two bytes each, so that a byte count
// where a character count belongs shows up as a failure.
func chars(n int) string { return strings.Repeat("é", n) }

func TestWindow(t *testing.T) {
	type turn struct {
		role  Role
		chars int
	}
	u := func(n int) turn { return turn{RoleUser, n} }
	a := func(n int) turn { return turn{RoleAssistant, n} }
	for _, tc := range []struct {
		name    string
		turns   []turn
		prompt  int
		budget  int
		want    []int // indexes into turns, oldest first
		wantErr *TooLongError
	}{
		{name: "empty history", budget: 100, want: []int{}},
		{name: "empty history, prompt over budget", prompt: 200, budget: 100, want: []int{}},
		{name: "no user turn", turns: []turn{a(5), a(5)}, budget: 100, want: []int{}},
		{name: "everything fits", turns: []turn{u(5), a(5), u(5)}, prompt: 3, budget: 100, want: []int{0, 1, 2}},
		{name: "exact fit", turns: []turn{u(5), a(5), u(5)}, prompt: 10, budget: 25, want: []int{0, 1, 2}},
		{name: "one over", turns: []turn{u(5), a(5), u(5)}, prompt: 10, budget: 24, want: []int{1, 2}},
		{name: "newest user turn exactly fills", turns: []turn{u(5), a(5), u(20)}, prompt: 5, budget: 25, want: []int{2}},
		{name: "single turn over budget", turns: []turn{u(26)}, budget: 25,
			wantErr: &TooLongError{Length: 26, Budget: 25}},
		{name: "single turn over budget with prompt", turns: []turn{u(5), a(5), u(20)}, prompt: 6, budget: 25,
			wantErr: &TooLongError{Length: 26, Budget: 25}},
		{name: "prompt alone eats the budget", turns: []turn{u(1)}, prompt: 25, budget: 25,
			wantErr: &TooLongError{Length: 26, Budget: 25}},
		{name: "prompt leaves room for one character", turns: []turn{a(1), u(1)}, prompt: 24, budget: 25, want: []int{1}},
		{name: "empty user turn, zero budget", turns: []turn{u(0)}, budget: 0, want: []int{0}},
		{name: "trailing assistant turn left out", turns: []turn{u(5), a(5), u(5), a(5)}, budget: 100, want: []int{0, 1, 2}},
		{name: "trailing assistant turns over budget", turns: []turn{u(5), a(500), a(500)}, budget: 10, want: []int{0}},
		{name: "old turn over budget stops the run", turns: []turn{u(100), a(5), u(5)}, budget: 20, want: []int{1, 2}},
		{name: "contiguous: no skipping a big turn", turns: []turn{u(1), a(100), u(5)}, budget: 20, want: []int{2}},
		{name: "older turns fit after one does not", turns: []turn{u(1), a(1), u(1), a(30), u(5)}, budget: 20, want: []int{4}},
		{name: "consecutive user turns", turns: []turn{u(5), u(5), u(5)}, budget: 10, want: []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			k := Key{ChatID: 7, ThreadID: 1}
			// Neighbours that must not leak into the window.
			mustAppend(t, s, Key{ChatID: 7}, Turn{Role: RoleUser, Content: "other topic"})
			var stored []Turn
			for i, tt := range tc.turns {
				stored = append(stored, mustAppend(t, s, k, Turn{Role: tt.role, Content: chars(tt.chars), MessageID: int64(i + 1)}))
				mustAppend(t, s, Key{ChatID: 8}, Turn{Role: RoleUser, Content: "other chat"})
			}
			got, err := s.Window(t.Context(), k, tc.budget, chars(tc.prompt))
			if tc.wantErr != nil {
				var tl *TooLongError
				if !errors.As(err, &tl) {
					t.Fatalf("got error %v, want *TooLongError", err)
				}
				if *tl != *tc.wantErr {
					t.Errorf("got %+v, want %+v", *tl, *tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Window: %v", err)
			}
			if got == nil {
				t.Errorf("got nil slice, want empty")
			}
			var gotIdx []int
			for _, g := range got {
				i := slices.IndexFunc(stored, func(s Turn) bool { return s.ID == g.ID })
				if i < 0 {
					t.Fatalf("got turn %+v, not one of the conversation's", g)
				}
				if g != stored[i] {
					t.Errorf("got %+v, want %+v", g, stored[i])
				}
				gotIdx = append(gotIdx, i)
			}
			if !slices.Equal(gotIdx, tc.want) && !(len(gotIdx) == 0 && len(tc.want) == 0) {
				t.Errorf("got turns %v, want %v", gotIdx, tc.want)
			}
		})
	}
}

func TestWindowUnknownConversation(t *testing.T) {
	s := openTest(t)
	got, err := s.Window(t.Context(), Key{ChatID: 404}, 100, "prompt")
	if err != nil || len(got) != 0 {
		t.Errorf("got (%v, %v), want (empty, nil)", got, err)
	}
}

func TestTooLongErrorMessage(t *testing.T) {
	err := error(&TooLongError{Length: 30000, Budget: 24576})
	want := "history: newest message with the system prompt is 30000 characters, over the budget of 24576"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

// Window must cost what the window holds, not what the conversation holds:
// the walk runs on the covering index and the rows are fetched by range.
// A migration that drops or reshapes turns_window fails here.
func TestWindowQueryPlans(t *testing.T) {
	s := openTest(t)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{`SELECT id, role, char_count FROM turns WHERE conversation_id = 1 ORDER BY id DESC`,
			"SEARCH turns USING COVERING INDEX turns_window (conversation_id=?)"},
		{`SELECT ` + turnColumns + ` FROM turns WHERE conversation_id = 1 AND id BETWEEN 1 AND 5 ORDER BY id`,
			"SEARCH turns USING INDEX turns_window (conversation_id=? AND id>? AND id<?)"},
	} {
		var plan []string
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if got := strings.Join(plan, "; "); got != tc.want {
			t.Errorf("plan of %q:\ngot  %s\nwant %s", tc.query, got, tc.want)
		}
	}
}

func FuzzWindow(f *testing.F) {
	f.Add("hello", "world", "é🙂", 10)
	f.Add("", "", "", 0)
	f.Fuzz(func(t *testing.T, first, second, prompt string, budget int) {
		s := openTest(t)
		k := Key{ChatID: 1}
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: first})
		mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: second})
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: first + second})
		got, err := s.Window(t.Context(), k, budget, prompt)
		var tl *TooLongError
		if errors.As(err, &tl) {
			if tl.Length <= budget {
				t.Fatalf("got %+v, length within budget", *tl)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		total := utf8.RuneCountInString(prompt)
		for _, g := range got {
			total += utf8.RuneCountInString(g.Content)
		}
		if total > budget {
			t.Errorf("got %d characters, over budget %d", total, budget)
		}
		if len(got) == 0 || got[len(got)-1].Content != first+second {
			t.Errorf("got %s, want it to end with the newest user turn", fmt.Sprint(contents(got)))
		}
	})
}

// A group's user turn is sent as "Author: content", so the budget counts the prefix too.
func TestWindowCountsAuthorPrefix(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: -1}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "hello", Author: "Ann"}) // 3+2+5 = 10
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "hi"})              // 2
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "again", Author: "Bob"}) // 10
	for _, tt := range []struct{ budget, want int }{{22, 3}, {21, 2}, {11, 1}, {10, 1}} {
		got, err := s.Window(t.Context(), k, tt.budget, "")
		if err != nil {
			t.Fatalf("budget %d: %v", tt.budget, err)
		}
		if len(got) != tt.want {
			t.Errorf("budget %d: got %d turns, want %d", tt.budget, len(got), tt.want)
		}
	}
	var tooLong *TooLongError
	if _, err := s.Window(t.Context(), k, 9, ""); !errors.As(err, &tooLong) {
		t.Errorf("budget 9: got %v, want a TooLongError", err)
	}
}
