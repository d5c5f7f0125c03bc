package aura

import "strings"

// defuser is put between "<|" and the name of a special token, so that no
// tokenizer reads the text as the token. U+200B (zero width space) is
// invisible and one cl100k_base token, the cheapest character that breaks
// the match.
const defuser = "\u200b"

// DefuseSpecialTokens returns s with a zero-width space after the "<|" of
// everything shaped like a special token: "<|" then 1 to 64 letters,
// digits, "_", "." or "-", then "|>". That covers cl100k_base's own
// ("<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>"...) and the chat
// template tokens of ChatML ("<|im_start|>"), Llama 3 ("<|eot_id|>") and
// Phi ("<|user|>"). A chatbot-ui server counts tokens with tiktoken, which
// throws on a special token in ordinary text: the server answers 500, and
// every later request that carries the turn fails too. Other servers may
// read such text as a real template token. The result shows the same, and
// is left unchanged by a second pass.
//
// history.Defuse is the same function, where the bot counts what it sends;
// a test holds them equal.
func DefuseSpecialTokens(s string) string {
	i := specialStart(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i >= 0 {
		b.WriteString(s[:i+2])
		b.WriteString(defuser)
		s = s[i+2:]
		i = specialStart(s)
	}
	b.WriteString(s)
	return b.String()
}

// specialStart returns the index of the first "<|" in s that starts a
// special token's shape, or -1.
func specialStart(s string) int {
	off := 0
	for {
		i := strings.Index(s[off:], "<|")
		if i < 0 {
			return -1
		}
		i += off
		if n := specialName(s[i+2:]); n > 0 && strings.HasPrefix(s[i+2+n:], "|>") {
			return i
		}
		off = i + 1
	}
}

// specialName returns the length of the name at the start of s: up to 64
// letters, digits, "_", "." or "-"; 0 if there is none or it is longer.
func specialName(s string) int {
	n := 0
	for n < len(s) && n <= 64 {
		c := s[n]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			break
		}
		n++
	}
	if n > 64 {
		return 0
	}
	return n
}
