package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/tiktoken-go/tokenizer/codec"
)

var updateCl100k = flag.Bool("update-cl100k", false, "write cl100k.bin from tiktoken-go's cl100k_base")

// tiktoken is the reference the embedded table and the counter are checked against.
var tiktoken = codec.NewCl100kBase

// cl100k.bin holds exactly tiktoken-go's cl100k_base tokens, each with its rank
// (go test ./history -run TestCl100kTable -update-cl100k writes it).
func TestCl100kTable(t *testing.T) {
	ref := tiktoken()
	type token struct {
		b    []byte
		rank uint32
	}
	var tokens []token
	for r := uint(0); ; r++ {
		s, err := ref.Decode([]uint{r})
		if err != nil {
			break
		}
		tokens = append(tokens, token{[]byte(s), uint32(r)})
	}
	if len(tokens) != 100256 {
		t.Fatalf("tiktoken-go has %d tokens, want 100256", len(tokens))
	}
	if *updateCl100k {
		slices.SortFunc(tokens, func(a, b token) int { return bytes.Compare(a.b, b.b) })
		var out bytes.Buffer
		out.WriteString(cl100kMagic)
		_ = binary.Write(&out, binary.LittleEndian, uint32(len(tokens)))
		off := uint32(0)
		for _, tk := range tokens {
			_ = binary.Write(&out, binary.LittleEndian, off)
			off += uint32(len(tk.b))
		}
		_ = binary.Write(&out, binary.LittleEndian, off)
		for _, tk := range tokens {
			_ = binary.Write(&out, binary.LittleEndian, tk.rank)
		}
		for _, tk := range tokens {
			out.Write(tk.b)
		}
		if err := os.WriteFile("cl100k.bin", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("wrote cl100k.bin: run the tests again")
	}
	if cl100k.n != len(tokens) {
		t.Fatalf("cl100k.bin has %d tokens, want %d", cl100k.n, len(tokens))
	}
	for _, tk := range tokens {
		if r, ok := cl100k.rank(tk.b); !ok || r != int(tk.rank) {
			t.Fatalf("token %q: got rank %d (%v), want %d", tk.b, r, ok, tk.rank)
		}
	}
	for i := 1; i < cl100k.n; i++ {
		if bytes.Compare(cl100k.token(i-1), cl100k.token(i)) >= 0 {
			t.Fatalf("tokens %d and %d are out of order", i-1, i)
		}
	}
}

// The counter agrees with the real tiktoken, the Rust core that chatbot-ui servers count with
// (@dqbd/tiktoken 1.0, special tokens counted as text), on the strings of
// testdata/cl100k_counts.json: text in many scripts, code, runs of space and line breaks,
// contractions, long pieces, and 3,000 random strings of the characters the pattern tells apart.
// (tiktoken-go, whose table cl100k.bin is, cuts some of them otherwise: "\n \n" is one token,
// not two, and U+007F is a token, not nothing.) The corpus was written by
//
//	enc.encode(s, [], []).length
//
// with enc = get_encoding("cl100k_base") from @dqbd/tiktoken.
func TestCountMatchesTiktoken(t *testing.T) {
	b, err := os.ReadFile("testdata/cl100k_counts.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		S string `json:"s"`
		N int    `json:"n"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 3000 {
		t.Fatalf("got %d cases", len(cases))
	}
	for _, c := range cases {
		if got := CountTokens(c.S); got != c.N {
			t.Errorf("count of %q: got %d, want %d", truncate(c.S, 80), got, c.N)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Any text: a count is at least one token and at most one per byte, the pieces cover the text,
// and the heap merge of long pieces agrees with the plain one.
func FuzzCl100k(f *testing.F) {
	for _, s := range []string{"", "tiktoken is great!", "'s'S  \n\n x", "龘龘龘龘", "  \n \n ", "a1234b", " !!!\n\n", "\u00a0a", "\xff\xfe", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := CountTokens(s)
		if n > len(s) || s != "" && n < 1 {
			t.Errorf("CountTokens(%q): got %d for %d bytes", s, n, len(s))
		}
		for rest := s; rest != ""; {
			end := nextPiece(rest)
			if end <= 0 || end > len(rest) {
				t.Fatalf("nextPiece(%q): got %d", rest, end)
			}
			p := []byte(rest[:end])
			if _, token := cl100k.rank(p); len(p) > 1 && !token {
				if a, b := countPiece(p), countLongPiece(p); len(p) <= longPiece && a != b {
					t.Errorf("piece %q: merged to %d parts, %d with the heap", p, a, b)
				}
			}
			rest = rest[end:]
		}
	})
}
