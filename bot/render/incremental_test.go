package render

import (
	"slices"
	"strings"
	"testing"
)

// joined is the text of messages put back together, without the whitespace cuts drop.
func joined(ms []Message) string {
	var sb strings.Builder
	for _, m := range ms {
		sb.WriteString(strings.Join(strings.Fields(m.Text), ""))
	}
	return sb.String()
}

func renderAll(r *Incremental, md string) []Message {
	frozen, rest := r.Render(md)
	return append(slices.Clone(frozen), Split(rest, 4096)...)
}

// Rendering a text while it grows gives the same messages as rendering it once finished, and
// every visible character of the whole render is there.
func TestIncrementalMatchesOneGo(t *testing.T) {
	var sb strings.Builder
	for i := range 400 {
		switch i % 7 {
		case 0:
			sb.WriteString("## Heading " + strings.Repeat("x", i%13) + "\n\n")
		case 1:
			sb.WriteString("```go\nfunc f() {\n\n\treturn\n}\n")
			if i%2 == 0 {
				sb.WriteString("```\n\n")
			}
		case 2:
			sb.WriteString("- item **bold** [link](https://example.com/" + strings.Repeat("a", i%5) + ")\n- two\n\n")
		default:
			sb.WriteString("A paragraph with *emphasis* and `code` that goes on for a while, number " + strings.Repeat("é", i%9) + ".\n\n")
		}
	}
	md := sb.String()
	live := NewIncremental(4096)
	var got []Message
	for n := 1; n <= len(md); n += 97 {
		got = renderAll(live, md[:n])
	}
	got = renderAll(live, md)
	want := renderAll(NewIncremental(4096), md)
	if len(got) != len(want) {
		t.Fatalf("messages: got %d live, want %d as in one go", len(got), len(want))
	}
	for i := range got {
		if got[i].Text != want[i].Text || !slices.Equal(got[i].Entities, want[i].Entities) {
			t.Fatalf("message %d differs between live and one-go rendering", i)
		}
		if n := UTF16Len(got[i].Text); n > 4096 {
			t.Fatalf("message %d: %d UTF-16 units, over 4096", i, n)
		}
	}
	if len(got) < 5 {
		t.Fatalf("got %d messages for %d bytes: the text was not frozen in chunks", len(got), len(md))
	}
}

// A code block cut by a freeze is closed in one chunk and reopened, as code, in the next.
func TestIncrementalReopensCode(t *testing.T) {
	md := "```python\n" + strings.Repeat("print('hello world')\n", 1500) + "```\n"
	frozen, rest := NewIncremental(4096).Render(md)
	if len(frozen) == 0 {
		t.Fatal("nothing frozen")
	}
	all := append(slices.Clone(frozen), Split(rest, 4096)...)
	for i, m := range all {
		if len(m.Entities) == 0 || m.Entities[0].Type != "pre" || m.Entities[0].Language != "python" {
			t.Fatalf("message %d: got entities %+v, want a python pre block", i, m.Entities)
		}
		if strings.Contains(m.Text, "```") {
			t.Fatalf("message %d shows a fence: %q", i, m.Text[:40])
		}
	}
	if got, want := strings.Count(joined(all), "print('helloworld')"), 1500; got != want {
		t.Fatalf("lines: got %d, want %d", got, want)
	}
}

func FuzzIncremental(f *testing.F) {
	f.Add("hello *world*\n\n```\ncode\n", 3)
	f.Add(strings.Repeat("[a](", 50), 7)
	f.Fuzz(func(t *testing.T, unit string, times int) {
		times = (times%4000+4000)%4000 + 1
		md := strings.Repeat(unit, times)
		if len(md) > 200000 {
			return
		}
		r := NewIncremental(4096)
		for n := 0; n < len(md); n += 1 + len(md)/5 {
			renderAll(r, md[:n])
		}
		got := renderAll(r, md)
		want := renderAll(NewIncremental(4096), md)
		if len(got) != len(want) {
			t.Fatalf("got %d messages live, %d in one go", len(got), len(want))
		}
		for i := range got {
			if got[i].Text != want[i].Text {
				t.Fatalf("message %d differs", i)
			}
			if UTF16Len(got[i].Text) > 4096 {
				t.Fatalf("message %d too long", i)
			}
		}
	})
}

// BenchmarkIncremental100KB is one edit of a 100 KB adversarial answer (links cut open, quotes,
// lists): the cost of an edit must not grow with the answer. The target is under 50 ms.
func BenchmarkIncremental100KB(b *testing.B) {
	for _, unit := range []string{"[a](", "> ", "- [x](y) **b\n", "> quote [l](u) *e*\n"} {
		b.Run(strings.TrimSpace(unit), func(b *testing.B) {
			md := strings.Repeat(unit, 100000/len(unit))
			r := NewIncremental(4096)
			r.Render(md[:len(md)-100])
			b.ResetTimer()
			for range b.N {
				frozen, rest := r.Render(md)
				_ = Split(rest, 4096)
				_ = frozen
			}
		})
	}
}

// BenchmarkFullRender100KB is what an edit cost before: the whole answer rendered and split.
func BenchmarkFullRender100KB(b *testing.B) {
	for _, unit := range []string{"[a](", "> "} {
		b.Run(strings.TrimSpace(unit), func(b *testing.B) {
			md := strings.Repeat(unit, 100000/len(unit))
			for range b.N {
				_ = Split(Markdown(md), 4096)
			}
		})
	}
}
