package render

import (
	"fmt"
	"reflect"
	"slices"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"
)

// checkMessage reports the first way m breaks what Telegram accepts for text plus entities:
// valid UTF-8; every entity non-empty, inside the text and on UTF-16 boundaries that do not
// split a surrogate pair; entities sorted by offset; any two entities either disjoint or one
// inside the other; nothing inside pre or code; links, URLs, e-mails, code and pre never
// inside each other; no quote inside a quote.
func checkMessage(m Message) error {
	if !utf8.ValidString(m.Text) {
		return fmt.Errorf("text is not valid UTF-8: %q", m.Text)
	}
	// boundary[u] is true where UTF-16 offset u starts a character (or is the end).
	boundary := make([]bool, 0, len(m.Text)+1)
	for _, r := range m.Text {
		boundary = append(boundary, true)
		if r >= 0x10000 {
			boundary = append(boundary, false)
		}
	}
	boundary = append(boundary, true)
	total := len(boundary) - 1
	for i, e := range m.Entities {
		end := e.Offset + e.Length
		switch {
		case e.Length <= 0:
			return fmt.Errorf("entity %d %+v: length %d, want > 0", i, e, e.Length)
		case e.Offset < 0 || end > total:
			return fmt.Errorf("entity %d %+v: outside text of %d units", i, e, total)
		case !boundary[e.Offset] || !boundary[end]:
			return fmt.Errorf("entity %d %+v: splits a surrogate pair", i, e)
		case i > 0 && m.Entities[i-1].Offset > e.Offset:
			return fmt.Errorf("entity %d %+v: not sorted by offset after %+v", i, e, m.Entities[i-1])
		case e.Type == models.MessageEntityTypeTextLink && e.URL == "":
			return fmt.Errorf("entity %d %+v: text_link without URL", i, e)
		}
		for j, f := range m.Entities[:i] {
			fend := f.Offset + f.Length
			if end <= f.Offset || fend <= e.Offset {
				continue // disjoint
			}
			eInF := f.Offset <= e.Offset && end <= fend
			fInE := e.Offset <= f.Offset && fend <= end
			if !eInF && !fInE {
				return fmt.Errorf("entities %d %+v and %d %+v overlap without nesting", j, f, i, e)
			}
			if (isVerbatim(f.Type) && !fInE) || (isVerbatim(e.Type) && !eInF) {
				return fmt.Errorf("entities %d %+v and %d %+v: an entity inside pre/code", j, f, i, e)
			}
			if isExclusive(e.Type) && isExclusive(f.Type) {
				return fmt.Errorf("entities %d %+v and %d %+v: exclusive entities nest", j, f, i, e)
			}
			if isQuote(e.Type) && isQuote(f.Type) {
				return fmt.Errorf("entities %d %+v and %d %+v: quote inside quote", j, f, i, e)
			}
		}
	}
	return nil
}

func isVerbatim(t models.MessageEntityType) bool {
	return t == models.MessageEntityTypePre || t == models.MessageEntityTypeCode
}

// coverage returns, for each kind of entity in m, the UTF-16 units of [lo, hi) it covers,
// re-based to lo, as sorted, merged intervals. A kind is the type plus URL and language, so
// a clipped link must keep its URL and a clipped code block its language.
func coverage(m Message, lo, hi int) map[string][][2]int {
	cov := map[string][][2]int{}
	for _, e := range m.Entities {
		a, b := max(e.Offset, lo), min(e.Offset+e.Length, hi)
		if a < b {
			kind := string(e.Type) + "|" + e.URL + "|" + e.Language
			cov[kind] = append(cov[kind], [2]int{a - lo, b - lo})
		}
	}
	for kind, iv := range cov {
		slices.SortFunc(iv, func(x, y [2]int) int { return x[0] - y[0] })
		merged := iv[:1]
		for _, x := range iv[1:] {
			if last := &merged[len(merged)-1]; x[0] <= last[1] {
				last[1] = max(last[1], x[1])
			} else {
				merged = append(merged, x)
			}
		}
		cov[kind] = merged
	}
	return cov
}

// checkSplit checks Split(m, limit) against m: every part valid, non-blank and within limit;
// the parts are slices of m.Text in order with only whitespace between them (and before the
// first, after the last); every unit keeps exactly the entity kinds that covered it in m.
func checkSplit(m Message, limit int) error {
	parts := Split(m, limit)
	spans := splitSpans(m, max(limit, 2))
	if len(parts) != len(spans) {
		return fmt.Errorf("Split gave %d parts, splitSpans %d", len(parts), len(spans))
	}
	if blank(m.Text) {
		if len(parts) != 0 {
			return fmt.Errorf("blank text gave %d parts, want 0", len(parts))
		}
		return nil
	}
	prev, prevU := 0, 0
	for i, p := range parts {
		s := spans[i]
		if err := checkMessage(p); err != nil {
			return fmt.Errorf("part %d: %w", i, err)
		}
		if n := UTF16Len(p.Text); n > max(limit, 2) {
			return fmt.Errorf("part %d: %d units, want <= %d", i, n, limit)
		}
		if blank(p.Text) {
			return fmt.Errorf("part %d: blank %q", i, p.Text)
		}
		if s.start < prev || s.end <= s.start || p.Text != m.Text[s.start:s.end] {
			return fmt.Errorf("part %d: span %+v is not the next slice of the text after %d", i, s, prev)
		}
		if !blank(m.Text[prev:s.start]) {
			return fmt.Errorf("part %d: dropped %q, which is not whitespace", i, m.Text[prev:s.start])
		}
		if s.u0 != prevU+UTF16Len(m.Text[prev:s.start]) || s.u1 != s.u0+UTF16Len(p.Text) {
			return fmt.Errorf("part %d: span %+v has wrong UTF-16 offsets", i, s)
		}
		if got, want := coverage(p, 0, s.u1-s.u0), coverage(m, s.u0, s.u1); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("part %d: entities cover %v, want %v", i, got, want)
		}
		prev, prevU = s.end, s.u1
	}
	if !blank(m.Text[prev:]) {
		return fmt.Errorf("dropped %q at the end, which is not whitespace", m.Text[prev:])
	}
	return nil
}

// isSubsequence reports whether want appears in got in order, and if not, how much of want
// did.
func isSubsequence(want, got []rune) (bool, int) {
	i := 0
	for _, r := range got {
		if i < len(want) && want[i] == r {
			i++
		}
	}
	return i == len(want), i
}
