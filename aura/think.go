package aura

import "strings"

// A reasoning model served without a reasoning parser (llama.cpp without --reasoning-format, a
// chatbot-ui server in front of DeepSeek-R1 or Qwen3) writes its thinking into the content, as a
// block that starts the answer: "<think>\n…\n</think>\n\nThe answer".
const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	thinkSpace = " \t\r\n" // the whitespace around the block
)

// thinkSplitter splits an answer's text, fed piece by piece, into the thinking of a leading
// <think>…</think> block and the answer. Text that does not start with the block (after
// whitespace) is all answer, byte for byte; the whitespace after </think> is dropped.
type thinkSplitter struct {
	state thinkState
	// Held back until the next piece tells: leading whitespace and a start of "<think>", or a
	// start of "</think>".
	space strings.Builder
	held  string
}

type thinkState uint8

const (
	thinkBefore thinkState = iota // nothing but whitespace yet, or the start of "<think>"
	thinkInside
	thinkAfter // after "</think>", before the answer's first non-space
	thinkNone  // the answer: everything passes
)

// push takes the next piece of the text and returns what of it is thinking and what is answer.
func (s *thinkSplitter) push(text string) (thinking, answer string) {
	switch s.state {
	case thinkNone:
		return "", text
	case thinkBefore:
		if s.held == "" {
			rest := strings.TrimLeft(text, thinkSpace)
			s.space.WriteString(text[:len(text)-len(rest)])
			if text = rest; text == "" {
				return "", ""
			}
		}
		t := s.held + text // held is at most a few bytes: this costs the new text alone
		switch {
		case strings.HasPrefix(t, thinkOpen):
			s.state, s.held = thinkInside, ""
			s.space.Reset()
			return s.push(t[len(thinkOpen):])
		case strings.HasPrefix(thinkOpen, t):
			s.held = t
			return "", ""
		}
		answer = s.space.String() + t
		s.state, s.held = thinkNone, ""
		s.space.Reset()
		return "", answer
	case thinkInside:
		t := s.held + text
		if i := strings.Index(t, thinkClose); i >= 0 {
			s.state, s.held = thinkAfter, ""
			_, answer = s.push(t[i+len(thinkClose):])
			return t[:i], answer
		}
		keep := tagStart(t, thinkClose)
		s.held = t[len(t)-keep:]
		return t[:len(t)-keep], ""
	default: // thinkAfter
		rest := strings.TrimLeft(text, thinkSpace)
		if rest == "" {
			return "", ""
		}
		s.state = thinkNone
		return "", rest
	}
}

// end returns what is held back when the text ends: an unfinished "<think>" is answer, an
// unfinished "</think>" thinking.
func (s *thinkSplitter) end() (thinking, answer string) {
	h := s.held
	s.held = ""
	switch s.state {
	case thinkBefore:
		h = s.space.String() + h
		s.space.Reset()
		return "", h
	case thinkInside:
		return h, ""
	}
	return "", ""
}

// tagStart returns the length of the longest end of s that is a start of tag, shorter than tag.
func tagStart(s, tag string) int {
	for n := min(len(s), len(tag)-1); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}

// thinkYield passes a reply's chunks on to yield, moving a leading <think> block to Thinking.
type thinkYield struct {
	yield   func(Chunk, error) bool
	split   thinkSplitter
	stopped bool // the caller stopped the iteration
}

func (t *thinkYield) chunk(c Chunk, err error) bool {
	if err != nil || c.Text == "" {
		if c.Usage != nil && !t.flush() { // the usage comes after the last text
			return false
		}
		return t.pass(c, err)
	}
	return t.both(t.split.push(c.Text))
}

// flush passes on what the splitter holds back; it reports whether the caller wants more.
func (t *thinkYield) flush() bool {
	return t.both(t.split.end())
}

func (t *thinkYield) both(thinking, answer string) bool {
	if thinking != "" && !t.pass(Chunk{Thinking: thinking}, nil) {
		return false
	}
	return answer == "" || t.pass(Chunk{Text: answer}, nil)
}

func (t *thinkYield) pass(c Chunk, err error) bool {
	if t.stopped {
		return false
	}
	t.stopped = !t.yield(c, err)
	return !t.stopped
}
