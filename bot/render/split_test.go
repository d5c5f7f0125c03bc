package render

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		in    Message
		limit int
		want  []Message
	}{
		{"fits", Markdown("**hi** there"), 4096, []Message{Markdown("**hi** there")}},
		{"empty", Message{}, 10, nil},
		{"blank", Message{Text: " \n\t "}, 2, nil},
		{"paragraph in the second half", Message{Text: "0123456789\n\nabcdefghij klm"}, 20,
			[]Message{{Text: "0123456789"}, {Text: "abcdefghij klm"}}},
		{"a late line beats an early paragraph", Message{Text: "aa\n\nbbbbbbbbbb\ncccccccccc"}, 20,
			[]Message{{Text: "aa\n\nbbbbbbbbbb"}, {Text: "cccccccccc"}}},
		{"a late space beats an early line", Message{Text: "aa\nbbbbbbbbbbbb cccccccc"}, 20,
			[]Message{{Text: "aa\nbbbbbbbbbbbb"}, {Text: "cccccccc"}}},
		{"an early line beats a hard cut", Message{Text: "aaaa\nbbbbbbbbbbbbbbbbbbbbbbbb"}, 20,
			[]Message{{Text: "aaaa"}, {Text: "bbbbbbbbbbbbbbbbbbbb"}, {Text: "bbbb"}}},
		{"whole whitespace run dropped", Message{Text: "aaaa \n \n  bbbb"}, 6,
			[]Message{{Text: "aaaa"}, {Text: "bbbb"}}},
		{"hard cut between surrogate pairs", Message{Text: "😀😀😀😀😀😀"}, 5,
			[]Message{{Text: "😀😀"}, {Text: "😀😀"}, {Text: "😀😀"}}},
		{"hard cut keeps a skin tone with its emoji", Message{Text: "ab👍🏽cd"}, 4,
			[]Message{{Text: "ab"}, {Text: "👍🏽"}, {Text: "cd"}}},
		{"hard cut keeps flags whole", Message{Text: "🇺🇦🇩🇪"}, 6,
			[]Message{{Text: "🇺🇦"}, {Text: "🇩🇪"}}},
		{"hard cut keeps combining marks", Message{Text: "e\u0301e\u0301e\u0301"}, 3,
			[]Message{{Text: "e\u0301"}, {Text: "e\u0301"}, {Text: "e\u0301"}}},
		{"hard cut after a joiner sequence", Message{Text: "x👩\u200d💻y"}, 5,
			[]Message{{Text: "x"}, {Text: "👩\u200d💻"}, {Text: "y"}}},
		{"entities rebased", Markdown("**aaaa** bbbb **cccc**"), 9,
			[]Message{{Text: "aaaa bbbb", Entities: ents{ent(bold, 0, 4)}}, {Text: "cccc", Entities: ents{ent(bold, 0, 4)}}}},
		{"link clipped into both parts", Markdown("[aaaa bbbb](https://x.io)"), 5,
			[]Message{{Text: "aaaa", Entities: ents{link(0, 4, "https://x.io")}}, {Text: "bbbb", Entities: ents{link(0, 4, "https://x.io")}}}},
		{"code block closed and reopened", Markdown("```go\nline1\nline2\nline3\n```"), 12,
			[]Message{{Text: "line1\nline2", Entities: ents{pre(0, 11, "go")}}, {Text: "line3", Entities: ents{pre(0, 5, "go")}}}},
		{"code keeps its indentation", Markdown("```\nfoo\n    bar\n```"), 8,
			[]Message{{Text: "foo", Entities: ents{pre(0, 3, "")}}, {Text: "    bar", Entities: ents{pre(0, 7, "")}}}},
		{"code keeps its blank lines", Markdown("```\naaaa\n\nbbbb\n```"), 7,
			[]Message{{Text: "aaaa\n", Entities: ents{pre(0, 5, "")}}, {Text: "bbbb", Entities: ents{pre(0, 4, "")}}}},
		{"paragraph before code preferred", Markdown("Intro text here.\n\n```\nx := 1\ny := 2\n```"), 24,
			[]Message{{Text: "Intro text here."}, {Text: "x := 1\ny := 2", Entities: ents{pre(0, 13, "")}}}},
		{"blank window dropped", Message{Text: strings.Repeat("\n", 30) + "x", Entities: ents{pre(0, 31, "")}}, 10,
			[]Message{{Text: "x", Entities: ents{pre(0, 1, "")}}}},
		{"limit below 2", Message{Text: "😀a"}, 0, []Message{{Text: "😀"}, {Text: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.in, tt.limit)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q, %d)\n got %+v\nwant %+v", tt.in.Text, tt.limit, got, tt.want)
			}
			if err := checkSplit(tt.in, tt.limit); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSplitProperties splits every rendered test input and a long realistic answer at many
// limits and checks what checkSplit promises.
func TestSplitProperties(t *testing.T) {
	answer, err := os.ReadFile("testdata/answer.md")
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{string(answer), strings.Repeat(string(answer)+"\n\n", 4)}
	for _, tt := range markdownTests {
		inputs = append(inputs, tt.in)
	}
	for _, in := range inputs {
		m := Markdown(in)
		for _, limit := range []int{1, 2, 3, 7, 16, 50, 333, 1000, 4096} {
			if err := checkSplit(m, limit); err != nil {
				t.Errorf("Split(Markdown(%.40q...), %d): %v", in, limit, err)
			}
		}
	}
}

// TestSplitLongAnswer splits a 16 KB answer for Telegram: every part fits, and every code
// block that had to be cut keeps its language in each part.
func TestSplitLongAnswer(t *testing.T) {
	answer, err := os.ReadFile("testdata/answer.md")
	if err != nil {
		t.Fatal(err)
	}
	m := Markdown(strings.Repeat(string(answer)+"\n\n", 4))
	parts := Split(m, 4096)
	if len(parts) < 4 {
		t.Fatalf("Split of %d units gave %d parts, want at least 4", UTF16Len(m.Text), len(parts))
	}
	for i, p := range parts {
		if n := UTF16Len(p.Text); n > 4096 || n < 2048 && i < len(parts)-1 {
			t.Errorf("part %d: %d units, want between 2048 and 4096 (all but the last)", i, n)
		}
	}
}
