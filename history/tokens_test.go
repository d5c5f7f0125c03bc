package history

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"unicode/utf8"

	"math"
	"strings"
	"sync"
	"testing"
)

func TestCountTokens(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"tiktoken is great!", 6}, // OpenAI's cookbook example for cl100k_base
		{"hello world", 2},
		{"Bob: again", 3},
		{"龘龘龘龘", 8}, // 4 characters, 8 tokens
		{"你好世界", 5},
		{CutMarker, 7},
		{"<|endoftext|>", 7}, // a special token's text counts as ordinary text
		{"\x7f", 1},          // dropped by tiktoken-go, one byte token in cl100k_base
		{"x\x7fy", 3},        // "x", "\x7f", "y"
	} {
		if got := CountTokens(tc.in); got != tc.want {
			t.Errorf("CountTokens(%q): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// The encoding is shared by every goroutine that counts; go test -race
// checks that is safe.
func TestCountTokensConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := CountTokens("tiktoken is great!"); got != 6 {
					t.Errorf("got %d, want 6", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		turn Turn
		want string
	}{
		{"user", Turn{Role: RoleUser, Content: "hi"}, "hi"},
		{"group user", Turn{Role: RoleUser, Content: "hi", Author: "Ann"}, "Ann: hi"},
		{"answer", Turn{Role: RoleAssistant, Content: "hello"}, "hello"},
		{"answer done", Turn{Role: RoleAssistant, Content: "hello", Status: StatusDone}, "hello"},
		{"cut answer", Turn{Role: RoleAssistant, Content: "hel", Status: StatusCut}, "hel\n\n[this answer was cut off]"},
		{"empty cut answer", Turn{Role: RoleAssistant, Status: StatusCut}, CutMarker},
		{"author on an answer is not sent", Turn{Role: RoleAssistant, Content: "x", Author: "Ann"}, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.turn.Sent(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRoom(t *testing.T) {
	for _, tc := range []struct {
		name          string
		b             Budget
		prompt        string
		chars, tokens int
	}{
		{"no bounds", Budget{}, "龘龘", math.MaxInt, math.MaxInt},
		{"reserve without a token bound", Budget{ReserveTokens: 1000}, "", math.MaxInt, math.MaxInt},
		{"chars", Budget{Chars: 100}, "龘龘", 98, math.MaxInt},
		{"tokens", Budget{Tokens: 8192, ReserveTokens: 1000}, "龘龘", math.MaxInt, 8192 - 1000 - 4},
		{"both", Budget{Chars: 10, Tokens: 1010, ReserveTokens: 1000}, "hello world", -1, 8},
		{"negative bounds fit nothing", Budget{Chars: -5, Tokens: -5}, "", -1, -1},
		{"negative reserve counts as none", Budget{Tokens: 10, ReserveTokens: -5}, "", math.MaxInt, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n := tc.b.Room(tc.prompt)
			if c != tc.chars || n != tc.tokens {
				t.Errorf("got (%d, %d), want (%d, %d)", c, n, tc.chars, tc.tokens)
			}
		})
	}
}

// CJK text has more tokens than characters, English far fewer: each bound
// can be the one that stops the window.
func TestWindowTokens(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 3}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "龘龘龘龘"})             // 4 characters, 8 tokens
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "hello world"}) // 11 characters, 2 tokens
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "你好世界"})             // 4 characters, 5 tokens
	for _, tc := range []struct {
		name   string
		b      Budget
		prompt string
		want   int
	}{
		{"tokens: all fit", Budget{Tokens: 1015, ReserveTokens: 1000}, "", 3},
		{"tokens: one short", Budget{Tokens: 1014, ReserveTokens: 1000}, "", 2},
		{"tokens: prompt counted", Budget{Tokens: 1017, ReserveTokens: 1000}, "鑫", 2}, // 鑫 is 3 tokens
		{"tokens: prompt counted, all fit", Budget{Tokens: 1018, ReserveTokens: 1000}, "hi", 3},
		{"tokens stop it though characters would not", Budget{Chars: 19, Tokens: 1014, ReserveTokens: 1000}, "", 2},
		{"characters stop it though tokens would not", Budget{Chars: 18, Tokens: 1015, ReserveTokens: 1000}, "", 2},
		{"both fit exactly", Budget{Chars: 19, Tokens: 1015, ReserveTokens: 1000}, "", 3},
		{"openai-style reserve", Budget{Tokens: 4096 + 15, ReserveTokens: 4096}, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Window(t.Context(), k, tc.b, tc.prompt)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("got %d turns %q, want %d", len(got), contents(got), tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		b      Budget
		prompt string
		want   TooLongError
	}{
		{"tokens", Budget{Tokens: 1004, ReserveTokens: 1000}, "", TooLongError{Chars: 4, MaxChars: math.MaxInt, Tokens: 5, MaxTokens: 4}},
		{"tokens with a prompt", Budget{Chars: 100, Tokens: 1007, ReserveTokens: 1000}, "鑫", TooLongError{Chars: 4, MaxChars: 99, Tokens: 5, MaxTokens: 4}},
		{"characters", Budget{Chars: 3, Tokens: 8192, ReserveTokens: 1000}, "", TooLongError{Chars: 4, MaxChars: 3, Tokens: 5, MaxTokens: 7192}},
		{"the prompt leaves no room", Budget{Tokens: 1002, ReserveTokens: 1000}, "鑫", TooLongError{Chars: 4, MaxChars: math.MaxInt, Tokens: 5, MaxTokens: 0}},
	} {
		t.Run("too long: "+tc.name, func(t *testing.T) {
			_, err := s.Window(t.Context(), k, tc.b, tc.prompt)
			var tl *TooLongError
			if !errors.As(err, &tl) {
				t.Fatalf("got %v, want a *TooLongError", err)
			}
			if *tl != tc.want {
				t.Errorf("got %+v, want %+v", *tl, tc.want)
			}
		})
	}
}

// A cut answer is sent with CutMarker after it, and the marker counts: it
// can be what keeps the answer out of the window.
func TestWindowCountsCutMarker(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 4}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "hi"})                          // 2 characters, 1 token
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "abc", Status: StatusCut}) // 3+27 characters, 1+7 tokens
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "next"})                        // 4 characters, 1 token
	for _, tc := range []struct {
		b    Budget
		want []string
	}{
		{Budget{Chars: 34}, []string{"abc", "next"}},
		{Budget{Chars: 33}, []string{"next"}}, // "abc" alone would fit
		{Budget{Tokens: 1009, ReserveTokens: 1000}, []string{"abc", "next"}},
		{Budget{Tokens: 1008, ReserveTokens: 1000}, []string{"next"}},
		{Budget{Chars: 36, Tokens: 1010, ReserveTokens: 1000}, []string{"hi", "abc", "next"}},
	} {
		got, err := s.Window(t.Context(), k, tc.b, "")
		if err != nil {
			t.Fatalf("%+v: %v", tc.b, err)
		}
		if c := contents(got); strings.Join(c, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%+v: got %q, want %q", tc.b, c, tc.want)
		}
	}
}

func TestCoverage(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 5}
	if in, total, err := s.Coverage(t.Context(), k, Budget{}, ""); in != 0 || total != 0 || err != nil {
		t.Errorf("no conversation: got (%d, %d, %v), want (0, 0, nil)", in, total, err)
	}
	for i := range 10 {
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: "question " + strings.Repeat("x", i)})
		mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "answer"})
	}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "last"})
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "being retried"}) // after the newest user turn: not sent
	mustAppend(t, s, Key{ChatID: 6}, Turn{Role: RoleUser, Content: "another chat"})
	for _, tc := range []struct {
		b    Budget
		want int
	}{
		{Budget{}, 21},
		{Budget{Chars: 4}, 1},
		{Budget{Chars: 4 + 6 + 18}, 3}, // "last", "answer", "question xxxxxxxxx"
		{Budget{Chars: 4 + 6 + 17}, 2},
	} {
		in, total, err := s.Coverage(t.Context(), k, tc.b, "")
		if err != nil {
			t.Fatalf("%+v: %v", tc.b, err)
		}
		if in != tc.want || total != 22 {
			t.Errorf("%+v: got %d of %d, want %d of 22", tc.b, in, total, tc.want)
		}
		w, err := s.Window(t.Context(), k, tc.b, "")
		if err != nil || len(w) != in {
			t.Errorf("%+v: Window gives %d turns (%v), Coverage %d", tc.b, len(w), err, in)
		}
	}
	in, total, err := s.Coverage(t.Context(), k, Budget{Chars: 3}, "")
	var tl *TooLongError
	if !errors.As(err, &tl) || in != 0 || total != 22 {
		t.Errorf("too long: got (%d, %d, %v), want (0, 22, *TooLongError)", in, total, err)
	}
}

// A turn without a token count (not counted yet after the upgrade, or stored
// by an older program while this one had the file open) is counted from its
// text by Window, and for good after the next Open.
func TestWindowCountsUncountedTurn(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/h.sqlite"
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{ChatID: 3}
	old := mustAppend(t, s, k, Turn{Role: RoleUser, Content: "龘龘龘龘"}) // 8 tokens
	mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "hello world"})
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "你好世界"})
	if _, err := s.w.ExecContext(ctx, `UPDATE turns SET token_count = NULL WHERE id = ?`, old.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tokens, want int
	}{{1015, 3}, {1014, 2}} {
		got, err := s.Window(ctx, k, Budget{Tokens: tc.tokens, ReserveTokens: 1000}, "")
		if err != nil || len(got) != tc.want {
			t.Errorf("%d tokens: got %d turns, %v; want %d", tc.tokens, len(got), err, tc.want)
		}
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.counted
	var n int
	if err := s.r.GetContext(ctx, &n, `SELECT token_count FROM turns WHERE id = ?`, old.ID); err != nil || n != 8 {
		t.Errorf("after reopening: got token_count %d, %v; want 8", n, err)
	}
}

// A database at migration 0003 holds turns without token_count, and with a
// char_count that left out the cut-off marker. Open counts both from the text
// sent for each turn, in batches, and the window sees them so.
func TestUpgradeCountsTokens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v3.sqlite")
	db := rawDB(t, path)
	if err := migrate(ctx, db, onlyMigrations(t, 3)); err != nil {
		t.Fatalf("migrate to 0003: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO conversations (id, chat_id, thread_id, created_at) VALUES (1, -100, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	seed := []Turn{
		{Role: RoleUser, Content: "龘龘龘龘", Author: "Ann"},
		{Role: RoleAssistant, Content: "abc", Status: StatusCut},
		{Role: RoleUser, Content: "hello world"},
	}
	// More than one batch of plain turns after them, so the batching is crossed.
	for range countBatch + 10 {
		seed = append(seed, Turn{Role: RoleAssistant, Content: "x"})
	}
	seed = append(seed, Turn{Role: RoleUser, Content: "你好世界", Author: "Bob"})
	for _, tt := range seed {
		// char_count as 0003's code stored it: the author prefix, no marker.
		chars := utf8.RuneCountInString(tt.Content)
		if tt.Author != "" {
			chars += utf8.RuneCountInString(tt.Author) + 2
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO turns (conversation_id, role, content, author, status, char_count, created_at)
			VALUES (1, ?, ?, ?, ?, ?, 0)`, tt.Role, tt.Content, tt.Author, cmp.Or(tt.Status, StatusDone), chars); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	<-s.counted
	rows, err := s.r.QueryContext(ctx, `SELECT content, char_count, token_count FROM turns ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var (
			content       string
			chars, tokens sql.NullInt64
		)
		if err := rows.Scan(&content, &chars, &tokens); err != nil {
			t.Fatal(err)
		}
		sent := seed[i].Sent()
		if want := (count{utf8.RuneCountInString(sent), CountTokens(sent)}); chars.Int64 != int64(want.chars) || !tokens.Valid || tokens.Int64 != int64(want.tokens) {
			t.Errorf("turn %d (%q): got char_count %v, token_count %v; want %d, %d", i, content, chars, tokens, want.chars, want.tokens)
		}
	}
	if err := rows.Err(); err != nil || i != len(seed) {
		t.Errorf("got %d turns (%v), want %d", i, err, len(seed))
	}
	var uncounted int
	if err := s.r.GetContext(ctx, &uncounted, `SELECT count(*) FROM turns WHERE token_count IS NULL`); err != nil || uncounted != 0 {
		t.Errorf("got %d uncounted turns (%v), want 0", uncounted, err)
	}
}

// Every cl100k_base token is at least one byte, which CountTokens relies on
// for its fallback; and text is never free.
func FuzzCountTokens(f *testing.F) {
	for _, s := range []string{"", "tiktoken is great!", "龘龘龘龘", "\xff\xfe", "<|endoftext|>", CutMarker, "  \n\n\t x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := CountTokens(s)
		if n > len(s) || (s != "" && n < 1) {
			t.Errorf("CountTokens(%q): got %d for %d bytes", s, n, len(s))
		}
	})
}

// Close stops the count of stored turns where it is; the next Open counts
// the rest.
func TestCountStoredStops(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "h.sqlite")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	k := Key{ChatID: 1}
	for range 3 {
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: "龘龘龘龘"})
	}
	<-s.counted
	if _, err := s.w.ExecContext(ctx, `UPDATE turns SET token_count = NULL`); err != nil {
		t.Fatal(err)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := countStored(stopped, s); !errors.Is(err, context.Canceled) {
		t.Errorf("countStored with a canceled context: got %v, want context.Canceled", err)
	}
	var left int
	if err := s.r.GetContext(ctx, &left, `SELECT count(*) FROM turns WHERE token_count IS NULL`); err != nil || left != 3 {
		t.Errorf("got %d uncounted (%v), want 3", left, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.counted
	if err := s.r.GetContext(ctx, &left, `SELECT count(*) FROM turns WHERE token_count IS NULL`); err != nil || left != 0 {
		t.Errorf("after reopening: got %d uncounted (%v), want 0", left, err)
	}
}
