package render

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"
)

const expandable = models.MessageEntityTypeExpandableBlockquote

func TestThinking(t *testing.T) {
	tests := []struct {
		name         string
		label, quote string
		answer       string
		text         string
		ents         ents
	}{
		{
			name: "quote and answer", label: "💭 Thought for 3 s", quote: "First **this**,\nthen `that`.", answer: "The **answer**.",
			text: "💭 Thought for 3 s\nFirst **this**,\nthen `that`.\n\nThe answer.",
			ents: ents{ent(expandable, 19, 28), ent(bold, 53, 6)},
		},
		{
			name: "fences and tildes in the quote", label: "💭 Thinking…", quote: "~~~\n````go\nx := 1\n~~~~~~\n  ~~~", answer: "",
			text: "💭 Thinking…\n~~~\n````go\nx := 1\n~~~~~~\n  ~~~",
			ents: ents{ent(expandable, 13, 30)},
		},
		{name: "label alone", label: "💭 Thought for 1 min 5 s", answer: "Yes.", text: "💭 Thought for 1 min 5 s\n\nYes."},
		{name: "carriage returns", label: "L", quote: "a\r\nb\rc", answer: "", text: "L\na\nb\nc", ents: ents{ent(expandable, 2, 5)}},
		{name: "label of two lines", label: "a\nb", quote: "q", text: "a b\nq", ents: ents{ent(expandable, 4, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := Thinking(tt.label, tt.quote) + tt.answer
			m := Markdown(md)
			if m.Text != tt.text || !reflect.DeepEqual(m.Entities, tt.ents) {
				t.Errorf("Markdown(%q):\ngot  %q %+v\nwant %q %+v", md, m.Text, m.Entities, tt.text, tt.ents)
			}
			if err := checkMessage(m); err != nil {
				t.Error(err)
			}
			if got := WithoutThinking(md); got != tt.answer {
				t.Errorf("WithoutThinking: got %q, want %q", got, tt.answer)
			}
			if got := WithoutThinking("> 🎤 \"hi\"\n\n" + md); got != "> 🎤 \"hi\"\n\n"+tt.answer {
				t.Errorf("WithoutThinking after a prefix: got %q", got)
			}
		})
	}
	if got := WithoutThinking("~~~go\ncode\n~~~\n\n~~~aurabot-thinkingx\n"); got != "~~~go\ncode\n~~~\n\n~~~aurabot-thinkingx\n" {
		t.Errorf("WithoutThinking of a text without a thinking block: got %q, want it unchanged", got)
	}
}

// A thinking block survives the incremental renderer's freezes: the answer after it can grow
// long, and the block is never cut in two (its quote is bounded, see reply).
func TestThinkingIncremental(t *testing.T) {
	quote := strings.Repeat("a thought\n", 300) // 3000 bytes
	answer := strings.Repeat("Paragraph of the answer.\n\n", 800)
	md := Thinking("💭 Thought for 3 s", strings.TrimSpace(quote)) + answer
	r := NewIncremental(4096)
	for n := 0; n <= len(answer); n += 997 {
		r.Render(md[:len(md)-len(answer)+n])
	}
	frozen, rest := r.Render(md)
	all := append(frozen, Split(rest, 4096)...)
	f2, r2 := NewIncremental(4096).Render(md)
	if whole := append(f2, Split(r2, 4096)...); !reflect.DeepEqual(all, whole) {
		t.Fatalf("rendered while it grew: %d messages, rendered at once: %d, want the same", len(all), len(whole))
	}
	if !strings.HasPrefix(all[0].Text, "💭 Thought for 3 s\na thought") || len(all[0].Entities) == 0 || all[0].Entities[0].Type != expandable {
		t.Errorf("first message: got %q %+v, want the label and the quote", all[0].Text[:40], all[0].Entities)
	}
	if n := strings.Count(strings.Join(texts(all), ""), "💭"); n != 1 {
		t.Errorf("got the label %d times, want once", n)
	}
}

func texts(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// An Incremental given a text whose start changed (a thinking block that collapsed) renders
// it from the start instead of keeping what it froze.
func TestIncrementalStartChanged(t *testing.T) {
	r := NewIncremental(4096)
	long := strings.Repeat("word ", 2000)
	r.Render("A" + long)
	frozen, rest := r.Render("B" + long + "more")
	got := strings.Join(texts(append(frozen, rest)), "")
	if !strings.HasPrefix(got, "B") {
		t.Errorf("got %q…, want the new start", got[:10])
	}
}

// FuzzThinking: whatever the label, the quote and the answer, the block renders as the label
// and the quote, exactly, in one expandable blockquote, the answer as it would alone, and
// WithoutThinking gives the answer back.
func FuzzThinking(f *testing.F) {
	f.Add("💭 Thought for 3 s", "step one\n~~~\n```\nstep two", "**Answer**")
	f.Add("", "  indented\n\ttabbed", "")
	f.Add("label", "~~~~~~~~", "~~~aurabot-thinking x\n")
	f.Fuzz(func(t *testing.T, label, quote, answer string) {
		if !utf8.ValidString(label) || !utf8.ValidString(quote) || strings.ContainsAny(label+quote, "\x00\r") {
			return
		}
		label = strings.Join(strings.Fields(label), " ")
		quote = strings.Trim(quote, " \t\n")
		md := Thinking(label, quote)
		if got := WithoutThinking(md + answer); got != answer {
			t.Fatalf("WithoutThinking(%q): got %q, want %q", md+answer, got, answer)
		}
		m := Markdown(md + "Answer.")
		if err := checkMessage(m); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(label)
		if quote != "" {
			if want != "" {
				want += "\n"
			}
			want += quote
		}
		if want != "" {
			want += "\n\n"
		}
		want += "Answer."
		if m.Text != want {
			t.Fatalf("Markdown(%q) = %q, want %q", md, m.Text, want)
		}
		if quote != "" {
			q := m.Entities[0]
			if q.Type != expandable || q.Offset != UTF16Len(m.Text)-UTF16Len(quote+"\n\nAnswer.") || q.Length != UTF16Len(quote) {
				t.Fatalf("Markdown(%q): quote entity %+v, want one over %q", md, q, quote)
			}
		}
	})
}
