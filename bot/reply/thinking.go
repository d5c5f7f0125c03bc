package reply

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"aurabot/bot/render"
)

// Chunk is one piece of a model's reply: the answer's text or a reasoning model's thinking.
type Chunk struct {
	Text     string
	Thinking string
}

// Above the answer, while the model thinks, a reply shows "💭 Thinking… 12 s" and (SHOW_THINKING
// on) the newest liveLines lines, liveRunes characters at most; once the answer begins, "💭 Thought
// for 14 s" and the whole thinking collapsed if at most quoteBytes (under a message and under the
// incremental renderer's chunk). It is never part of the answer, its count or what is stored.
const (
	liveLines  = 3
	liveRunes  = 240
	quoteBytes = 3000
)

// thinking is what a reply knows of the model's thinking: its newest part (at most 2 *
// quoteBytes, bounding memory), and when it began and ended.
type thinking struct {
	tail    strings.Builder
	cut     bool      // the start of the thinking is no longer in tail
	started time.Time // the first thinking that is not whitespace; zero: none yet
	ended   time.Time // when the answer began; zero while the model thinks
}

func (th *thinking) add(s string, now time.Time) {
	if th.started.IsZero() {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return
		}
		th.started = now
	}
	th.tail.WriteString(s)
	if th.tail.Len() > 2*quoteBytes {
		t := th.tail.String()
		keep := t[len(t)-quoteBytes:]
		for len(keep) > 0 && !utf8.RuneStart(keep[0]) {
			keep = keep[1:]
		}
		th.tail.Reset()
		th.tail.WriteString(keep)
		th.cut = true
	}
}

// answering marks the start of the answer, at now: the thinking is over.
func (th *thinking) answering(now time.Time) {
	if !th.started.IsZero() && th.ended.IsZero() {
		th.ended = now
	}
}

// block is the Markdown above the answer at now ("": no thinking); done: the thinking is over.
func (th *thinking) block(show, done bool, now time.Time) string {
	if th.started.IsZero() {
		return ""
	}
	text := strings.TrimSpace(th.tail.String())
	if !done {
		label, quote := "💭 Thinking…", ""
		if d := now.Sub(th.started); d >= time.Second {
			label += " " + duration(d)
		}
		if show {
			quote = newest(text, th.cut)
		}
		return render.Thinking(label, quote)
	}
	end := th.ended
	if end.IsZero() {
		end = now
	}
	label := "💭 Thought for " + duration(end.Sub(th.started))
	if !show || th.cut || len(text) > quoteBytes {
		return render.Thinking(label, "")
	}
	return render.Thinking(label, text)
}

// newest returns the end of text that the live quote shows: its last liveLines lines, at most
// liveRunes characters, cut at a space where it can be, with "…" where it was cut.
func newest(text string, cut bool) string {
	start := len(text)
	for lines := 0; start > 0; start-- {
		if text[start-1] == '\n' {
			if lines++; lines == liveLines {
				break
			}
		}
	}
	if n := utf8.RuneCountInString(text[start:]); n > liveRunes {
		i := start
		for skip := n - liveRunes; skip > 0; skip-- {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
		if sp := strings.IndexAny(text[i:], " \n"); sp >= 0 && sp < 40 {
			i += sp + 1
		}
		start = i
	}
	if start > 0 || cut {
		return "…" + strings.TrimLeft(text[start:], " \n")
	}
	return text
}

// duration says how long the model thought, to the second: "12 s", "1 min 5 s", "2 min".
func duration(d time.Duration) string {
	s := max(int(d.Round(time.Second)/time.Second), 1)
	if s < 60 {
		return strconv.Itoa(s) + " s"
	}
	out := strconv.Itoa(s/60) + " min"
	if s%60 != 0 {
		out += " " + strconv.Itoa(s%60) + " s"
	}
	return out
}
