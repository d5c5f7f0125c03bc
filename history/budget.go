package history

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Budget bounds what is sent to the model with each request: the system prompt plus the window
// of turns. A zero field sets no bound.
type Budget struct {
	// Chars is the most characters (Unicode code points) of the prompt and the window together.
	Chars int `env:"AURA_MAX_LENGTH" envDefault:"24576"`
	// Tokens is the model's token limit (cl100k_base tokens) for the prompt, the window and
	// ReserveTokens together.
	Tokens int
	// ReserveTokens are kept free out of Tokens: 1000 for a chatbot-ui server, which trims so;
	// the most output tokens asked for with an OpenAI-compatible server.
	ReserveTokens int
	// ImageTokens is what one image costs.
	ImageTokens int `env:"AURA_IMAGE_TOKENS" envDefault:"800"`
	// PerMessage is what a server's chat template adds around each message (role markers,
	// end-of-turn tokens), and once more for the reply's priming: a request of n messages costs
	// (n+1)*PerMessage on top of its texts. 0 for chatbot-ui, which counts the texts alone.
	PerMessage int `env:"AURA_TOKENS_PER_MESSAGE" envDefault:"8"`
	// Summaries says that a conversation's summary leads the context after the system prompt,
	// instead of the turns it holds (see Request); false: summaries are neither sent nor asked
	// for.
	Summaries bool
}

func (b Budget) perMessage() int { return max(b.PerMessage, 0) }

// pool returns what the turns of a request may take with systemPrompt, each turn's PerMessage
// included: the budget less the prompt (and its PerMessage), the reply's priming and
// ReserveTokens. A unit the budget does not bound gives math.MaxInt; a negative bound, -1.
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

// Room returns how long a single message may be, in characters and in tokens of its text, when
// sent with systemPrompt. A value <= 0 means the prompt leaves no room; a unit the budget does
// not bound gives math.MaxInt; a negative Chars or Tokens is a bound nothing fits.
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

// RequestTokens is what the budget counts for a request of systemPrompt and turns (as Request
// returns them), from the counts stored with the turns: a server's own count of the prompt it
// built (usage.prompt_tokens) can be checked against it.
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

// TooLongError is returned by Request (and Report) when the newest user turn does not fit the
// budget with the system prompt: it is Chars and Tokens long as sent, and may be at most
// MaxChars and MaxTokens (Budget.Room; 0 for no room, math.MaxInt for no bound).
type TooLongError struct {
	Chars, MaxChars   int
	Tokens, MaxTokens int
}

func (e *TooLongError) Error() string {
	var limits []string
	noRoom := false
	if e.MaxChars != math.MaxInt {
		limits = append(limits, fmt.Sprintf("%d characters", e.MaxChars))
		noRoom = e.MaxChars <= 0
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
