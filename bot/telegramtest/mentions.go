package telegramtest

import (
	"regexp"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"
)

// mentionPattern is an @username as Telegram recognises one in a message: 3 to 32 letters,
// digits and underscores, not inside a word (x@example.com is no mention).
var mentionPattern = regexp.MustCompile(`(?:^|[^A-Za-z0-9_@])(@[A-Za-z0-9_]{3,32})(?:$|[^A-Za-z0-9_])`)

// addMentions gives an incoming message the mention entities Telegram would: for each
// @username in its text (or caption) whose entities a test left nil. A test that wants a
// message without them sets an empty, non-nil slice.
func addMentions(m *models.Message) {
	if m == nil {
		return
	}
	if m.Entities == nil {
		m.Entities = mentions(m.Text)
	}
	if m.CaptionEntities == nil {
		m.CaptionEntities = mentions(m.Caption)
	}
}

// mentions returns the mention entities of text, in UTF-16 units as Telegram counts.
func mentions(text string) []models.MessageEntity {
	var out []models.MessageEntity
	for start := 0; start < len(text); {
		loc := mentionPattern.FindStringSubmatchIndex(text[start:])
		if loc == nil {
			break
		}
		from, to := start+loc[2], start+loc[3]
		out = append(out, models.MessageEntity{
			Type:   models.MessageEntityTypeMention,
			Offset: len(utf16.Encode([]rune(text[:from]))),
			Length: len(utf16.Encode([]rune(text[from:to]))),
		})
		start = to
	}
	return out
}
