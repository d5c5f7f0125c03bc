package render

import (
	"os"
	"strings"
	"testing"
)

// BenchmarkMarkdown renders a realistic 4 KB answer and a 16 KB one (four of them). The bot
// re-renders the whole answer on every edit, about once a second per chat.
func BenchmarkMarkdown(b *testing.B) {
	answer, err := os.ReadFile("testdata/answer.md")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		src  string
	}{
		{"4KB", string(answer)},
		{"16KB", strings.Repeat(string(answer)+"\n\n", 4)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.src)))
			b.ReportAllocs()
			for b.Loop() {
				Markdown(bc.src)
			}
		})
	}
}

// BenchmarkSplit cuts a rendered 16 KB answer into Telegram messages.
func BenchmarkSplit(b *testing.B) {
	answer, err := os.ReadFile("testdata/answer.md")
	if err != nil {
		b.Fatal(err)
	}
	m := Markdown(strings.Repeat(string(answer)+"\n\n", 4))
	b.ReportAllocs()
	for b.Loop() {
		Split(m, 4096)
	}
}
