package conversation

import (
	"strings"
	"unicode/utf16"
)

// utf16Units is text in UTF-16 code units, as Telegram counts entity offsets.
func utf16Units(text string) []uint16 { return utf16.Encode([]rune(text)) }

// unitsString turns UTF-16 code units back into a string.
func unitsString(units []uint16) string { return string(utf16.Decode(units)) }

// equalFoldUnits reports whether the UTF-16 units spell s, ignoring case.
func equalFoldUnits(units []uint16, s string) bool {
	return strings.EqualFold(unitsString(units), s)
}
