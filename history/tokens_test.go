package history

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"unicode/utf8"

	"math"
	"slices"
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
		{"special tokens defused", Turn{Role: RoleUser, Content: "say <|endoftext|>"}, "say <|\u200bendoftext|>"},
		{"in the author too", Turn{Role: RoleUser, Content: "hi", Author: "<|im_start|>"}, "<|\u200bim_start|>: hi"},
		{"voice not heard yet", Turn{Role: RoleUser, Author: "Ann", Audio: Audio{FileID: "f"}}, ""},
		{"reply to an answer", Turn{Role: RoleUser, Content: "shorter, please", Quote: Quote{Text: "Paris is the capital.\nIt is big.", Bot: true}},
			"(replying to your message)\n> Paris is the capital.\n> It is big.\n\nshorter, please"},
		{"reply to a member, in a group", Turn{Role: RoleUser, Content: "true?", Author: "Bob", Quote: Quote{Text: "cats fly", Author: "Ann"}},
			"Bob: (replying to Ann)\n> cats fly\n\ntrue?"},
		{"reply to an earlier message", Turn{Role: RoleUser, Content: "and this?", Quote: Quote{Text: "x"}},
			"(replying to an earlier message)\n> x\n\nand this?"},
		{"quote defused", Turn{Role: RoleUser, Content: "hm", Quote: Quote{Text: "<|endoftext|>", Author: "<|eot_id|>"}},
			"(replying to <|\u200beot_id|>)\n> <|\u200bendoftext|>\n\nhm"},
		{"voice with a quote, not heard yet", Turn{Role: RoleUser, Audio: Audio{FileID: "f"}, Quote: Quote{Text: "x", Bot: true}}, ""},
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
		// The prompt's message, the reply's priming and the message's own each cost PerMessage.
		{"per message", Budget{Tokens: 100, ReserveTokens: 10, PerMessage: 5}, "hello world", math.MaxInt, 100 - 10 - 2 - 3*5},
		{"per message without a token bound", Budget{Chars: 50, PerMessage: 5}, "", 50, math.MaxInt},
		{"negative per message counts as none", Budget{Tokens: 100, PerMessage: -5}, "", math.MaxInt, 100},
		{"a special token is counted defused", Budget{Tokens: 100}, "<|endoftext|>", math.MaxInt, 100 - 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, n := tc.b.Room(tc.prompt)
			if c != tc.chars || n != tc.tokens {
				t.Errorf("got (%d, %d), want (%d, %d)", c, n, tc.chars, tc.tokens)
			}
		})
	}
}

func TestPromptHalf(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Budget
		want Budget
	}{
		{"no bounds", Budget{}, Budget{}},
		{"characters", Budget{Chars: 101}, Budget{Chars: 50}},
		{"chatbot-ui", Budget{Chars: 24576, Tokens: 7192}, Budget{Chars: 12288, Tokens: 3596}},
		{"reserve", Budget{Tokens: 4096, ReserveTokens: 1000}, Budget{Tokens: 1548}},
		// Half of what is left once the reply's priming is counted, less the prompt's own.
		{"per message", Budget{Tokens: 512, ReserveTokens: 100, PerMessage: 8}, Budget{Tokens: (512-100-8)/2 - 8}},
		{"too small for anything", Budget{Tokens: 20, PerMessage: 8}, Budget{Tokens: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.PromptHalf(); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The template's overhead counts for every message: with PerMessage, fewer turns fit in the
// same tokens, exactly as many as the server's own count allows.
func TestWindowCountsPerMessage(t *testing.T) {
	s := openTest(t)
	k := Key{ChatID: 8}
	for range 5 {
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: "hi"})      // 1 token
		mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "ok"}) // 1 token
	}
	mustAppend(t, s, k, Turn{Role: RoleUser, Content: "last"}) // 1 token
	// The prompt "Be brief." is 3 tokens. With 8 per message, a request of the prompt and n
	// turns costs 3 + n + 8*(n+2).
	for _, tc := range []struct {
		tokens, want int
	}{
		{3 + 11 + 8*13, 11},
		{3 + 11 + 8*13 - 1, 10},
		{3 + 1 + 8*3, 1},
	} {
		b := Budget{Tokens: tc.tokens, PerMessage: 8}
		got, err := s.Window(t.Context(), k, b, "Be brief.")
		if err != nil {
			t.Fatalf("%+v: %v", b, err)
		}
		if len(got) != tc.want {
			t.Errorf("%+v: got %d turns, want %d", b, len(got), tc.want)
		}
		if n := b.RequestTokens("Be brief.", got); n > tc.tokens || n != 3+len(got)+8*(len(got)+2) {
			t.Errorf("%+v: RequestTokens gives %d, want %d, within %d", b, n, 3+len(got)+8*(len(got)+2), tc.tokens)
		}
	}
	_, err := s.Window(t.Context(), k, Budget{Tokens: 3 + 1 + 8*3 - 1, PerMessage: 8}, "Be brief.")
	var tl *TooLongError
	if !errors.As(err, &tl) || tl.Tokens != 1 || tl.MaxTokens != 0 {
		t.Errorf("got %v, want a *TooLongError for 1 token with room for 0", err)
	}
}

// RequestTokens counts what Window counts, from the stored counts when a turn has them and from
// its text when not; a picture costs ImageTokens, a voice message never heard nothing.
func TestRequestTokens(t *testing.T) {
	b := Budget{PerMessage: 5, ImageTokens: 100}
	turns := []Turn{
		{Role: RoleUser, Content: "hello world"},                              // 2
		{Role: RoleAssistant, Content: "abc", Status: StatusCut},              // 1 + 7
		{Role: RoleUser, Content: "look", Images: []Image{{Data: []byte{1}}}}, // 1 + 100
		{Role: RoleUser, Audio: Audio{FileID: "f"}},                           // not sent
		{Role: RoleUser, Content: "<|endoftext|>"},                            // 8, defused
	}
	if got, want := b.RequestTokens("Be brief.", turns), 3+2+8+101+8+5*6; got != want {
		t.Errorf("got %d, want %d", got, want)
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

// Coverage reports the stored turns the next request carries: Window once the next message is
// stored, without that message. The answer after the newest user turn is part of it (the next
// message comes after it); the report used to leave it out, and said "21 of 22" with no limit
// at all. With and without limits, a short next message gets exactly the window reported.
func TestCoverage(t *testing.T) {
	s := openTest(t)
	if in, total, err := s.Coverage(t.Context(), Key{ChatID: 5}, Budget{}, ""); in != 0 || total != 0 || err != nil {
		t.Errorf("no conversation: got (%d, %d, %v), want (0, 0, nil)", in, total, err)
	}
	fill := func(k Key) {
		for i := range 10 {
			mustAppend(t, s, k, Turn{Role: RoleUser, Content: "question " + strings.Repeat("x", i)})
			mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "answer"})
		}
		mustAppend(t, s, k, Turn{Role: RoleUser, Content: "last"})
		mustAppend(t, s, k, Turn{Role: RoleAssistant, Content: "the last answer"})
		mustAppend(t, s, k, Turn{Role: RoleUser, Audio: Audio{FileID: "f", Name: "voice.ogg"}}) // never heard: not sent
	}
	const prompt = "Be brief."
	for i, tc := range []struct {
		name string
		b    Budget
		want int
	}{
		{"no bound", Budget{}, 22},
		{"characters", Budget{Chars: 9 + 1 + 15 + 4 + 6}, 3},                // "x", the last answer, "last", "answer"
		{"characters, one short", Budget{Chars: 9 + 1 + 15 + 4 + 6 - 1}, 2}, // "answer" no longer fits
		{"tokens", Budget{Tokens: 100, ReserveTokens: 10}, 22},
		{"tokens and the template's overhead", Budget{Tokens: 100, ReserveTokens: 10, PerMessage: 5}, 9},
		{"tokens, overhead and characters", Budget{Chars: 60, Tokens: 1000, ReserveTokens: 900, PerMessage: 8}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := Key{ChatID: int64(100 + i)}
			fill(k)
			mustAppend(t, s, Key{ChatID: 6}, Turn{Role: RoleUser, Content: "another chat"})
			in, total, err := s.Coverage(t.Context(), k, tc.b, prompt)
			if err != nil {
				t.Fatal(err)
			}
			if in != tc.want || total != 22 {
				t.Errorf("got %d of %d, want %d of 22", in, total, tc.want)
			}
			stored := mustTurns(t, s, k)
			mustAppend(t, s, k, Turn{Role: RoleUser, Content: "x"})
			w, err := s.Window(t.Context(), k, tc.b, prompt)
			if err != nil {
				t.Fatal(err)
			}
			var sent []string
			for _, turn := range w {
				if !turn.Untranscribed() {
					sent = append(sent, turn.Content)
				}
			}
			var want []string
			for _, turn := range stored {
				if !turn.Untranscribed() {
					want = append(want, turn.Content)
				}
			}
			if in > len(want) {
				t.Fatalf("reported %d turns of the %d sent", in, len(want))
			}
			want = append(want[len(want)-in:], "x")
			if !slices.Equal(sent, want) {
				t.Errorf("the next request carries %q, want the %d reported and the new message: %q", sent, in, want)
			}
		})
	}
	// A prompt that leaves no room for any message.
	k := Key{ChatID: 99}
	fill(k)
	in, total, err := s.Coverage(t.Context(), k, Budget{Tokens: 3 + 2*5 + 4, PerMessage: 5}, prompt)
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
