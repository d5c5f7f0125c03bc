package reply

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"aurabot/bot/render"
)

// streamingParts are the messages of a reply while it streams: the last ends with the cursor.
func streamingParts(r *render.Incremental, md string) []render.Message {
	frozen, rest := r.Render(md)
	tail := render.Split(rest, maxText-render.UTF16Len(cursor))
	if len(tail) > 0 {
		tail[len(tail)-1].Text += cursor
	}
	return append(frozen, tail...)
}

// finalParts are the messages of a finished reply: the text, and the notice under it in italics.
func finalParts(r *render.Incremental, md, notice string) []render.Message {
	if r == nil {
		r = render.NewIncremental(maxText)
	}
	frozen, m := r.Render(md)
	if notice != "" {
		sep := "\n\n"
		if m.Text == "" {
			sep = ""
		}
		off := render.UTF16Len(m.Text + sep)
		m.Text += sep + notice
		m.Entities = append(slices.Clone(m.Entities), models.MessageEntity{Type: models.MessageEntityTypeItalic, Offset: off, Length: render.UTF16Len(notice)})
	}
	return append(frozen, render.Split(m, maxText)...)
}

// noticeParts are the messages of a notice: plain text, split like an answer when it is long.
func noticeParts(text string) []render.Message {
	return render.Split(render.Message{Text: text}, maxText)
}

// readable reports whether text will do as a first message: a line, or a word and firstWord runes.
func readable(text string) bool {
	if strings.ContainsRune(text, '\n') {
		return true
	}
	t := strings.TrimLeft(text, " \t")
	n := utf8.RuneCountInString(t)
	return n >= 4*firstWord || n >= firstWord && strings.ContainsAny(t, " \t")
}
