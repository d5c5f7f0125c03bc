package history

import (
	"errors"
	"fmt"
	"math"
	"reflect"
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
		want    []int         // indexes into turns, oldest first
		wantErr *TooLongError // Chars and MaxChars; the token fields are checked apart
	}{
		{name: "empty history", budget: 100, want: []int{}},
		{name: "empty history, prompt over budget", prompt: 200, budget: 100, want: []int{}},
		{name: "no user turn", turns: []turn{a(5), a(5)}, budget: 100, want: []int{}},
		{name: "everything fits", turns: []turn{u(5), a(5), u(5)}, prompt: 3, budget: 100, want: []int{0, 1, 2}},
		{name: "exact fit", turns: []turn{u(5), a(5), u(5)}, prompt: 10, budget: 25, want: []int{0, 1, 2}},
		{name: "one over", turns: []turn{u(5), a(5), u(5)}, prompt: 10, budget: 24, want: []int{1, 2}},
		{name: "newest user turn exactly fills", turns: []turn{u(5), a(5), u(20)}, prompt: 5, budget: 25, want: []int{2}},
		{name: "single turn over budget", turns: []turn{u(26)}, budget: 25,
			wantErr: &TooLongError{Chars: 26, MaxChars: 25}},
		{name: "single turn over budget with prompt", turns: []turn{u(5), a(5), u(20)}, prompt: 6, budget: 25,
			wantErr: &TooLongError{Chars: 20, MaxChars: 19}},
		{name: "prompt alone eats the budget", turns: []turn{u(1)}, prompt: 25, budget: 25,
			wantErr: &TooLongError{Chars: 1, MaxChars: 0}},
		{name: "prompt over the budget", turns: []turn{u(1)}, prompt: 30, budget: 25,
			wantErr: &TooLongError{Chars: 1, MaxChars: 0}},
		{name: "prompt leaves room for one character", turns: []turn{a(1), u(1)}, prompt: 24, budget: 25, want: []int{1}},
		{name: "empty user turn, no room left", turns: []turn{u(0)}, prompt: 25, budget: 25, want: []int{0}},
		{name: "zero budget: no bound", turns: []turn{u(5000), a(5000), u(5000)}, prompt: 5000, budget: 0, want: []int{0, 1, 2}},
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
			got, err := s.Window(t.Context(), k, Budget{Chars: tc.budget}, chars(tc.prompt))
			if tc.wantErr != nil {
				var tl *TooLongError
				if !errors.As(err, &tl) {
					t.Fatalf("got error %v, want *TooLongError", err)
				}
				want := *tc.wantErr
				want.Tokens, want.MaxTokens = CountTokens(chars(tc.wantErr.Chars)), math.MaxInt
				if *tl != want {
					t.Errorf("got %+v, want %+v", *tl, want)
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
				if !reflect.DeepEqual(g, stored[i]) {
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
	got, err := s.Window(t.Context(), Key{ChatID: 404}, Budget{Chars: 100}, "prompt")
	if err != nil || len(got) != 0 {
		t.Errorf("got (%v, %v), want (empty, nil)", got, err)
	}
}

func TestTooLongErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  TooLongError
		want string
	}{
		{TooLongError{Chars: 30000, MaxChars: 24000, Tokens: 7600, MaxTokens: 7000},
			"history: message too long: it is 30000 characters, 7600 tokens; with this system prompt it may be at most 24000 characters and 7000 tokens"},
		{TooLongError{Chars: 30000, MaxChars: 24000, Tokens: 7600, MaxTokens: math.MaxInt},
			"history: message too long: it is 30000 characters, 7600 tokens; with this system prompt it may be at most 24000 characters"},
		{TooLongError{Chars: 3000, MaxChars: math.MaxInt, Tokens: 7600, MaxTokens: 7000},
			"history: message too long: it is 3000 characters, 7600 tokens; with this system prompt it may be at most 7000 tokens"},
		{TooLongError{Chars: 5, MaxChars: 0, Tokens: 2, MaxTokens: 100},
			"history: message too long: the system prompt leaves no room for it (it is 5 characters, 2 tokens)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// Window must cost what the window holds, not what the conversation holds:
// the walk runs on the covering index and the rows are fetched by range.
// A migration that drops or reshapes turns_window fails here.
func TestWindowQueryPlans(t *testing.T) {
	s := openTest(t)
	for _, tc := range []struct {
		query string
		args  []any
		want  string
	}{
		{windowWalk, []any{1},
			"SEARCH turns USING COVERING INDEX turns_window (conversation_id=?)"},
		{`SELECT ` + turnColumns + ` FROM turns WHERE conversation_id = 1 AND id BETWEEN 1 AND 5 ORDER BY id`, nil,
			"SEARCH turns USING INDEX turns_window (conversation_id=? AND id>? AND id<?)"},
		{uncounted, []any{0, 10},
			"SEARCH turns USING INDEX turns_uncounted (id>?)"},
	} {
		var plan []string
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
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

// FuzzWindow checks Window against the budget in both units, for any text,
// author, cut status and budget: the window fits, ends with the newest user
// turn, and is as long as it can be (the turn before it would not fit); a
// TooLongError is returned exactly when the newest user turn alone does not
// fit, and reports its size as sent.
func FuzzWindow(f *testing.F) {
	f.Add("hello", "world", "é🙂", "", false, 10, 0, 0, 0)
	f.Add("", "", "", "", false, 0, 0, 0, 0)
	f.Add("你好世界", "answer", "prompt", "Ann", true, 100, 1030, 1000, 0)
	f.Add("long question here", "a cut answer", "", "", true, 0, 40, 0, 0)
	f.Add("hi", "hello", "Be brief.", "", false, 0, 60, 10, 8)
	f.Add("<|endoftext|>", "<|im_end|>", "<|fim_prefix|>", "", false, 0, 90, 0, 5)
	f.Fuzz(func(t *testing.T, first, second, prompt, author string, cut bool, chars, tokens, reserve, perMessage int) {
		s := openTest(t)
		k := Key{ChatID: 1}
		status := StatusDone
		if cut {
			status = StatusCut
		}
		in := []Turn{
			mustAppend(t, s, k, Turn{Role: RoleUser, Content: first, Author: author}),
			mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: second, Status: status}),
			mustAppend(t, s, k, Turn{Role: RoleUser, Content: first + second, Author: author}),
		}
		b := Budget{Chars: chars, Tokens: tokens, ReserveTokens: reserve, PerMessage: perMessage % 100}
		pm := max(b.PerMessage, 0)
		roomC, roomT := b.Room(prompt)
		fits := func(ts []Turn) bool {
			var c, n, msgs int
			for _, t := range ts {
				c += utf8.RuneCountInString(t.Sent())
				n += CountTokens(t.Sent())
				if t.IsSent() {
					msgs++
				}
			}
			// Room is for one message's text: each message sent costs its PerMessage too.
			if roomT == math.MaxInt {
				return c <= roomC
			}
			return c <= roomC && n+msgs*pm <= roomT+pm
		}
		got, err := s.Window(t.Context(), k, b, prompt)
		var tl *TooLongError
		if errors.As(err, &tl) {
			if fits(in[2:]) {
				t.Fatalf("got %+v, but the newest turn fits", *tl)
			}
			sent := in[2].Sent()
			if tl.Chars != utf8.RuneCountInString(sent) || tl.Tokens != CountTokens(sent) {
				t.Errorf("got %+v, want the size of %q", *tl, sent)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[len(got)-1].ID != in[2].ID {
			t.Fatalf("got %s, want it to end with the newest user turn", fmt.Sprint(contents(got)))
		}
		if !fits(got) {
			t.Errorf("got %d turns, over budget %+v with prompt %q", len(got), b, prompt)
		}
		if n := len(got); n < len(in) && fits(in[len(in)-n-1:]) {
			t.Errorf("got %d turns, but %d fit", n, n+1)
		}
		if n := b.RequestTokens(prompt, got); b.Tokens > 0 && n > b.Tokens-max(b.ReserveTokens, 0) {
			t.Errorf("the request counts %d tokens, over %d less %d reserved", n, b.Tokens, b.ReserveTokens)
		}
		for _, turn := range got {
			if strings.Contains(turn.Sent(), "<|endoftext|>") {
				t.Errorf("turn %q is sent with a special token", turn.Sent())
			}
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
		got, err := s.Window(t.Context(), k, Budget{Chars: tt.budget}, "")
		if err != nil {
			t.Fatalf("budget %d: %v", tt.budget, err)
		}
		if len(got) != tt.want {
			t.Errorf("budget %d: got %d turns, want %d", tt.budget, len(got), tt.want)
		}
	}
	var tooLong *TooLongError
	if _, err := s.Window(t.Context(), k, Budget{Chars: 9}, ""); !errors.As(err, &tooLong) {
		t.Errorf("budget 9: got %v, want a TooLongError", err)
	}
	// In tokens: "Bob: again" is 3 tokens ("Bob", ":", " again"), not the 1
	// of "again".
	if got, want := CountTokens("Bob: again"), 3; got != want {
		t.Fatalf("CountTokens(%q): got %d, want %d", "Bob: again", got, want)
	}
	if _, err := s.Window(t.Context(), k, Budget{Tokens: 1002, ReserveTokens: 1000}, ""); !errors.As(err, &tooLong) {
		t.Errorf("2 tokens of room: got %v, want a TooLongError", err)
	} else if want := (TooLongError{Chars: 10, MaxChars: math.MaxInt, Tokens: 3, MaxTokens: 2}); *tooLong != want {
		t.Errorf("got %+v, want %+v", *tooLong, want)
	}
	if got, err := s.Window(t.Context(), k, Budget{Tokens: 1003, ReserveTokens: 1000}, ""); err != nil || len(got) != 1 {
		t.Errorf("3 tokens of room: got %d turns, %v; want 1, nil", len(got), err)
	}
}
