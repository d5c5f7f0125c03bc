package history

import (
	"context"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// CutMarker ends the text sent for a cut answer (StatusCut): the user saw it unfinished.
const CutMarker = "\n\n[this answer was cut off]"

// Sent returns the exact text the bot sends to the model for the turn, which the budget counts:
// a group member's turn as "Author: content", a reply with the message it replies to quoted
// first (see Quote), a cut answer with CutMarker after it; all of it defused (see Defuse). A
// voice message not transcribed yet sends nothing.
func (t Turn) Sent() string {
	switch {
	case t.Untranscribed():
		return ""
	case t.Role == RoleUser:
		text := t.Quote.lead() + t.Content
		if t.Author != "" {
			text = t.Author + ": " + text
		}
		return Defuse(text)
	case t.Role == RoleAssistant && t.Status == StatusCut:
		return Defuse(t.Content + CutMarker)
	}
	return Defuse(t.Content)
}

// lead is what goes before the text of a turn that replies to q: who wrote the message it
// answers, then that message as a Markdown quote and a blank line; "" for no quote.
//
//	(replying to your message)
//	> The capital of France is Paris.
//
//	shorter, please
func (q Quote) lead() string {
	if q.Text == "" {
		return ""
	}
	who := "an earlier message"
	switch {
	case q.Bot:
		who = "your message"
	case q.Author != "":
		who = q.Author
	}
	return "(replying to " + who + ")\n> " + strings.ReplaceAll(q.Text, "\n", "\n> ") + "\n\n"
}

// IsSent reports whether the turn goes to the model: it has text to send or a picture. A voice
// message not transcribed yet does not.
func (t Turn) IsSent() bool { return t.Sent() != "" || t.ImageCount() > 0 }

// special is the shape of a special token, such as "<|endoftext|>".
var special = regexp.MustCompile(`<\|[A-Za-z0-9_.-]{1,64}\|>`)

// Defuse returns s with a zero-width space (U+200B, one cl100k_base token) after the "<|" of
// everything shaped like a special token; the text looks the same, and a second pass changes
// nothing. The bot sends and counts every text defused: tiktoken (chatbot-ui) throws on a
// special token such as "<|endoftext|>" in ordinary text, and other servers may read
// "<|im_start|>" as a real template token. aura sends texts as given: this is the one place.
func Defuse(s string) string {
	if !strings.Contains(s, "<|") {
		return s
	}
	return special.ReplaceAllStringFunc(s, func(m string) string { return "<|\u200b" + m[2:] })
}

// CountTokens returns the number of tokens of s in the cl100k_base encoding, the count a
// chatbot-ui server trims its requests by. Special tokens are counted as ordinary text.
func CountTokens(s string) int { return countCl100k(s) }

// count is the size of a text in both units a Budget bounds.
type count struct{ chars, tokens int }

func countOf(s string) count { return count{utf8.RuneCountInString(s), CountTokens(s)} }

// countBatch is how many turns countStored counts at a time.
const countBatch = 500

// countInBackground starts countStored on a goroutine that Close stops and waits for: counting a
// million turns takes minutes, which a restarting bot should not wait for.
func (s *Store) countInBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopCounting, s.counted = cancel, done
	go func() {
		defer close(done)
		_ = countStored(ctx, s)
	}()
}

// countStored fills in token_count and char_count for the turns stored before token_count existed
// (migration 0004 leaves it NULL). Each batch is counted without the write lock, then written in
// one short transaction: a stored turn's text never changes, and a deleted one is not found.
func countStored(ctx context.Context, s *Store) error {
	const what = "history: count tokens of stored turns"
	for after := int64(0); ; {
		ts, err := scanAll(ctx, s.r, scanTurn, uncounted, after, countBatch)
		if err != nil || len(ts) == 0 {
			return sqldb.Fail(what, err)
		}
		ns := make([]count, len(ts))
		for i, t := range ts {
			if err := ctx.Err(); err != nil {
				return err
			}
			ns[i] = countOf(t.Sent())
		}
		err = sqldb.Write(ctx, s.w, what, func(tx *sqlx.Tx) error {
			for i, t := range ts {
				if _, err := tx.ExecContext(ctx, `UPDATE turns SET char_count = ?, token_count = ? WHERE id = ? AND token_count IS NULL`,
					ns[i].chars, ns[i].tokens, t.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = ts[len(ts)-1].ID
	}
}

// uncounted lists the turns left to count after an id, from the index turns_uncounted.
const uncounted = selectTurns + `token_count IS NULL AND id > ? ORDER BY id LIMIT ?`
