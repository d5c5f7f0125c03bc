package render

import (
	"bytes"
	"fmt"
	"html"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode"
)

// seedAnswers are realistic model answers: the test answer, the prefixes a stream shows on
// its way there, and shorter answers heavy on lists, tables and code.
func seedAnswers(f *testing.F) []string {
	answer, err := os.ReadFile("testdata/answer.md")
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(answer),
		"Sure! Here are the steps:\n\n1. Install Go from https://go.dev/dl\n2. Run `go mod init example.com/hello`\n3. Create `main.go`:\n   ```go\n   package main\n\n   func main() { println(\"hi\") }\n   ```\n4. Run it with `go run .`\n\n**Tip:** use `go vet` before committing.",
		"| Method | Time | Memory |\n|---|---:|---:|\n| naive | O(n²) | O(1) |\n| sort + scan | O(n log n) | O(1) |\n| hash set | O(n) | O(n) |\n\nThe *hash set* wins unless memory is tight.",
		"> **Warning**\n> This deletes data.\n\n```sql\nDELETE FROM users WHERE last_login < now() - interval '1 year';\n```\n\n- [x] back up first\n- [ ] run in a transaction\n  - check `ROWCOUNT`\n  - then `COMMIT`",
		"Regex for an e-mail (simplified): `^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$`\n\nIn Python: `re.match(r\"\\d+\\*\", s)` matches digits followed by `*`.\n\n\\* not a list\n\n&copy; 2024 — see <https://example.com/a_(b)> or [the docs](https://example.com/docs?x=1&y=2 \"Docs\").",
		"Привет! 你好 👋🏽 Here's a mixed-script answer with emoji 🇺🇦 and **bold 中文** and `代码`.\n\n---\n\n<details>\n<summary>More</summary>\n\nHidden *text*.\n</details>",
	}
	for n := 100; n < len(answer); n += 400 {
		seeds = append(seeds, string(answer[:n]))
	}
	for _, tt := range markdownTests {
		seeds = append(seeds, tt.in)
	}
	return seeds
}

// FuzzMarkdown checks, for any input, that Markdown does not panic and that its output is
// valid for Telegram (checkMessage), is not empty when the input has visible characters,
// and loses no visible character. "Loses nothing" is checked two ways:
//
//   - Against goldmark's own HTML renderer: every letter and digit it shows as text (tags
//     stripped, references decoded) appears in our text, in the same order. This covers
//     every construct, including what the HTML renderer does not show as text: link
//     destinations and titles, fence info strings, reference definitions, and raw HTML
//     (which it omits in safe mode). Our text may have more: raw HTML, image alt text, list
//     numbers, URLs of links without text.
//   - Against the source, for input without '[', '&', "```" or "~~~": every letter of the
//     source appears in our text, in order. Those characters are what can legitimately make
//     letters vanish (link destinations and definitions, task boxes, character references,
//     fence info strings); everything else must show, including raw HTML, autolinks and the
//     extra cells of a table row that GFM would drop. Digits are left out here because
//     ordered lists are renumbered.
func FuzzMarkdown(f *testing.F) {
	for _, s := range seedAnswers(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if err := checkMarkdown(src); err != nil {
			t.Fatal(err)
		}
	})
}

// oracle is goldmark as Markdown sets it up, with goldmark's own HTML renderer.
var oracle = newGoldmark()

// checkMarkdown checks the properties FuzzMarkdown describes for one input.
func checkMarkdown(src string) error {
	m := Markdown(src)
	if err := checkMessage(m); err != nil {
		return fmt.Errorf("Markdown(%q) = %q: %w", src, m.Text, err)
	}
	clean := sanitize(src)
	if !blank(clean) && blank(m.Text) {
		return fmt.Errorf("Markdown(%q) = %q, want visible text", src, m.Text)
	}
	got := letters(m.Text, true)

	var buf bytes.Buffer
	if err := oracle.Convert([]byte(clean), &buf); err != nil {
		return fmt.Errorf("goldmark: %w", err)
	}
	want := letters(html.UnescapeString(stripTags(buf.String())), true)
	if ok, n := isSubsequence(want, got); !ok {
		return fmt.Errorf("Markdown(%q) = %q\nlost %q of goldmark's HTML text %q", src, m.Text, string(want[n:]), string(want))
	}

	if !strings.ContainsAny(clean, "[&") && !strings.Contains(clean, "```") && !strings.Contains(clean, "~~~") {
		want := letters(clean, false)
		if ok, n := isSubsequence(want, letters(m.Text, false)); !ok {
			return fmt.Errorf("Markdown(%q) = %q\nlost %q of the source's letters", src, m.Text, string(want[n:]))
		}
	}
	return nil
}

// TestMarkdownRandom runs checkMarkdown and checkSplit on inputs put together from
// Markdown's syntax at random, which reaches odd combinations faster than byte-level
// fuzzing does. The seed is fixed, so failures reproduce.
func TestMarkdownRandom(t *testing.T) {
	tokens := []string{
		"**", "*", "_", "__", "~~", "`", "```", "```go", "~~~", "\\", "\\*", "[", "]", "](", ")", "(", "![", "<", ">",
		"</b>", "<b>", "<!--", "-->", "&amp;", "&#x1F600;", "&", ";", "|", "|---|", ":-:", "\n", "\n\n", "  \n", "\\\n",
		"- ", "* ", "1. ", "2) ", "> ", "# ", "## ", "---", "===", "    ", "\t", " ", "[x] ", "[ ] ",
		"http://", "https://go.dev/x_(y)", "www.a.io", "a@b.io", "mailto:", "word", "Ab9", "😀", "👍🏽", "中文", "🇺🇦", "e\u0301",
		"\u200d", "\x00", "\xff", "\r\n", "\n| a | b |\n|---|--:|\n", "| x | y | z |\n", "| `p || q` |",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(tokens[rng.IntN(len(tokens))])
		}
		src := b.String()
		if err := checkMarkdown(src); err != nil {
			t.Fatal(err)
		}
		if err := checkSplit(Markdown(src), rng.IntN(40)); err != nil {
			t.Fatalf("Split(Markdown(%q)): %v", src, err)
		}
	}
}

// FuzzSplit checks Split on rendered Markdown and on plain text at small limits (0 to 599,
// so that inputs of fuzzing size need several parts): see checkSplit.
func FuzzSplit(f *testing.F) {
	for i, s := range seedAnswers(f) {
		f.Add(s, uint16(i*37))
	}
	f.Fuzz(func(t *testing.T, src string, limit uint16) {
		l := int(limit % 600)
		if err := checkSplit(Markdown(src), l); err != nil {
			t.Fatalf("Split(Markdown(%q), %d): %v", src, l, err)
		}
		if err := checkSplit(Message{Text: sanitize(src)}, l); err != nil {
			t.Fatalf("Split(%q, %d): %v", src, l, err)
		}
	})
}

// letters returns the letters (and digits, if asked) of s.
func letters(s string, digits bool) []rune {
	var out []rune
	for _, r := range s {
		if unicode.IsLetter(r) || digits && unicode.IsDigit(r) {
			out = append(out, r)
		}
	}
	return out
}

// stripTags removes HTML tags from goldmark's safe-mode output. Text there never holds a
// raw '<', and attribute values never a raw '>', so this is exact.
func stripTags(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return b.String()
		}
		s = s[i+j+1:]
	}
}
