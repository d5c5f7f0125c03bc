package aura

import (
	"strings"
	"testing"

	"aurabot/history"
)

func TestDefuseSpecialTokens(t *testing.T) {
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
		if got := DefuseSpecialTokens(tt.in); got != tt.want {
			t.Errorf("DefuseSpecialTokens(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// cl100kSpecial are the special tokens of cl100k_base, which a chatbot-ui server's tiktoken
// refuses to find in text.
var cl100kSpecial = []string{"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"}

func FuzzDefuseSpecialTokens(f *testing.F) {
	f.Add("<|endoftext|>")
	f.Add("x<|<|fim_prefix|>|>")
	f.Add("<|im_start|><|im_end|>")
	f.Fuzz(func(t *testing.T, s string) {
		got := DefuseSpecialTokens(s)
		// The bot counts what it sends with history's copy of the rule: they must agree.
		if h := history.Defuse(s); h != got {
			t.Fatalf("history.Defuse(%q) = %q, DefuseSpecialTokens %q", s, h, got)
		}
		for _, tok := range cl100kSpecial {
			if strings.Contains(got, tok) {
				t.Fatalf("DefuseSpecialTokens(%q) = %q still holds %s", s, got, tok)
			}
		}
		if specialStart(got) >= 0 {
			t.Fatalf("DefuseSpecialTokens(%q) = %q still holds a token's shape", s, got)
		}
		if again := DefuseSpecialTokens(got); again != got {
			t.Fatalf("a second pass changed %q to %q", got, again)
		}
		// Only zero-width spaces were added, each after a "<|".
		if strings.ReplaceAll(got, "<|"+defuser, "<|") != strings.ReplaceAll(s, "<|"+defuser, "<|") {
			t.Fatalf("DefuseSpecialTokens(%q) = %q changed more than the tokens", s, got)
		}
	})
}

// The chatbot-ui request never carries a special token, in the prompt or in a message.
func TestChatbotUIDefusesSpecialTokens(t *testing.T) {
	srv, seen := captureServer(t, "ok")
	c := newTestClient(t, Config{BaseURL: srv.URL})
	msgs := []Message{{Role: RoleSystem, Content: "End with <|endoftext|>."}, {Role: RoleUser, Content: "what is <|fim_prefix|>?"}}
	if r := collect(t, c.Stream(t.Context(), msgs)); r.err != nil {
		t.Fatalf("got error %v, want none", r.err)
	}
	var body struct {
		Prompt   string
		Messages []Message
	}
	mustUnmarshal(t, (<-seen).body, &body)
	if body.Prompt != "End with <|\u200bendoftext|>." || len(body.Messages) != 1 || body.Messages[0].Content != "what is <|\u200bfim_prefix|>?" {
		t.Errorf("got prompt %q and messages %+v, want both defused", body.Prompt, body.Messages)
	}
}
