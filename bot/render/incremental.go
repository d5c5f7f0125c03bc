package render

import (
	"strings"
	"unicode/utf8"
)

// Incremental renders a Markdown text that only grows at its end (a streaming answer) in time
// bounded by its newest part: rendering all again on every edit costs the square of its length.
//
// Once the unrendered source passes freezeAfter bytes, a chunk at its start (up to chunkMax
// bytes, cut as chunkCut says) is rendered for the last time into frozen messages. A code block
// cut by a freeze is closed in the chunk and reopened after it. Cut points depend only on the
// text, so rendering a finished text in one go gives the messages rendering it while it grew does.
type Incremental struct {
	limit  int       // UTF-16 units per message
	frozen []Message // the messages of the frozen chunks
	base   int       // bytes of the source frozen so far
	reopen string    // the fence line that reopens a code block cut at base, or ""
	prev   string    // the md of the last call, whose first base bytes are frozen
}

// Sizes of the freeze, in bytes of source. A chunk of chunkMax renders into one to three
// messages; the unfrozen rest stays under freezeAfter, so one Render costs at most that much.
const (
	freezeAfter = 6000
	chunkMax    = 4000
)

// NewIncremental returns a renderer for messages of at most limit UTF-16 units.
func NewIncremental(limit int) *Incremental { return &Incremental{limit: limit} }

// Render renders md, which should start with the md of the previous call: the frozen messages
// (final, split at the limit) and the rendered rest, which the caller splits after adding what
// it needs (a cursor, a notice). An md that changes what was frozen is rendered from the start.
func (r *Incremental) Render(md string) (frozen []Message, rest Message) {
	if len(md) < r.base || md[:r.base] != r.prev[:r.base] {
		*r = Incremental{limit: r.limit} // not a continuation: start over
	}
	r.prev = md
	for len(md)-r.base > freezeAfter {
		cut := chunkCut(md, r.base, r.base+chunkMax, fenceOf(r.reopen))
		chunk := r.reopen + md[r.base:cut]
		fence := openFence(chunk)
		if fence != "" {
			chunk = strings.TrimRight(chunk, "\n") + "\n" + fenceOf(fence)
		}
		r.frozen = append(r.frozen, Split(Markdown(chunk), r.limit)...)
		r.base = cut
		r.reopen = ""
		if fence != "" {
			r.reopen = fence + "\n"
		}
	}
	return r.frozen[:len(r.frozen):len(r.frozen)], Markdown(r.reopen + md[r.base:])
}

// chunkCut picks where the chunk md[from:] that may be at most to-from bytes ends: after the
// last blank line outside code, else after the last line break, else after the last space,
// else at the last rune boundary. fence is the fence of a code block open at from, or "".
func chunkCut(md string, from, to int, fence string) int {
	to = min(to, len(md))
	lastBlank, lastLine, lastSpace := -1, -1, -1
	lineStart := from
	for i := from; i < to; i++ {
		switch md[i] {
		case '\n':
			line := md[lineStart:i]
			if f := fenceOf(line); f != "" {
				switch {
				case fence == "":
					fence = f
				case strings.HasPrefix(f, fence[:1]) && len(f) >= len(fence) && strings.TrimSpace(line) == strings.TrimSpace(f):
					fence = ""
				}
			}
			lastLine = i + 1
			if fence == "" && strings.TrimSpace(line) == "" && i > from {
				lastBlank = i + 1
			}
			lineStart = i + 1
		case ' ':
			lastSpace = i + 1
		}
	}
	switch {
	case lastBlank > from:
		return lastBlank
	case lastLine > from:
		return lastLine
	case lastSpace > from:
		return lastSpace
	}
	for to > from+1 && !utf8.RuneStart(md[to]) {
		to--
	}
	return to
}

// fenceOf returns the fence a line opens or closes (its run of ` or ~, three or more, after at
// most three spaces of indentation), or "".
func fenceOf(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return ""
	}
	n := 0
	for n < len(t) && t[n] == t[0] {
		n++
	}
	if n < 3 || (t[0] == '`' && strings.Contains(t[n:], "`")) {
		return ""
	}
	return t[:n]
}

// openFence returns the opening line (info string and all) of a code block src leaves open, or "".
func openFence(src string) string {
	open, openLine := "", ""
	for line := range strings.Lines(src) {
		line = strings.TrimRight(line, "\r\n")
		f := fenceOf(line)
		if f == "" {
			continue
		}
		if open == "" {
			open, openLine = f, strings.TrimLeft(line, " ")
			continue
		}
		if f[0] == open[0] && len(f) >= len(open) && strings.TrimSpace(strings.TrimLeft(line, " ")) == f {
			open, openLine = "", ""
		}
	}
	return openLine
}
