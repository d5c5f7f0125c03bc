package history

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"aurabot/history/internal/sqldb"
)

// CutMarker ends the text sent to the model for an answer that broke off
// (StatusCut), so the model knows the user saw it unfinished.
const CutMarker = "\n\n[this answer was cut off]"

// Sent returns the exact text the bot sends to the model for the turn: a
// group member's turn as "Author: content", a reply with the message it
// replies to quoted before its content (see Quote), a cut answer with CutMarker
// after it, any other turn as its content; all of it with special tokens
// defused (see Defuse). A voice message not transcribed yet sends nothing.
// The budget of Window counts this text; a turn with no text and no picture
// is not sent at all (IsSent).
func (t Turn) Sent() string {
	switch {
	case t.Untranscribed():
		return "" // a voice message not heard yet: nothing to send
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
	var b strings.Builder
	b.Grow(len(q.Text) + len(who) + 32)
	b.WriteString("(replying to " + who + ")\n")
	for line := range strings.SplitSeq(q.Text, "\n") {
		b.WriteString("> " + line + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// IsSent reports whether the turn goes to the model: it has text to send or a picture. A voice
// message not transcribed yet does not.
func (t Turn) IsSent() bool { return t.Sent() != "" || t.ImageCount() > 0 }

// defuser goes between "<|" and a special token's name; see Defuse.
const defuser = "\u200b"

// Defuse returns s with a zero-width space (U+200B, one cl100k_base token)
// after the "<|" of everything shaped like a special token: "<|", 1 to 64
// letters, digits, "_", "." or "-", then "|>". The bot sends every text
// (the system prompt, each turn) defused, and counts it so: a chatbot-ui
// server counts tokens with tiktoken, which throws on a special token such
// as "<|endoftext|>" in ordinary text (the server answers 500, for that
// request and every later one that carries the turn), and other servers may
// read "<|im_start|>" or "<|eot_id|>" as a real template token. The text
// looks the same. A second pass changes nothing.
//
// aura.DefuseSpecialTokens is the same function, as the chatbot-ui wire's own
// guard; a test holds them equal.
func Defuse(s string) string {
	i := specialStart(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i >= 0 {
		b.WriteString(s[:i+2])
		b.WriteString(defuser)
		s = s[i+2:]
		i = specialStart(s)
	}
	b.WriteString(s)
	return b.String()
}

// specialStart returns the index of the first "<|" in s that starts a
// special token's shape, or -1.
func specialStart(s string) int {
	off := 0
	for {
		i := strings.Index(s[off:], "<|")
		if i < 0 {
			return -1
		}
		i += off
		if n := specialName(s[i+2:]); n > 0 && strings.HasPrefix(s[i+2+n:], "|>") {
			return i
		}
		off = i + 1
	}
}

// specialName returns the length of the name at the start of s: up to 64
// letters, digits, "_", "." or "-"; 0 if there is none or it is longer.
func specialName(s string) int {
	n := 0
	for n < len(s) && n <= 64 {
		c := s[n]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			break
		}
		n++
	}
	if n > 64 {
		return 0
	}
	return n
}

// CountTokens returns the number of tokens of s in the cl100k_base encoding,
// the count a chatbot-ui server trims its requests by (see cl100k.go).
// Special tokens such as "<|endoftext|>" are counted as ordinary text.
func CountTokens(s string) int { return countCl100k(s) }

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
	Chars int `env:"AURA_MAX_LENGTH" envDefault:"24576"`
	// Tokens is the model's token limit (cl100k_base tokens) for the prompt,
	// the window and ReserveTokens together; 0 = no bound.
	Tokens int
	// ReserveTokens are kept free out of Tokens: 1000 for a chatbot-ui
	// server, which trims so; the most output tokens asked for with an
	// OpenAI-compatible server.
	ReserveTokens int
	// ImageTokens is what one image costs.
	ImageTokens int `env:"AURA_IMAGE_TOKENS" envDefault:"800"`
	// PerMessage is what a server's chat template adds around each message
	// (role markers, end-of-turn tokens), counted for the system prompt and
	// every turn, and once more for the reply's priming (the header that
	// starts the answer): a request of n messages costs (n+1)*PerMessage on
	// top of its texts. 0 for a server that counts the texts alone
	// (chatbot-ui). A negative value counts as 0.
	PerMessage int `env:"AURA_TOKENS_PER_MESSAGE" envDefault:"8"`
	// Summaries says that a conversation's summary, when it has one, leads the context after
	// the system prompt and is counted with it, and that the turns it holds are not sent (see
	// Summary and Request). false: summaries are neither sent nor asked for. The conversation
	// sets it from its SUMMARIES setting.
	Summaries bool
}

// perMessage is b.PerMessage, at least 0.
func (b Budget) perMessage() int { return max(b.PerMessage, 0) }

// pool returns what the turns of a request may take with systemPrompt,
// each turn's PerMessage included: the budget less the prompt (and its
// PerMessage), the reply's priming and ReserveTokens. A unit the budget does
// not bound gives math.MaxInt; a negative Chars or Tokens, -1.
func (b Budget) pool(systemPrompt string) (chars, tokens int) {
	chars, tokens = math.MaxInt, math.MaxInt
	switch {
	case b.Chars < 0:
		chars = -1
	case b.Chars > 0:
		chars = b.Chars - utf8.RuneCountInString(Defuse(systemPrompt))
	}
	switch {
	case b.Tokens < 0:
		tokens = -1
	case b.Tokens > 0:
		tokens = b.Tokens - max(b.ReserveTokens, 0) - CountTokens(Defuse(systemPrompt)) - 2*b.perMessage()
	}
	return chars, tokens
}

// Room returns how long a single message may be, in characters and in
// tokens of its text, when sent with systemPrompt: a message fits if it is
// no longer than both. A value <= 0 means the prompt leaves no room; a unit
// the budget does not bound gives math.MaxInt. A negative Chars or Tokens is
// a bound nothing fits; a negative ReserveTokens counts as 0.
func (b Budget) Room(systemPrompt string) (chars, tokens int) {
	chars, tokens = b.pool(systemPrompt)
	if tokens != math.MaxInt {
		tokens -= b.perMessage()
	}
	return chars, tokens
}

// PromptHalf is the most a system prompt may take: half of the budget's characters, and half of
// its tokens once ReserveTokens and the reply's priming are kept free, less the prompt's own
// PerMessage, so that the conversation has the other half. A zero field is no bound, as in
// Budget; a token bound too small to leave the prompt anything is -1, which nothing fits.
func (b Budget) PromptHalf() Budget {
	half := Budget{Chars: b.Chars / 2}
	if b.Tokens != 0 {
		half.Tokens = (b.Tokens-max(b.ReserveTokens, 0)-b.perMessage())/2 - b.perMessage()
		if half.Tokens <= 0 {
			half.Tokens = -1
		}
	}
	return half
}

// RequestTokens is what the budget counts for a request of systemPrompt and turns (as Window
// returns them): their tokens, each message's PerMessage, the reply's priming and each image's
// ImageTokens. It uses the counts stored with the turns, so it costs nothing but a loop. A
// server that reports the size of the prompt it built (usage.prompt_tokens) can be checked
// against it.
func (b Budget) RequestTokens(systemPrompt string, turns []Turn) int {
	pm := b.perMessage()
	n := CountTokens(Defuse(systemPrompt)) + 2*pm
	for _, t := range turns {
		if !t.IsSent() {
			continue
		}
		tokens := t.tokens
		if !t.counted {
			tokens = CountTokens(t.Sent())
		}
		n += tokens + pm + t.ImageCount()*max(b.ImageTokens, 0)
	}
	return n
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

// countInBackground starts countStored on a goroutine the Store owns: Close stops it and waits
// for it. Counting a million turns takes minutes (BenchmarkCountStored), which Open should not
// make a restarting bot wait; Request counts a turn still uncounted from its text meanwhile.
// What is left when the store closes, or a write fails, is counted after the next Open.
func (s *Store) countInBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopCounting, s.counted = cancel, done
	go func() {
		defer close(done)
		_ = countStored(ctx, s)
	}()
}

// countStored fills in token_count, and recounts char_count, for the turns stored before
// token_count existed (migration 0004 leaves it NULL: SQL cannot tokenize). Once every turn is
// counted it is a single lookup in the empty index turns_uncounted.
//
// Each batch is read and counted without holding the write lock, then written in one short
// transaction, so Appends wait at most for that. A turn's text never changes once stored, so
// the counts stay true; a turn deleted meanwhile (/reset) is simply not found.
func countStored(ctx context.Context, s *Store) error {
	const what = "history: count tokens of stored turns"
	for after := int64(0); ; {
		ts, err := queryTurns(ctx, s.r, uncounted, after, countBatch)
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
