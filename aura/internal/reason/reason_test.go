package reason

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "openai bad key with a link",
			in:   "Incorrect API key provided: sk-proj-abc1*****************************xyz9. You can find your API key at https://platform.openai.com/account/api-keys.",
			want: "Incorrect API key provided",
		},
		{name: "plain reason", in: `model "llama9" not found, try pulling it first`, want: `model "llama9" not found, try pulling it first`},
		{name: "trailing dots", in: "Something failed..", want: "Something failed"},
		{name: "trailing colon and space", in: "upstream said:  ", want: "upstream said"},
		{name: "keeps a closing quote", in: `unknown model "x"`, want: `unknown model "x"`},
		{name: "keeps a percent sign", in: "quota 100%", want: "quota 100%"},
		{name: "first line only", in: "\n\n  upstream error\nTraceback (most recent call last):\n  File \"/srv/app.py\"", want: "upstream error"},
		{name: "crlf", in: "bad gateway\r\nsecret details", want: "bad gateway"},
		{name: "bearer token", in: "invalid header Authorization: Bearer abcdef123 was rejected", want: "invalid header Authorization"},
		{name: "bearer as a word", in: "Bearer token missing", want: "Bearer token missing"},
		{name: "hex run", in: "request 0123456789abcdef0123456789abcdef failed", want: "request"},
		{name: "mixed run of 16", in: "session ab12cd34ef56gh78 expired", want: "session"},
		{name: "base64 key without prefix", in: "the key AbCdEfGhIjKlMnOpQrStUvWxYz012345 is revoked", want: "the key"},
		{name: "jwt", in: "invalid jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", want: "invalid jwt"},
		{name: "token and a value", in: "bad token AbC123xyz", want: "bad"},
		{name: "letters-only run of 20", in: "the key abcdefghijklmnopqrstuvwxyzABCD is revoked", want: "the key"},
		{name: "masked key", in: "key ab12********wxyz revoked", want: "key"},
		{name: "redacted", in: "Incorrect API key provided: [redacted].", want: "Incorrect API key provided"},
		{name: "credential assignment", in: "bad request password=hunter2abc", want: "bad request"},
		{name: "number assignment is fine", in: "max_tokens=4096 is too large", want: "max_tokens=4096 is too large"},
		{name: "hyphenated model name is fine", in: "The model `gpt-4o-mini-2024-07-18` does not exist or you do not have access to it.", want: "The model `gpt-4o-mini-2024-07-18` does not exist or you do not have access to it"},
		{name: "only a link", in: "https://evil.example/phish", want: ""},
		{name: "upper-case scheme", in: "HTTPS://evil.example/phish", want: ""},
		{name: "link sentence after a reason", in: "Rate limited. See platform.openai.com/docs/guides/rate-limits for details.", want: "Rate limited"},
		{name: "www link", in: "Overloaded! Try www.example.com later", want: "Overloaded"},
		{name: "two sentences kept", in: "Bad request. Retry later.", want: "Bad request. Retry later"},
		{name: "text after a secret is dropped", in: "Invalid key sk-abcdef. Your organization org is billed at https://x.y. Contact support.", want: "Invalid key"},
		{name: "control and invisible characters", in: "bad\u202erequest\x00 \u200bhere\t\tnow", want: "badrequest here now"},
		{name: "zero-width inside a key", in: "key s\u200bk-abc123 bad", want: "key"},
		{name: "invalid utf-8", in: "bad \xff\xfe request", want: "bad request"},
		{name: "empty", in: "", want: ""},
		{name: "only punctuation", in: "...!?", want: ""},
		{name: "one word", in: "Error", want: "Error"},
		{name: "HTTP in a status text", in: "HTTP Version Not Supported", want: "HTTP Version Not Supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizeLong(t *testing.T) {
	in := strings.Repeat("overloaded ", 60)
	got := Sanitize(in)
	if n := utf8.RuneCountInString(got); n > MaxRunes || n < MaxRunes-len("overloaded ") {
		t.Errorf("got %d runes, want at most %d and cut at the last word", n, MaxRunes)
	}
	if strings.HasSuffix(got, " ") || !strings.HasSuffix(got, "overloaded") {
		t.Errorf("got %q, want whole words", got[len(got)-20:])
	}
	// No space to cut at: a hard cut.
	got = Sanitize(strings.Repeat("é-", 300))
	if n := utf8.RuneCountInString(got); n > MaxRunes {
		t.Errorf("got %d runes, want at most %d", n, MaxRunes)
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"Incorrect API key provided: sk-proj-abc1****xyz9. You can find your API key at https://platform.openai.com/account/api-keys.",
		"Bearer abc\nline two",
		"a b c d e f g h i j k l m n o p q r s t u v w x y z 0123456789abcdefghij",
		"x http://y z",
		"hhttp ttp",
		strings.Repeat("ab ", 100),
		"\u202ebad\u200b\x00",
		"key=\xff",
		"id abcdefghijklmnopqrstuvwxyz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if strings.ContainsAny(got, "\r\n") {
			t.Fatalf("Sanitize(%q) = %q: want one line", s, got)
		}
		if n := utf8.RuneCountInString(got); n > MaxRunes {
			t.Fatalf("Sanitize(%q): got %d runes, want at most %d", s, n, MaxRunes)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Sanitize(%q) = %q: want valid UTF-8", s, got)
		}
		lower := strings.ToLower(got)
		if strings.Contains(got, "http") || strings.Contains(lower, "://") || strings.Contains(lower, "http:") || strings.Contains(lower, "https:") {
			t.Fatalf("Sanitize(%q) = %q: want no link", s, got)
		}
		run := 0
		for _, r := range got {
			if isKeyChar(r) {
				run++
			} else {
				run = 0
			}
			if run >= keyRun {
				t.Fatalf("Sanitize(%q) = %q: want no run of %d key characters", s, got, keyRun)
			}
		}
		if got == "" {
			return
		}
		first, _ := utf8.DecodeRuneInString(got)
		last, _ := utf8.DecodeLastRuneInString(got)
		if unicode.IsSpace(first) || unicode.IsSpace(last) {
			t.Fatalf("Sanitize(%q) = %q: want no space at either end", s, got)
		}
		if strings.ContainsRune(".,;:!?…", last) {
			t.Fatalf("Sanitize(%q) = %q: want no trailing punctuation", s, got)
		}
	})
}
