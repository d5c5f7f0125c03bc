package aura

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// splitWhole is what thinkSplitter does, for a whole text at once: the reference the chunked
// splitter must agree with.
func splitWhole(s string) (thinking, answer string) {
	rest := strings.TrimLeft(s, thinkSpace)
	if !strings.HasPrefix(rest, thinkOpen) {
		return "", s
	}
	rest = rest[len(thinkOpen):]
	i := strings.Index(rest, thinkClose)
	if i < 0 {
		return rest, ""
	}
	return rest[:i], strings.TrimLeft(rest[i+len(thinkClose):], thinkSpace)
}

// splitPieces runs a thinkSplitter over pieces and joins what it returns; it fails if any
// thinking comes after the answer has begun.
func splitPieces(t testing.TB, pieces []string) (thinking, answer string) {
	t.Helper()
	var s thinkSplitter
	var th, an strings.Builder
	add := func(a, b string) {
		if a != "" && an.Len() > 0 {
			t.Fatalf("got thinking %q after answer %q, want all thinking first", a, an.String())
		}
		th.WriteString(a)
		an.WriteString(b)
	}
	for _, p := range pieces {
		add(s.push(p))
	}
	add(s.end())
	return th.String(), an.String()
}

func TestThinkSplitter(t *testing.T) {
	tests := []struct {
		name          string
		pieces        []string
		think, answer string
	}{
		{name: "no block", pieces: []string{"Hello", " there"}, answer: "Hello there"},
		{name: "leading whitespace kept without a block", pieces: []string{"\n\n", "  Hi"}, answer: "\n\n  Hi"},
		{name: "whitespace only", pieces: []string{" \n", "\t"}, answer: " \n\t"},
		{name: "a tag later is text", pieces: []string{"Use <think> tags"}, answer: "Use <think> tags"},
		{name: "a start of the tag that is not one", pieces: []string{"<thi", "s is <b>"}, answer: "<this is <b>"},
		{name: "an unfinished tag at the end", pieces: []string{"  <thin"}, answer: "  <thin"},
		{name: "one piece", pieces: []string{"<think>\nLet me see.\n</think>\n\nThe answer."}, think: "\nLet me see.\n", answer: "The answer."},
		{name: "split everywhere", pieces: []string{"\n", "<", "th", "ink", ">", "Hm", "m.", "<", "/", "thi", "nk", ">", "\n", "\n", "Yes", "."}, think: "Hmm.", answer: "Yes."},
		{name: "close tag split after a false start", pieces: []string{"<think>a </t", "able> b </", "think>c"}, think: "a </table> b ", answer: "c"},
		{name: "never closed", pieces: []string{"<think>still", " thinking </thi"}, think: "still thinking </thi"},
		{name: "empty block", pieces: []string{"<think>\n\n</think>\n\n", "Hi"}, think: "\n\n", answer: "Hi"},
		{name: "a second block is answer", pieces: []string{"<think>a</think>b <think>c</think>"}, think: "a", answer: "b <think>c</think>"},
		{name: "answer keeps its inner whitespace", pieces: []string{"<think>x</think>", "  ", "\n- one\n- two\n"}, think: "x", answer: "- one\n- two\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			think, answer := splitPieces(t, tt.pieces)
			if think != tt.think || answer != tt.answer {
				t.Errorf("got thinking %q and answer %q, want %q and %q", think, answer, tt.think, tt.answer)
			}
			wt, wa := splitWhole(strings.Join(tt.pieces, ""))
			if wt != think || wa != answer {
				t.Errorf("the whole text splits into %q and %q, the pieces into %q and %q", wt, wa, think, answer)
			}
		})
	}
}

// FuzzThinkSplitter cuts any text anywhere: the splitter gives what the whole text gives, all
// thinking before the answer, and never a piece cut inside a UTF-8 sequence of valid text.
func FuzzThinkSplitter(f *testing.F) {
	f.Add("<think>\nreasoning</think>\n\nanswer", []byte{1, 2, 3, 4, 5, 6, 7})
	f.Add("  <think>a</thi", []byte{0, 0, 0})
	f.Add("<think></think>", []byte{6, 1})
	f.Add("<thin", []byte{2})
	f.Add("plain 😀 text", []byte{3, 3})
	f.Add("<think>日本</think>語", []byte{4, 1, 1, 1})
	f.Fuzz(func(t *testing.T, text string, cuts []byte) {
		var pieces []string
		rest := text
		for _, c := range cuts {
			if rest == "" {
				break
			}
			n := min(int(c%9), len(rest))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		var s thinkSplitter
		var think, answer strings.Builder
		for _, p := range pieces {
			th, an := s.push(p)
			if th != "" && answer.Len() > 0 {
				t.Fatalf("got thinking %q after the answer began", th)
			}
			if utf8.ValidString(p) && (!utf8.ValidString(th) || !utf8.ValidString(an)) {
				t.Fatalf("piece %q gave %q and %q: want valid UTF-8 from valid UTF-8", p, th, an)
			}
			think.WriteString(th)
			answer.WriteString(an)
		}
		th, an := s.end()
		think.WriteString(th)
		answer.WriteString(an)
		wt, wa := splitWhole(text)
		if think.String() != wt || answer.String() != wa {
			t.Fatalf("pieces %q: got %q and %q, want %q and %q", pieces, think.String(), answer.String(), wt, wa)
		}
	})
}

// reasoningEvent is an openai chunk carrying reasoning in the given field ("" for content).
func reasoningEvent(field, text string) string {
	if field == "" {
		field = "content"
	}
	b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{field: text}, "finish_reason": nil}}})
	return "data: " + string(b) + "\n\n"
}

const sseEnd = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"

// Every dialect of thinking arrives as Thinking chunks, before the answer, which is exact.
func TestChatThinking(t *testing.T) {
	thinking := []string{"The user ", "greets me.\n", "I should greet back."}
	answer := []string{"Hello", ", café 😀!"}
	tagged := []string{"<th", "ink>\n", "The user ", "greets me.\n", "I should greet back.", "\n</", "think", ">\n\n", "Hello", ", café 😀!"}
	tests := []struct {
		name     string
		protocol string
		body     []string // written and flushed one by one
		want     string   // the thinking
	}{
		{name: "openai reasoning_content", protocol: ProtocolOpenAI, body: events("reasoning_content", thinking, answer), want: strings.Join(thinking, "")},
		{name: "openai reasoning", protocol: ProtocolOpenAI, body: events("reasoning", thinking, answer), want: strings.Join(thinking, "")},
		{name: "openai <think> in the content", protocol: ProtocolOpenAI, body: events("", nil, tagged), want: "\n" + strings.Join(thinking, "") + "\n"},
		{name: "chatbot-ui <think>", protocol: ProtocolChatbotUI, body: tagged, want: "\n" + strings.Join(thinking, "") + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				readBody(t, r)
				for _, p := range tt.body {
					flushWrite(w, p)
				}
			}))
			t.Cleanup(srv.Close)
			c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: tt.protocol, Model: "m"})
			r, _ := collectChat(t, c.Chat(t.Context(), "", nil))
			if r.err != nil {
				t.Fatalf("got error %v, want none", r.err)
			}
			if got, want := r.text(), strings.Join(answer, ""); got != want {
				t.Errorf("got answer %q, want %q", got, want)
			}
			if r.thinking != tt.want {
				t.Errorf("got thinking %q, want %q", r.thinking, tt.want)
			}
			// Stream is the answer alone.
			if got := collect(t, c.Stream(t.Context(), nil)).text(); got != strings.Join(answer, "") {
				t.Errorf("Stream: got %q, want the answer alone", got)
			}
		})
	}
}

// events is an openai stream: each piece of thinking in field ("": in the content), then each
// piece of the answer, then the end.
func events(field string, thinking, answer []string) []string {
	var out []string
	for _, s := range thinking {
		out = append(out, reasoningEvent(field, s))
	}
	for _, s := range answer {
		out = append(out, reasoningEvent("", s))
	}
	return append(out, sseEnd)
}

// Thinking and answer keep their order within one read, and a reasoning field of a shape the
// client does not know (an object) or null costs nothing; a server sending both names of the
// field gives the text once.
func TestOpenAIReasoningShapes(t *testing.T) {
	body := sse("\n",
		`data: {"choices":[{"index":0,"delta":{"reasoning_content":"a","reasoning":"a"}}]}`,
		`data: {"choices":[{"index":0,"delta":{"content":"1"}}]}`,
		`data: {"choices":[{"index":0,"delta":{"reasoning":"b"}}]}`,
		`data: {"choices":[{"index":0,"delta":{"reasoning":{"summary":"x"},"content":"2"}}]}`,
		`data: {"choices":[{"index":0,"delta":{"reasoning_content":null,"content":"3"},"finish_reason":"stop"}]}`,
		`data: [DONE]`,
	)
	var got []string
	r := relay{yield: func(c Chunk, _ error) bool {
		if c.Thinking != "" {
			got = append(got, "think:"+c.Thinking)
		} else {
			got = append(got, c.Text)
		}
		return true
	}}
	if err := r.run(strings.NewReader(body), &sseDecoder{}, nil, 0, 0); err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if want := "think:a|1|think:b|23"; strings.Join(got, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
	}
}

// A model that thinks for longer than the idle timeout, sending reasoning all the while, is not
// idle: thinking is the server's activity.
func TestThinkingIsActivity(t *testing.T) {
	const idle = 500 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(t, r)
		for i := range 10 {
			flushWrite(w, reasoningEvent("reasoning_content", fmt.Sprintf("step %d. ", i)))
			// The model's pace: ten steps a fifth of the idle timeout apart, twice the
			// idle timeout in all before the first text of the answer.
			time.Sleep(idle / 5)
		}
		flushWrite(w, reasoningEvent("", "Done."))
		flushWrite(w, sseEnd)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m", IdleTimeout: idle})
	r, _ := collectChat(t, c.Chat(t.Context(), "", nil))
	if r.err != nil || r.text() != "Done." {
		t.Fatalf("got (%q, %v), want (\"Done.\", nil)", r.text(), r.err)
	}
	if !strings.HasPrefix(r.thinking, "step 0. ") || !strings.HasSuffix(r.thinking, "step 9. ") {
		t.Errorf("got thinking %q, want the ten steps", r.thinking)
	}
}
