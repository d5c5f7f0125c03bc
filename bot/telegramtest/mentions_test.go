package telegramtest

import (
	"slices"
	"testing"

	"github.com/go-telegram/bot/models"
)

// The fake gives pushed messages the mention entities Telegram would, in UTF-16 units.
func TestMentions(t *testing.T) {
	tests := []struct {
		text string
		want [][2]int // offset, length
	}{
		{"@aura_test_bot hi", [][2]int{{0, 14}}},
		{"🙂 @aura_test_bot", [][2]int{{3, 14}}},
		{"ask @a_bot_x and @aura_test_bot", [][2]int{{4, 8}, {17, 14}}},
		{"mail x@aura_test_bot.com", nil},
		{"@ab is too short", nil},
	}
	for _, tt := range tests {
		var got [][2]int
		for _, e := range mentions(tt.text) {
			if e.Type != models.MessageEntityTypeMention {
				t.Errorf("%q: got an entity of type %s", tt.text, e.Type)
			}
			got = append(got, [2]int{e.Offset, e.Length})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.text, got, tt.want)
		}
	}
	m := &models.Message{Text: "@aura_test_bot", Entities: []models.MessageEntity{}}
	addMentions(m)
	if len(m.Entities) != 0 {
		t.Error("entities a test set (empty) were replaced")
	}
}
