package render

import (
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"
)

// builder accumulates rendered text and the entities over it. Block structure is written lazily:
// an ended block records the newlines owed before what comes next, and an entity gets its offset
// at its first character, so an empty block adds no blank lines nor empty entities, and no entity
// starts with the separator before it.
type builder struct {
	buf  []byte
	u16  int // UTF-16 length of buf
	ents []models.MessageEntity
	open []openEntity

	need        int    // newlines owed before the next content
	prefix      []byte // written at the start of every line (list indentation)
	atLineStart bool
	verbatim    int // > 0 while writing code: no prefixes, text goes out byte for byte
}

type openEntity struct {
	models.MessageEntity      // Offset -1 until the first character is written
	skip                 bool // opened where Telegram would not accept it; emits nothing
}

// push opens an entity, skipped (but still popped) where Telegram would reject or ignore it:
// inside code, inside itself, a quote in a quote, links or code in links (only bold, italic,
// underline, strikethrough and spoiler nest in other entities).
func (b *builder) push(typ models.MessageEntityType, url, lang string) {
	skip := slices.ContainsFunc(b.open, func(o openEntity) bool {
		return !o.skip && (o.Type == models.MessageEntityTypePre || o.Type == models.MessageEntityTypeCode || o.Type == typ ||
			isExclusive(o.Type) && isExclusive(typ) || isQuote(o.Type) && isQuote(typ))
	})
	b.open = append(b.open, openEntity{models.MessageEntity{Type: typ, URL: url, Language: lang, Offset: -1}, skip})
}

// isExclusive reports whether an entity type may neither contain nor sit in another exclusive one.
func isExclusive(t models.MessageEntityType) bool {
	switch t {
	case models.MessageEntityTypePre, models.MessageEntityTypeCode, models.MessageEntityTypeTextLink,
		models.MessageEntityTypeURL, models.MessageEntityTypeEmail:
		return true
	}
	return false
}

// isQuote reports whether an entity type is a quote: Telegram takes no quote inside another.
func isQuote(t models.MessageEntityType) bool {
	return t == models.MessageEntityTypeBlockquote || t == models.MessageEntityTypeExpandableBlockquote
}

// pop closes the innermost open entity; it is kept only if it covers at least one unit.
func (b *builder) pop() {
	o := b.open[len(b.open)-1]
	b.open = b.open[:len(b.open)-1]
	if !o.skip && o.Offset >= 0 && b.u16 > o.Offset {
		o.Length = b.u16 - o.Offset
		b.ents = append(b.ents, o.MessageEntity)
	}
}

// endBlock records the newlines owed after a block (1, or 2 for a blank line), overriding inner
// blocks: a tight list item that ends in a nested list is still followed by one newline.
func (b *builder) endBlock(newlines int) { b.need = newlines }

// flush writes the owed separator and line prefix before content.
func (b *builder) flush() {
	if b.need > 0 && len(b.buf) > 0 {
		for range b.need {
			b.buf = append(b.buf, '\n')
		}
		b.u16 += b.need
		b.atLineStart = true
	}
	b.need = 0
	if b.atLineStart && b.verbatim == 0 && len(b.prefix) > 0 {
		b.buf = append(b.buf, b.prefix...)
		b.u16 += len(b.prefix) // prefixes are ASCII spaces
	}
	b.atLineStart = false
}

// write appends s as one run of content: no newline handling, no prefixes inside it.
func (b *builder) write(s []byte) {
	if len(s) == 0 {
		return
	}
	b.flush()
	for i := range b.open {
		if b.open[i].Offset < 0 {
			b.open[i].Offset = b.u16
		}
	}
	b.buf = append(b.buf, s...)
	b.u16 += utf16Len(s)
}

func (b *builder) writeString(s string) { b.write([]byte(s)) }

// text appends s, starting a prefixed new line at every '\n' it contains.
func (b *builder) text(s []byte) {
	for {
		i := slices.Index(s, '\n')
		if i < 0 {
			b.write(s)
			return
		}
		b.write(s[:i])
		b.newline()
		s = s[i+1:]
	}
}

// newline ends a line inside a block (a soft or hard break); at the start of the text it is dropped.
func (b *builder) newline() {
	if len(b.buf) == 0 {
		return
	}
	b.flush()
	b.buf = append(b.buf, '\n')
	b.u16++
	b.atLineStart = true
}

// message trims trailing whitespace, clips the entities to what is left and sorts them.
func (b *builder) message() Message {
	end := len(b.buf)
	for end > 0 {
		r, size := utf8.DecodeLastRune(b.buf[:end])
		if !unicode.IsSpace(r) {
			break
		}
		end -= size
	}
	u := b.u16 - utf16Len(b.buf[end:])
	ents := b.ents[:0]
	for _, e := range b.ents {
		if e.Offset+e.Length > u {
			e.Length = u - e.Offset
		}
		if e.Length > 0 {
			ents = append(ents, e)
		}
	}
	sortEntities(ents)
	m := Message{Text: string(b.buf[:end])}
	if len(ents) > 0 {
		m.Entities = slices.Clip(ents)
	}
	return m
}

// sortEntities orders entities by offset, the outer of two nested entities first.
func sortEntities(ents []models.MessageEntity) {
	slices.SortStableFunc(ents, func(a, b models.MessageEntity) int {
		if a.Offset != b.Offset {
			return a.Offset - b.Offset
		}
		return b.Length - a.Length
	})
}

func (b *builder) appendMessage(m Message) {
	if m.Text == "" {
		return
	}
	b.flush()
	start := b.u16
	b.write([]byte(m.Text))
	for _, e := range m.Entities {
		e.Offset += start
		b.ents = append(b.ents, e)
	}
}
