package render

import (
	"bytes"
	"slices"
	"strings"
	"unicode"

	"github.com/go-telegram/bot/models"
	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
)

// tableMaxWidth is the widest table, in monospace columns, shown as an aligned pre block: a phone's
// bubble holds about 40, and a wider pre block wraps its rows and stops reading as a table.
const tableMaxWidth = 40

// table renders a GFM table: a narrow one as a pre block of aligned columns; a wide one, or one
// with links (not clickable in pre), as one line per row, cells joined by " | ", the header bold.
func (r *renderer) table(n *east.Table) {
	var rows [][]Message
	links := false
	for row := n.FirstChild(); row != nil; row = row.NextSibling() {
		var cells []Message
		for c := row.FirstChild(); c != nil; c = c.NextSibling() {
			sub := renderer{source: r.source}
			sub.children(c)
			m := sub.b.message()
			links = links || slices.ContainsFunc(m.Entities, func(e models.MessageEntity) bool {
				return e.URL != "" || e.Type == models.MessageEntityTypeEmail
			})
			cells = append(cells, m)
		}
		rows = append(rows, append(cells, r.extraCells(row.LastChild())...))
	}
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(c.Text))
		}
	}
	total := 3 * (len(widths) - 1)
	for _, w := range widths {
		total += w
	}
	switch {
	case len(rows) == 0:
		return
	case links || total > tableMaxWidth:
		r.tableLines(rows)
		return
	}
	var lines []string
	for i, row := range rows {
		for len(row) > 0 && row[len(row)-1].Text == "" {
			row = row[:len(row)-1] // empty cells at the end would only leave dangling separators
		}
		cells := make([]string, len(row))
		for j, c := range row {
			align := east.AlignNone
			if j < len(n.Alignments) {
				align = n.Alignments[j]
			}
			cells[j] = pad(c.Text, widths[j], align)
		}
		lines = append(lines, strings.TrimRight(strings.Join(cells, " | "), " "))
		if i == 0 {
			dashes := make([]string, len(widths))
			for j, w := range widths {
				dashes[j] = strings.Repeat("-", w)
			}
			lines = append(lines, strings.Join(dashes, "-+-"))
		}
	}
	r.verbatim(models.MessageEntityTypePre, "", []byte(strings.Join(lines, "\n")))
}

func (r *renderer) tableLines(rows [][]Message) {
	for i, row := range rows {
		if i > 0 {
			r.b.newline()
		}
		if i == 0 {
			r.b.push(models.MessageEntityTypeBold, "", "")
		}
		for j, c := range row {
			if j > 0 {
				r.b.writeString(" | ")
			}
			r.b.appendMessage(c)
		}
		if i == 0 {
			r.b.pop()
		}
	}
}

// extraCells reads back from the source, as plain text, the cells of a body row beyond the
// header's: GFM ignores them, but they are usually text the model meant (an unescaped "|").
func (r *renderer) extraCells(last ast.Node) []Message {
	if last == nil || last.Parent() == nil || last.Parent().Kind() != east.KindTableRow {
		return nil
	}
	lines := last.Lines()
	if lines.Len() == 0 {
		return nil
	}
	stop := lines.At(lines.Len() - 1).Stop
	rest := r.source[stop:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	rest = bytes.TrimSpace(rest)
	rest = bytes.TrimPrefix(rest, []byte("|"))
	if n := len(rest); n > 0 && rest[n-1] == '|' && (n < 2 || rest[n-2] != '\\') {
		rest = rest[:n-1]
	}
	if len(bytes.TrimSpace(rest)) == 0 {
		return nil
	}
	var cells []Message
	start := 0
	for i := 0; i <= len(rest); i++ {
		if i < len(rest) && (rest[i] != '|' || (i > 0 && rest[i-1] == '\\')) {
			continue
		}
		cells = append(cells, Message{Text: string(bytes.TrimSpace(decode(rest[start:i])))})
		start = i + 1
	}
	return cells
}

// pad fills s with spaces to width columns, aligned as the table's delimiter row says.
func pad(s string, width int, align east.Alignment) string {
	gap := width - displayWidth(s)
	if gap <= 0 {
		return s
	}
	switch align {
	case east.AlignRight:
		return strings.Repeat(" ", gap) + s
	case east.AlignCenter:
		return strings.Repeat(" ", gap/2) + s + strings.Repeat(" ", gap-gap/2)
	}
	return s + strings.Repeat(" ", gap)
}

// displayWidth approximates the monospace columns s takes, enough to line up a table: East Asian
// wide characters and emoji take two, combining marks and joiners none.
func displayWidth(s string) int {
	w := 0
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) || (r >= 0xFE00 && r <= 0xFE0F):
		case r >= 0x1100 && r <= 0x115F, r >= 0x2E80 && r <= 0xA4CF, r >= 0xAC00 && r <= 0xD7A3,
			r >= 0xF900 && r <= 0xFAFF, r >= 0xFE30 && r <= 0xFE4F, r >= 0xFF00 && r <= 0xFF60,
			r >= 0xFFE0 && r <= 0xFFE6, r >= 0x1F300 && r <= 0x1FAFF, r >= 0x20000 && r <= 0x3FFFD:
			w += 2
		default:
			w++
		}
	}
	return w
}
