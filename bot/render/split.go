package render

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"
)

// UTF16Len returns the length of s in UTF-16 code units. Each byte of invalid UTF-8 counts as
// one unit, as it turns into U+FFFD on the way to Telegram.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func utf16Len(b []byte) int { return UTF16Len(string(b)) } // no copy: the conversion is only ranged over

// Split cuts a rendered message into messages of at most limit UTF-16 units (4096 for Telegram;
// below 2 taken as 2, so any character fits).
//
// In the longest piece that fits, it cuts at the last paragraph break in the second half, else
// the last line break there, else the last space there; else at the last line break or space of
// the whole piece; else hard at its end, backed off to a grapheme boundary (marks, joiners,
// variation selectors, flag pairs), never inside a surrogate pair. Inside code (pre or code)
// only a single newline or space is a cut, so code keeps its blank lines and indentation.
//
// Only the whitespace at a cut is dropped (and leading whitespace that would make a part of its
// own). An entity crossing a cut is clipped into both parts, so a code block cut in two is closed
// in one message and reopened in the next. No part is blank; a blank message gives no parts.
func Split(m Message, limit int) []Message {
	spans := splitSpans(m, max(limit, 2))
	if len(spans) == 0 {
		return nil
	}
	out := make([]Message, 0, len(spans))
	for _, s := range spans {
		part := Message{Text: m.Text[s.start:s.end]}
		for _, e := range m.Entities {
			lo, hi := max(e.Offset, s.u0), min(e.Offset+e.Length, s.u1)
			if hi > lo {
				e.Offset, e.Length = lo-s.u0, hi-lo
				part.Entities = append(part.Entities, e)
			}
		}
		sortEntities(part.Entities)
		out = append(out, part)
	}
	return out
}

// span is one part of a split message: bytes [start, end), UTF-16 units [u0, u1).
type span struct{ start, end, u0, u1 int }

// cut is where a part ends (a) and the next begins (b); text between them is dropped.
type cut struct{ a, au, b, bu int }

func splitSpans(m Message, limit int) []span {
	t := m.Text
	if blank(t) {
		return nil
	}
	total := UTF16Len(t)
	if total <= limit {
		return []span{{0, len(t), 0, total}}
	}
	verb := verbatimMask(m, total)
	var out []span
	s, su := 0, 0
	for !blank(t[s:]) {
		if total-su <= limit {
			return append(out, span{s, len(t), su, total})
		}
		c, ok := findCut(t, verb, s, su, limit)
		if !ok {
			// Only whitespace fits in this window (a huge run of blank lines in a code
			// block): drop it rather than send a blank message.
			for s < len(t) {
				r, size := utf8.DecodeRuneInString(t[s:])
				if !unicode.IsSpace(r) {
					break
				}
				s += size
				su += runeUnits(r)
			}
			continue
		}
		out = append(out, span{s, c.a, su, c.au})
		s, su = c.b, c.bu
	}
	return out
}

// findCut picks the end of the part that starts at byte s (UTF-16 offset su), as Split
// describes. ok is false if the window holds no visible character.
func findCut(t string, verb []bool, s, su, limit int) (c cut, ok bool) {
	const (
		none = iota
		word
		line
		para
	)
	var lastPara, lastLine, lastAny cut
	found := none
	record := func(kind int, c cut) {
		lastAny = c
		if kind >= line {
			lastLine = c
		}
		if kind == para {
			lastPara = c
		}
		found = max(found, kind)
	}
	visible := false
	i, u := s, su
	hard := cut{s, su, s, su}
	for i < len(t) && u-su <= limit {
		hard = cut{i, u, i, u} // the window ends at the last i the loop sees
		ch := t[i]
		if isSpaceByte(ch) && visible {
			if verb != nil && verb[i] {
				// In code, drop a single newline, or a single space between two words:
				// never indentation.
				if ch == '\n' {
					record(line, cut{i, u, i + 1, u + 1})
				} else if !isSpaceByte(t[i-1]) {
					record(word, cut{i, u, i + 1, u + 1})
				}
				i, u = i+1, u+1
				continue
			}
			j, newlines := i, 0
			for j < len(t) && isSpaceByte(t[j]) && (verb == nil || !verb[j]) {
				if t[j] == '\n' {
					newlines++
				}
				j++
			}
			kind := min(word+newlines, para)
			record(kind, cut{i, u, j, u + j - i})
			i, u = j, u+j-i
			continue
		}
		r, size := utf8.DecodeRuneInString(t[i:])
		if u+runeUnits(r)-su > limit {
			break
		}
		if !unicode.IsSpace(r) {
			visible = true
		}
		i += size
		u += runeUnits(r)
	}
	if u-su <= limit {
		hard = cut{i, u, i, u}
	}
	if !visible {
		return cut{}, false
	}
	half := su + limit/2
	switch {
	case found == para && lastPara.au >= half:
		c = lastPara
	case found >= line && lastLine.au >= half:
		c = lastLine
	case found >= word && lastAny.au >= half:
		c = lastAny
	case found >= line:
		c = lastLine
	case found >= word:
		c = lastAny
	default:
		c = graphemeCut(t, s, hard)
	}
	if blank(t[c.b:]) {
		c.b, c.bu = len(t), c.bu+UTF16Len(t[c.b:])
	}
	return c, true
}

// graphemeCut moves a hard cut back a little if it would split a character from the marks,
// joiners or modifiers that belong to it, or the two halves of a flag. It is a cheap
// approximation of grapheme clusters, enough for what models write.
func graphemeCut(t string, s int, c cut) cut {
	e, eu := c.a, c.au
	for range 16 {
		if e <= s {
			break
		}
		next, _ := utf8.DecodeRuneInString(t[e:])
		prev, size := utf8.DecodeLastRuneInString(t[s:e])
		if !extendsPrevious(next) && prev != '\u200D' && !(isRegional(next) && regionalRunOdd(t[s:e])) {
			if !blank(t[s:e]) {
				return cut{e, eu, e, eu}
			}
			break
		}
		e -= size
		eu -= runeUnits(prev)
	}
	return c
}

func extendsPrevious(r rune) bool {
	return r == '\u200D' || (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0x1F3FB && r <= 0x1F3FF) ||
		(r >= 0xE0020 && r <= 0xE007F) || (r >= 0xE0100 && r <= 0xE01EF) ||
		unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// regionalRunOdd reports whether t ends in half a flag (an odd run of regional indicators).
func regionalRunOdd(t string) bool {
	n := 0
	for len(t) > 0 {
		r, size := utf8.DecodeLastRuneInString(t)
		if !isRegional(r) {
			break
		}
		n++
		t = t[:len(t)-size]
	}
	return n%2 == 1
}

// verbatimMask marks the bytes of m.Text inside pre and code entities; nil if there are none.
func verbatimMask(m Message, total int) []bool {
	var mask []bool
	var byteAt []int32 // UTF-16 offset -> byte offset
	for _, e := range m.Entities {
		if e.Type != models.MessageEntityTypePre && e.Type != models.MessageEntityTypeCode {
			continue
		}
		if mask == nil {
			mask = make([]bool, len(m.Text))
			byteAt = make([]int32, total+1)
			u := 0
			for i, r := range m.Text {
				byteAt[u] = int32(i)
				if r >= 0x10000 {
					byteAt[u+1] = int32(i)
				}
				u += runeUnits(r)
			}
			byteAt[total] = int32(len(m.Text))
		}
		lo := min(max(e.Offset, 0), total)
		hi := min(max(e.Offset+e.Length, lo), total)
		for i := byteAt[lo]; i < byteAt[hi]; i++ {
			mask[i] = true
		}
	}
	return mask
}

func runeUnits(r rune) int { return utf16.RuneLen(r) } // the runes of a Go string are valid

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

func blank(s string) bool { return strings.TrimFunc(s, unicode.IsSpace) == "" }
