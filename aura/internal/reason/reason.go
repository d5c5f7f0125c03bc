// Package reason turns the error a server sends into a short reason that is safe to show a user:
// it finds the message in a JSON error body (ErrorBody), and makes it one line, without links or
// secrets (Sanitize). It is shared by the aura client and its sub-packages; it knows nothing of
// HTTP.
package reason

import (
	"encoding/json"
	"iter"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRunes is the most runes Sanitize returns.
const MaxRunes = 200

// A run of keyRun key characters (see isKeyChar), or of mixedRun mixing letters and digits, is
// taken for a secret: long base64, hex or base64url runs are API keys, tokens and session ids
// far more often than words.
const (
	keyRun   = 20
	mixedRun = 16
)

// secretPrefixes start well-known kinds of keys and tokens, matched without regard to case.
var secretPrefixes = []string{
	"sk-", "sk_", "pk-", "pk_", "rk_", "ghp_", "gho_", "ghs_", "github_pat_",
	"xoxb-", "xoxp-", "hf_", "aiza", "eyj", "glpat-", "akia",
}

// Sanitize returns a short reason taken from a server's error text s, or "" if nothing useful
// remains:
//
//   - only the first non-blank line, with control and invisible characters removed and runs of
//     spaces folded into one;
//   - a sentence with a link (http://..., www.example.com, host/path) is dropped, unless it is
//     the first, which is cut before the link;
//   - text is cut before the first secret-like word (sk-..., "Bearer x", key=..., a masked
//     "ab12****yz", a run of 20 or more key characters or of 16 or more mixing letters and
//     digits, "[redacted]"), and whatever follows it is dropped;
//   - at most MaxRunes runes, cut at a word boundary where there is one;
//   - no trailing punctuation or space, so that a caller can append ".".
func Sanitize(s string) string {
	s = firstLine(s)
	var kept []string
	for sentence := range sentences(s) {
		words := strings.Fields(sentence)
		cut, stop := len(words), false
		for i, w := range words {
			if isLink(w) {
				cut = i
				if len(kept) > 0 {
					cut = 0 // a later sentence about a link is only a pointer
				}
				break
			}
			if isSecret(w, words[i+1:]) {
				cut, stop = i, true
				break
			}
		}
		if part := trimEnd(strings.Join(words[:cut], " ")); part != "" {
			kept = append(kept, part+sentenceEnd(words, cut))
		}
		if stop {
			break
		}
	}
	out := trimEnd(truncate(strings.Join(kept, " "), MaxRunes))
	if !strings.ContainsFunc(out, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		return ""
	}
	return out
}

// sentenceEnd returns the punctuation that ended the last word of a sentence kept whole, so
// that sentences joined again read as they did.
func sentenceEnd(words []string, cut int) string {
	if cut != len(words) || cut == 0 {
		return ""
	}
	if r, _ := utf8.DecodeLastRuneInString(words[cut-1]); strings.ContainsRune(".!?", r) {
		return string(r)
	}
	return ""
}

// firstLine returns the first line of s that has something other than spaces, with invisible
// characters removed and spaces folded.
func firstLine(s string) string {
	s = strings.ToValidUTF8(s, "")
	for line := range strings.FieldsFuncSeq(s, func(r rune) bool {
		return r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0x2028 || r == 0x2029
	}) {
		line = strings.Map(func(r rune) rune {
			switch {
			case unicode.IsSpace(r):
				return ' '
			case !unicode.IsPrint(r):
				// Dropped, not turned into a space, so that a secret with a zero-width
				// character inside stays one word.
				return -1
			}
			return r
		}, line)
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			return line
		}
	}
	return ""
}

// sentences yields s cut after each '.', '!' or '?' that a space follows.
func sentences(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			end := len(s)
			for i := 0; i+1 < len(s); i++ {
				if strings.IndexByte(".!?", s[i]) >= 0 && s[i+1] == ' ' {
					end = i + 1
					break
				}
			}
			if !yield(s[:end]) {
				return
			}
			s = strings.TrimLeft(s[end:], " ")
		}
	}
}

// isLink reports whether the word w is or holds a URL or a host with a path.
func isLink(w string) bool {
	lower := strings.ToLower(w)
	if strings.Contains(lower, "://") || strings.Contains(w, "http") ||
		strings.Contains(lower, "http:") || strings.Contains(lower, "https:") ||
		strings.Contains(lower, "www.") {
		return true
	}
	// example.com/path: a dotted host name before the first slash.
	host, _, ok := strings.Cut(strings.TrimLeft(lower, "(<[\"'`"), "/")
	if !ok || !strings.Contains(host, ".") {
		return false
	}
	labels := strings.Split(host, ".")
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || strings.ContainsFunc(l, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) {
			return false
		}
	}
	return strings.ContainsFunc(tld, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

// isSecret reports whether the word w looks like a key, a token or a credential; rest is the
// words after it.
func isSecret(w string, rest []string) bool {
	core := strings.TrimFunc(w, func(r rune) bool { return !isKeyChar(r) && r != '-' && r != '*' && r != '.' && r != '[' && r != ']' })
	lower := strings.ToLower(core)
	if slices.ContainsFunc(secretPrefixes, func(p string) bool { return strings.HasPrefix(lower, p) && len(lower) > len(p) }) {
		return true
	}
	switch strings.Trim(lower, ":") {
	case "bearer", "basic", "token":
		// "Bearer abc..." or "token abc...": the word after is the secret ("max tokens" is fine).
		return len(rest) > 0 && strings.ContainsFunc(rest[0], isKeyChar) && !isPlainWord(rest[0])
	}
	if strings.Contains(lower, "[redacted]") {
		return true
	}
	if strings.Contains(core, "**") && strings.ContainsFunc(core, func(r rune) bool { return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) }) {
		return true // a masked secret, "sk-ab12****wxyz"
	}
	for _, sep := range []string{"=", ":"} {
		if name, value, ok := strings.Cut(lower, sep); ok && isCredentialName(name) && isCredentialValue(value) {
			return true
		}
	}
	run, letters, digits := 0, false, false
	for _, r := range w {
		if !isKeyChar(r) {
			run, letters, digits = 0, false, false
			continue
		}
		run++
		letters = letters || unicode.IsLetter(r)
		digits = digits || unicode.IsDigit(r)
		if run >= keyRun || (run >= mixedRun && letters && digits) {
			return true
		}
	}
	return false
}

// isCredentialName reports whether name, the left side of "name=value", names a credential.
func isCredentialName(name string) bool {
	return slices.ContainsFunc([]string{"key", "token", "secret", "password", "passwd", "auth", "cookie", "session"},
		func(n string) bool { return strings.Contains(name, n) })
}

// isCredentialValue reports whether v, the right side of "name=value", could be a credential
// rather than a number ("max_tokens=4096").
func isCredentialValue(v string) bool {
	v = strings.TrimRightFunc(v, unicode.IsPunct)
	return len(v) >= 6 && strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsDigit(r) })
}

// isPlainWord reports whether w is lower-case letters only (and trailing punctuation), as words
// are and keys are not.
func isPlainWord(w string) bool {
	w = strings.TrimRightFunc(w, unicode.IsPunct)
	return w != "" && !strings.ContainsFunc(w, func(r rune) bool { return !unicode.IsLower(r) })
}

// isKeyChar reports whether r can be part of a key: ASCII letters and digits and the extra
// characters of base64 and base64url, except '-', so that hyphenated names
// ("gpt-4o-mini-2024-07-18") are not taken for keys.
func isKeyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=' || r == '_'
}

// truncate cuts s to at most n runes, at the last space if there is one in the second half.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
		if sp := strings.LastIndexByte(s, ' '); sp > len(s)/2 {
			s = s[:sp]
		}
	}
	return s
}

// trimEnd removes trailing spaces and punctuation, except closing brackets and quotes, which end
// a phrase without ending a sentence.
func trimEnd(s string) string {
	return strings.TrimRightFunc(s, func(r rune) bool {
		if unicode.IsSpace(r) {
			return true
		}
		if r == '"' || r == '\'' || r == '`' || unicode.In(r, unicode.Pe, unicode.Pf) {
			return false
		}
		return r != '%' && (unicode.IsPunct(r) || unicode.IsSymbol(r))
	})
}

// Clip returns at most n bytes of s, cut so that no character is split.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// ErrorBody finds the error in a JSON error body: {"error": {"message": ..., "code": ...}}
// (OpenAI, vLLM, llama.cpp, Ollama's /v1), {"error": "..."} (Ollama's own routes) or a bare
// {"object": "error", "message": ...}.
func ErrorBody(b []byte) (msg string, code int, ok bool) {
	var body struct {
		Error  json.RawMessage `json:"error"`
		Object json.RawMessage `json:"object"`
	}
	if json.Unmarshal(b, &body) != nil {
		return "", 0, false
	}
	var s string
	if len(body.Error) > 0 && body.Error[0] == '"' && json.Unmarshal(body.Error, &s) == nil {
		return s, 0, true
	}
	if msg, code, ok := ErrorObject(body.Error); ok {
		return msg, code, true
	}
	if string(body.Object) == `"error"` {
		return ErrorObject(b)
	}
	return "", 0, false
}

// ErrorObject reads {"message": "...", "code": 400, ...}; ok is false without a string
// message. A code that is not a number (OpenAI's "invalid_api_key") gives 0.
func ErrorObject(b []byte) (msg string, code int, ok bool) {
	var obj struct {
		Message *string         `json:"message"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(b, &obj) != nil || obj.Message == nil {
		return "", 0, false
	}
	_ = json.Unmarshal(obj.Code, &code)
	return *obj.Message, code, true
}
