package render

import (
	"bytes"
	"strings"

	"github.com/go-telegram/bot/models"
	"github.com/yuin/goldmark/ast"
)

// thinkingInfo marks a fenced block as a model's thinking (a name no model writes by chance):
// the label follows it in the info string, the content is the thinking.
const thinkingInfo = "aurabot-thinking"

// Thinking returns the Markdown of a model's thinking above its answer: label (one line), then
// quote ("": none) as plain text in an expandable blockquote. It is a fenced block no line of
// quote can close, so that the text a reply records is the text it shows.
func Thinking(label, quote string) string {
	quote = strings.ReplaceAll(strings.ReplaceAll(quote, "\r\n", "\n"), "\r", "\n")
	fence := strings.Repeat("~", max(3, longestRun(quote, '~')+1))
	var b strings.Builder
	b.Grow(len(quote) + len(label) + 2*len(fence) + len(thinkingInfo) + 8)
	b.WriteString(fence + thinkingInfo + " " + strings.ReplaceAll(label, "\n", " ") + "\n")
	if quote != "" {
		b.WriteString(quote + "\n")
	}
	b.WriteString(fence + "\n\n")
	return b.String()
}

func longestRun(s string, c byte) int {
	longest, n := 0, 0
	for i := range len(s) {
		if s[i] != c {
			n = 0
			continue
		}
		n++
		longest = max(longest, n)
	}
	return longest
}

// WithoutThinking returns md without the first block Thinking made: the answer under it.
func WithoutThinking(md string) string {
	for start := 0; start < len(md); {
		line, _, _ := strings.Cut(md[start:], "\n")
		next := start + len(line) + 1
		fence := thinkingFence(line)
		if fence == "" {
			start = next
			continue
		}
		end := len(md)
		for at := next; at < len(md); {
			l, _, _ := strings.Cut(md[at:], "\n")
			if strings.TrimRight(l, " ") == fence {
				end = min(at+len(l)+1, len(md))
				break
			}
			at += len(l) + 1
		}
		if strings.HasPrefix(md[end:], "\n") {
			end++ // the blank line after the block
		}
		return md[:start] + md[end:]
	}
	return md
}

// thinkingFence returns the fence of a line that opens a thinking block, or "".
func thinkingFence(line string) string {
	f := fenceOf(line)
	if f == "" || f[0] != '~' || !strings.HasPrefix(line, f+thinkingInfo) {
		return ""
	}
	if after := line[len(f)+len(thinkingInfo):]; after != "" && after[0] != ' ' {
		return ""
	}
	return f
}

// thinking writes a thinking block: its label, then its content in an expandable blockquote.
func (r *renderer) thinking(n *ast.FencedCodeBlock) {
	info := n.Info.Segment.Value(r.source)
	_, label, _ := bytes.Cut(info, []byte(" "))
	r.b.text(bytes.TrimSpace(label))
	if body := bytes.TrimRight(n.Lines().Value(r.source), "\n"); len(body) > 0 {
		r.b.newline()
		r.verbatim(models.MessageEntityTypeExpandableBlockquote, "", body)
	}
	r.b.endBlock(2)
}
