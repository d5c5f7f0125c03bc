package history

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/tiktoken-go/tokenizer/codec"
)

// CutMarker ends the text sent to the model for an answer that broke off
// (StatusCut), so the model knows the user saw it unfinished.
const CutMarker = "\n\n[this answer was cut off]"

// Sent returns the exact text the bot sends to the model for the turn: a
// group member's turn as "Author: content", a cut answer with CutMarker
// after it, any other turn as its content. The budget of Window counts this
// text.
func (t Turn) Sent() string {
	switch {
	case t.Role == RoleUser && t.Author != "":
		return t.Author + ": " + t.Content
	case t.Role == RoleAssistant && t.Status == StatusCut:
		return t.Content + CutMarker
	}
	return t.Content
}

// cl100k is the cl100k_base encoding, built on first use: its vocabulary is
// compiled into the binary (nothing is downloaded), but turning it into a
// map took 9-18 ms here (the first CountTokens), which a program that never
// counts should not pay. It is immutable once built, like a compiled
// regexp, hence package-level.
var cl100k = sync.OnceValue(codec.NewCl100kBase)

// CountTokens returns the number of tokens of s in the cl100k_base encoding,
// the count a chatbot-ui server trims its requests by. Special tokens such
// as "<|endoftext|>" are counted as ordinary text.
func CountTokens(s string) int {
	if s == "" {
		return 0
	}
	n, err := cl100k().Count(s)
	if err != nil {
		// The splitting regexp has no timeout, so this does not happen;
		// should it, every token is at least one byte, so the byte length
		// is a bound that keeps the window within budget.
		return len(s)
	}
	// tiktoken-go v0.10.0 drops U+007F (DEL) without a token, where
	// cl100k_base encodes it as a byte of its own (found by
	// FuzzCountTokens; no other code point is dropped when alone). Each
	// counts one token, the cost of that byte next to letters or alone.
	return n + strings.Count(s, "\x7f")
}

// count is the size of a text in both units a Budget bounds.
type count struct{ chars, tokens int }

func countOf(s string) count {
	return count{utf8.RuneCountInString(s), CountTokens(s)}
}

// Budget bounds what is sent to the model with each request: the system
// prompt plus the window of turns. A zero field sets no bound.
type Budget struct {
	// Chars is the most characters (Unicode code points) of the prompt and
	// the window together; 0 = no bound.
	Chars int
	// Tokens is the model's token limit (cl100k_base tokens) for the prompt,
	// the window and ReserveTokens together; 0 = no bound.
	Tokens int
	// ReserveTokens are kept free out of Tokens: 1000 for a chatbot-ui
	// server, which trims so; the most output tokens asked for with an
	// OpenAI-compatible server.
	ReserveTokens int
	// ImageTokens is what one image costs; unused until turns carry images.
	ImageTokens int
}

// Room returns how long a single message may be, in characters and in
// tokens, when sent with systemPrompt: a message fits if it is no longer
// than both. A value <= 0 means the prompt leaves no room; a unit the
// budget does not bound gives math.MaxInt. A negative Chars or Tokens is a
// bound nothing fits; a negative ReserveTokens counts as 0.
func (b Budget) Room(systemPrompt string) (chars, tokens int) {
	chars, tokens = math.MaxInt, math.MaxInt
	switch {
	case b.Chars < 0:
		chars = -1
	case b.Chars > 0:
		chars = b.Chars - utf8.RuneCountInString(systemPrompt)
	}
	switch {
	case b.Tokens < 0:
		tokens = -1
	case b.Tokens > 0:
		tokens = b.Tokens - max(b.ReserveTokens, 0) - CountTokens(systemPrompt)
	}
	return chars, tokens
}

// PromptHalf is the most a system prompt may take: half of the budget's characters and half of
// its tokens once ReserveTokens are kept free, so that the conversation has the other half. A
// zero field is no bound, as in Budget.
func (b Budget) PromptHalf() Budget {
	half := Budget{Chars: b.Chars / 2}
	if b.Tokens != 0 {
		half.Tokens = (b.Tokens - max(b.ReserveTokens, 0)) / 2
	}
	return half
}

// TooLongError is returned by Window (and Coverage) when the newest user
// turn does not fit the budget with the system prompt. Chars and Tokens are
// the size of the turn as sent (see Turn.Sent); MaxChars and MaxTokens are
// the most it may be with this prompt (Budget.Room), 0 if the prompt leaves
// no room, and math.MaxInt for a unit the budget does not bound.
type TooLongError struct {
	Chars, MaxChars   int
	Tokens, MaxTokens int
}

func (e *TooLongError) Error() string {
	var limits []string
	noRoom := false
	if e.MaxChars != math.MaxInt {
		limits = append(limits, fmt.Sprintf("%d characters", e.MaxChars))
		noRoom = noRoom || e.MaxChars <= 0
	}
	if e.MaxTokens != math.MaxInt {
		limits = append(limits, fmt.Sprintf("%d tokens", e.MaxTokens))
		noRoom = noRoom || e.MaxTokens <= 0
	}
	size := fmt.Sprintf("%d characters, %d tokens", e.Chars, e.Tokens)
	if noRoom {
		return fmt.Sprintf("history: message too long: the system prompt leaves no room for it (it is %s)", size)
	}
	return fmt.Sprintf("history: message too long: it is %s; with this system prompt it may be at most %s",
		size, strings.Join(limits, " and "))
}

// countBatch is how many turns countStored counts at a time.
const countBatch = 500

// countInBackground starts countStored on a goroutine the Store owns:
// Close stops it and waits for it. Counting took 54-149 µs a turn of
// typical size here (BenchmarkCountStored), one to several minutes for a
// million, which Open should not make a restarting bot wait. Window counts
// a turn still uncounted from its text meanwhile, so windows are right from
// the start. What is left when the store closes, or when a write fails, is
// counted after the next Open.
func (s *Store) countInBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopCounting, s.counted = cancel, done
	go func() {
		defer close(done)
		_ = countStored(ctx, s)
	}()
}

// countStored fills in token_count, and recounts char_count, for the turns
// stored before token_count existed (migration 0004 leaves it NULL: SQL
// cannot tokenize). Once every turn is counted it is a single lookup in the
// empty index turns_uncounted.
//
// Each batch is read and counted without holding the write lock, then
// written in one short transaction, so Appends wait at most for that.
func countStored(ctx context.Context, s *Store) error {
	for after := int64(0); ; {
		ts, err := queryTurns(ctx, s.r, uncounted, after, countBatch)
		if err != nil {
			return fmt.Errorf("history: count tokens of stored turns: %w", err)
		}
		if len(ts) == 0 {
			return nil
		}
		ns := make([]count, len(ts))
		for i, t := range ts {
			if err := ctx.Err(); err != nil {
				return err
			}
			ns[i] = countOf(t.Sent())
		}
		if err := saveCounts(ctx, s.w, ts, ns); err != nil {
			return fmt.Errorf("history: count tokens of stored turns: %w", writeFailed(err))
		}
		after = ts[len(ts)-1].ID
	}
}

// uncounted lists the turns left to count after an id, from the index
// turns_uncounted.
const uncounted = `SELECT ` + turnColumns + ` FROM turns
	WHERE token_count IS NULL AND id > ? ORDER BY id LIMIT ?`

// saveCounts stores the counts of turns. A turn's text never changes once
// stored, so counts made outside the transaction stay true; a turn deleted
// meanwhile (/reset) is simply not found.
func saveCounts(ctx context.Context, w *sqlx.DB, ts []Turn, ns []count) error {
	tx, err := w.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, t := range ts {
		if _, err := tx.ExecContext(ctx, `UPDATE turns SET char_count = ?, token_count = ? WHERE id = ? AND token_count IS NULL`,
			ns[i].chars, ns[i].tokens, t.ID); err != nil {
			return err
		}
	}
	return tx.Commit()
}
