package render

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-telegram/bot/models"
)

func ent(t models.MessageEntityType, off, n int) models.MessageEntity {
	return models.MessageEntity{Type: t, Offset: off, Length: n}
}

func pre(off, n int, lang string) models.MessageEntity {
	return models.MessageEntity{Type: models.MessageEntityTypePre, Offset: off, Length: n, Language: lang}
}

func link(off, n int, url string) models.MessageEntity {
	return models.MessageEntity{Type: models.MessageEntityTypeTextLink, Offset: off, Length: n, URL: url}
}

const (
	bold   = models.MessageEntityTypeBold
	italic = models.MessageEntityTypeItalic
	strike = models.MessageEntityTypeStrikethrough
	code   = models.MessageEntityTypeCode
	quote  = models.MessageEntityTypeBlockquote
	urlE   = models.MessageEntityTypeURL
	email  = models.MessageEntityTypeEmail
)

type ents = []models.MessageEntity

var markdownTests = []struct {
	name string
	in   string
	text string
	ents ents
}{
	// Inline formatting.
	{"plain", "Hello, world!", "Hello, world!", nil},
	{"bold", "**bold** text", "bold text", ents{ent(bold, 0, 4)}},
	{"italic both markers", "_one_ and *two*", "one and two", ents{ent(italic, 0, 3), ent(italic, 8, 3)}},
	{"strikethrough", "~~gone~~ here", "gone here", ents{ent(strike, 0, 4)}},
	{"bold italic", "***both***", "both", ents{ent(bold, 0, 4), ent(italic, 0, 4)}},
	{"nested emphasis", "**bold _it ~~st~~_ more**", "bold it st more",
		ents{ent(bold, 0, 15), ent(italic, 5, 5), ent(strike, 8, 2)}},
	{"bold inside bold is one entity", "**a __b__ c**", "a b c", ents{ent(bold, 0, 5)}},
	{"half-typed bold mid-stream", "some **bol", "some **bol", nil},
	{"half-typed link mid-stream", "see [docs](https://go.d", "see [docs](https://go.d", ents{ent(urlE, 11, 12)}},
	{"inline code", "use `fmt.Println` here", "use fmt.Println here", ents{ent(code, 4, 11)}},
	{"inline code keeps backslashes and stars", "`a\\*b*_c_ &amp;`", "a\\*b*_c_ &amp;", ents{ent(code, 0, 14)}},
	{"inline code with backticks", "`` a ` b ``", "a ` b", ents{ent(code, 0, 5)}},
	{"bold around code", "**`x` y**", "x y", ents{ent(bold, 0, 3), ent(code, 0, 1)}},

	// Escapes and references.
	{"escapes", "\\*not italic\\* \\_ \\\\ \\a", "*not italic* _ \\ \\a", nil},
	{"character references", "&amp; &lt;b&gt; &copy; &#35; &#x1F600; &bogus; &#0;", "& <b> © # 😀 &bogus; \uFFFD", nil},
	{"escaped reference stays", "\\&amp;", "&amp;", nil},

	// Line structure.
	{"soft and hard breaks", "a\nb  \nc\\\nd", "a\nb\nc\nd", nil},
	{"paragraphs", "one\n\n\n\ntwo\nthree", "one\n\ntwo\nthree", nil},
	{"trailing whitespace trimmed", "text  \n\n\n", "text", nil},
	{"empty", "", "", nil},
	{"blank", "  \n\t\n", "", nil},
	{"only a reference definition falls back to source", "[a]: https://x.io\n", "[a]: https://x.io", nil},
	{"headings", "# Title\n## Sub *x*\ntext", "Title\n\nSub x\n\ntext",
		ents{ent(bold, 0, 5), ent(bold, 7, 5), ent(italic, 11, 1)}},
	{"setext heading", "Title\n=====\nbody", "Title\n\nbody", ents{ent(bold, 0, 5)}},
	{"thematic break", "a\n\n---\n\nb", "a\n\n———\n\nb", nil},

	// Code blocks.
	{"fenced code with language", "Run:\n\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n\nDone.",
		"Run:\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n\nDone.", ents{pre(6, 34, "go")}},
	{"fenced code byte for byte", "```\n  a\\\\b *c* _d_ &amp; [x](y)\n\n\tx  \n```\nafter",
		"  a\\\\b *c* _d_ &amp; [x](y)\n\n\tx  \n\nafter", ents{pre(0, 33, "")}},
	{"fenced code keeps all but the last newline", "```\nx\n\n\n```\nafter", "x\n\n\n\nafter", ents{pre(0, 3, "")}},
	{"message ends without trailing newlines", "```\nx\n\n\n```", "x", ents{pre(0, 1, "")}},
	{"fence info string", "~~~ python {.numberLines}\nx = 1\n~~~", "x = 1", ents{pre(0, 5, "python")}},
	{"unclosed fence runs to the end", "Here:\n\n```python\nprint('hi')\nfor i in", "Here:\n\nprint('hi')\nfor i in",
		ents{pre(7, 20, "python")}},
	{"empty fence", "```\n```\ntext", "text", nil},
	{"indented code", "para\n\n    code  line\n    \\*x\n", "para\n\ncode  line\n\\*x", ents{pre(6, 14, "")}},

	// Links.
	{"link", "[Go](https://go.dev)", "Go", ents{link(0, 2, "https://go.dev")}},
	{"link with special characters", "[q](https://ex.com/a_b*c?x=1&y=(2)#f)", "q", ents{link(0, 1, "https://ex.com/a_b*c?x=1&y=(2)#f")}},
	{"link with space and escapes", "[s](<https://ex.com/a b?c=\\_&amp;d>)", "s", ents{link(0, 1, "https://ex.com/a%20b?c=_&d")}},
	{"link with formatting", "[**Go** `x`](https://go.dev)", "Go x", ents{link(0, 4, "https://go.dev"), ent(bold, 0, 2)}},
	{"link inside bold", "**see [Go](https://go.dev)**", "see Go", ents{ent(bold, 0, 6), link(4, 2, "https://go.dev")}},
	{"relative link is text", "[file](./main.go)", "file", nil},
	{"javascript link is text", "[x](javascript:alert(1))", "x", nil},
	{"link without text shows its URL", "[](https://go.dev)", "https://go.dev", ents{link(0, 14, "https://go.dev")}},
	{"autolink", "<https://go.dev>", "https://go.dev", ents{ent(urlE, 0, 14)}},
	{"bare URL", "see https://go.dev/doc. Or www.go.dev", "see https://go.dev/doc. Or www.go.dev",
		ents{ent(urlE, 4, 18), ent(urlE, 27, 10)}},
	{"email", "<me@example.com> or you@example.com", "me@example.com or you@example.com",
		ents{ent(email, 0, 14), ent(email, 18, 15)}},
	{"image", "![a diagram](https://x.io/d.png)", "a diagram", ents{link(0, 9, "https://x.io/d.png")}},
	{"image without alt", "![](https://x.io/d.png)", "https://x.io/d.png", ents{link(0, 18, "https://x.io/d.png")}},
	{"image inside link", "[![badge](https://x.io/b.svg)](https://x.io)", "badge", ents{link(0, 5, "https://x.io")}},
	{"reference link", "[Go][1]\n\n[1]: https://go.dev", "Go", ents{link(0, 2, "https://go.dev")}},

	// Raw HTML is shown, never dropped.
	{"inline HTML", "a <b>bold</b> &amp; <br> b", "a <b>bold</b> & <br> b", nil},
	{"HTML block", "<div align=\"center\">\n  <img src=\"x\">\n</div>\n\nafter", "<div align=\"center\">\n  <img src=\"x\">\n</div>\n\nafter", nil},
	{"HTML comment", "<!-- note -->\ntext", "<!-- note -->\n\ntext", nil},

	// Quotes.
	{"blockquote", "> a\n> b\n\nafter", "a\nb\n\nafter", ents{ent(quote, 0, 3)}},
	{"blockquote with formatting", "> **Note:** be careful\n>\n> second", "Note: be careful\n\nsecond",
		ents{ent(quote, 0, 24), ent(bold, 0, 5)}},
	{"nested blockquote is one quote", "> a\n>> b", "a\n\nb", ents{ent(quote, 0, 4)}},

	// Lists.
	{"bullet list", "- a\n- b\n* c", "• a\n• b\n\n• c", nil},
	{"nested list", "- a\n- b\n  - c\n    - d\n      - e\n- f", "• a\n• b\n  ◦ c\n    ▪ d\n      • e\n• f", nil},
	{"ordered list", "1. one\n1. two\n1. three", "1. one\n2. two\n3. three", nil},
	{"ordered list start and delimiter", "3) c\n4) d", "3) c\n4) d", nil},
	{"ordered list nested in bullets", "- a\n  1. x\n  2. y\n- b", "• a\n  1. x\n  2. y\n• b", nil},
	{"list item continuation", "- first line\n  second line\n- b", "• first line\n  second line\n• b", nil},
	{"loose list", "- a\n\n- b\n\n  more\n- c", "• a\n\n• b\n\n  more\n\n• c", nil},
	{"list then paragraph", "- a\n- b\n\nafter", "• a\n• b\n\nafter", nil},
	{"paragraph then list", "Steps:\n1. a\n2. b", "Steps:\n\n1. a\n2. b", nil},
	{"task list", "- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo", nil},
	{"formatting in list", "- **a**: b", "• a: b", ents{ent(bold, 2, 1)}},
	{"code block in list is not indented", "- a:\n  ```sh\n    ls -l\n  ```\n- b", "• a:\n  ls -l\n• b", ents{pre(5, 7, "sh")}},
	{"quote in list", "- a\n  > q\n- b", "• a\n  q\n• b", ents{ent(quote, 6, 1)}},

	// Tables.
	{"narrow table is an aligned pre block", "| Lang | Year |\n|:--|--:|\n| Go | 2009 |\n| C | 1972 |",
		"Lang | Year\n-----+-----\nGo   | 2009\nC    | 1972", ents{pre(0, 47, "")}},
	{"centered column", "| a | b |\n|---|:-:|\n| 1 | xyz |", "a |  b\n--+----\n1 | xyz", ents{pre(0, 22, "")}},
	{"wide table is one line per row", "| Feature | Python | Go |\n|---|---|---|\n| Typing | dynamic, duck-typed | static, structural |",
		"Feature | Python | Go\nTyping | dynamic, duck-typed | static, structural", ents{ent(bold, 0, 21)}},
	{"table with a link keeps it", "| Name | Site |\n|---|---|\n| Go | [go.dev](https://go.dev) |",
		"Name | Site\nGo | go.dev", ents{ent(bold, 0, 11), link(17, 6, "https://go.dev")}},
	{"table keeps extra cells", "| a | b |\n|---|---|\n| `x || y` | or |",
		"a  | b\n---+---+----+---\n`x |   | y` | or", ents{pre(0, 40, "")}},
	{"setext underline after a table that interrupted a paragraph", "Intro:\n| a |\n|---|\n| 1 |\n---\nNext",
		"Intro:\n\na\n-\n1\n\nNext", ents{ent(bold, 0, 6), pre(8, 5, "")}},
	{"table cell formatting in pre is plain", "| **a** |\n|---|\n| *b* |", "a\n-\nb", ents{pre(0, 5, "")}},

	// UTF-16 offsets.
	{"emoji and CJK offsets", "😀 **b** 中文 *i* 👍🏽 `x`", "😀 b 中文 i 👍🏽 x",
		ents{ent(bold, 3, 1), ent(italic, 8, 1), ent(code, 15, 1)}},
	{"emoji inside entity", "**😀x** [🔗](https://x.io)", "😀x 🔗", ents{ent(bold, 0, 3), link(4, 2, "https://x.io")}},
	{"emoji in code block", "```\n🎉 ok\n```\n**b**", "🎉 ok\n\nb", ents{pre(0, 5, ""), ent(bold, 7, 1)}},

	// Input that is not Markdown's business.
	{"NUL and invalid UTF-8", "a\x00b\xffc", "a\uFFFDb\uFFFDc", nil},
	{"CRLF", "a\r\nb\r\n\r\n```\nx\r\n```", "a\nb\n\nx", ents{pre(5, 1, "")}},
}

func TestMarkdown(t *testing.T) {
	for _, tt := range markdownTests {
		t.Run(tt.name, func(t *testing.T) {
			got := Markdown(tt.in)
			if got.Text != tt.text {
				t.Errorf("Markdown(%q).Text\n got %q\nwant %q", tt.in, got.Text, tt.text)
			}
			if !reflect.DeepEqual(got.Entities, tt.ents) {
				t.Errorf("Markdown(%q).Entities\n got %+v\nwant %+v", tt.in, got.Entities, tt.ents)
			}
			if err := checkMessage(got); err != nil {
				t.Errorf("Markdown(%q): %v", tt.in, err)
			}
		})
	}
}

// TestMarkdownCodeVerbatim checks that a code block's content reaches the user exactly,
// whatever characters it holds and whatever container the block sits in.
func TestMarkdownCodeVerbatim(t *testing.T) {
	bodies := []string{
		"\tindented\n    four\\n\\\\ *a* _b_ `c` ~~d~~ <e> &amp; [f](g)",
		"C:\\path\\to\\file.txt\n\\*\\_\n",
		"   x\n\n\ty",
		"😀\u200d👍🏽 中文 \uFFFD",
	}
	for _, body := range bodies {
		fence := "```txt\n" + body + "\n```\n"
		for _, src := range []string{
			fence,
			"- item\n\n" + indent(fence, "  "),
			indent(fence, "> "),
		} {
			src += "\nafter"
			m := Markdown(src)
			var got string
			for _, e := range m.Entities {
				if e.Type == models.MessageEntityTypePre {
					got = utf16Slice(m.Text, e.Offset, e.Length)
				}
			}
			if got != body {
				t.Errorf("Markdown(%q) code block\n got %q\nwant %q", src, got, body)
			}
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// utf16Slice returns the part of s covered by UTF-16 units [off, off+n).
func utf16Slice(s string, off, n int) string {
	u, start, end := 0, -1, len(s)
	for i, r := range s {
		if u == off {
			start = i
		}
		if u == off+n {
			end = i
			break
		}
		u += runeUnits(r)
	}
	if start < 0 {
		return ""
	}
	return s[start:end]
}

func TestMarkdownConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, tt := range markdownTests {
				if got := Markdown(tt.in); got.Text != tt.text {
					t.Errorf("Markdown(%q).Text = %q, want %q", tt.in, got.Text, tt.text)
				}
			}
		})
	}
	wg.Wait()
}

func TestUTF16Len(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"é", 1}, {"中文", 2}, {"😀", 2}, {"👍🏽", 4}, {"a\xffb", 3}, {"🇺🇦", 4},
	} {
		if got := UTF16Len(tt.in); got != tt.want {
			t.Errorf("UTF16Len(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
