package history_test

import (
	"strings"
	"testing"

	"aurabot/history"
)

// Moved from aura (issue 22): aura sends message contents as given, and Defuse is the one guard.

func TestDefuse(t *testing.T) {
	const z = "\u200b"
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"<|endoftext|>", "<|" + z + "endoftext|>"},
		{"a<|fim_prefix|>b<|fim_middle|>c<|fim_suffix|>", "a<|" + z + "fim_prefix|>b<|" + z + "fim_middle|>c<|" + z + "fim_suffix|>"},
		{"<|endofprompt|>", "<|" + z + "endofprompt|>"},
		{"<|im_start|>user\nhi<|im_end|>", "<|" + z + "im_start|>user\nhi<|" + z + "im_end|>"},
		{"<|start_header_id|>", "<|" + z + "start_header_id|>"},
		{"<|<|eot_id|>", "<|<|" + z + "eot_id|>"},
		{"f <| x |> y", "f <| x |> y"}, // F#'s pipes: not a token's shape
		{"<||>", "<||>"},
		{"<|" + strings.Repeat("a", 64) + "|>", "<|" + z + strings.Repeat("a", 64) + "|>"},
		{"<|" + strings.Repeat("a", 65) + "|>", "<|" + strings.Repeat("a", 65) + "|>"},
		{"<|" + z + "endoftext|>", "<|" + z + "endoftext|>"}, // already defused
	} {
		if got := history.Defuse(tt.in); got != tt.want {
			t.Errorf("Defuse(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDefuse(f *testing.F) {
	f.Add("<|endoftext|>")
	f.Add("x<|<|fim_prefix|>|>")
	f.Add("<|im_start|><|im_end|>")
	cl100kSpecial := []string{"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"}
	f.Fuzz(func(t *testing.T, s string) {
		got := history.Defuse(s)
		for _, tok := range cl100kSpecial {
			if strings.Contains(got, tok) {
				t.Fatalf("Defuse(%q) = %q still holds %s", s, got, tok)
			}
		}
		// A second pass changes nothing: no token's shape is left.
		if again := history.Defuse(got); again != got {
			t.Fatalf("a second pass changed %q to %q", got, again)
		}
		// Only zero-width spaces were added, each after a "<|".
		if strings.ReplaceAll(got, "<|\u200b", "<|") != strings.ReplaceAll(s, "<|\u200b", "<|") {
			t.Fatalf("Defuse(%q) = %q changed more than the tokens", s, got)
		}
	})
}
