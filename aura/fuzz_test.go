package aura

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// piecesReader returns data in pieces whose sizes come from cuts, one byte
// of cuts per read (1 to 8 bytes each); the rest comes in one piece.
type piecesReader struct {
	data []byte
	cuts []byte
}

func (r *piecesReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.cuts) > 0 {
		n = min(n, int(r.cuts[0]%8)+1)
		r.cuts = r.cuts[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// relayAll runs the relay over data cut by cuts and returns the chunks, answer and thinking.
func relayAll(t *testing.T, dec decoder, data, cuts []byte) ([]string, error) {
	var chunks []string
	r := relay{yield: func(c Chunk, err error) bool {
		if err != nil {
			t.Fatalf("relay yielded error %v, want errors only returned", err)
		}
		chunks = append(chunks, c.Text+c.Thinking) // one of them is set
		return true
	}}
	err := r.run(&piecesReader{data: data, cuts: cuts}, dec, nil, 0, 0)
	return chunks, err
}

func FuzzUTF8Chunks(f *testing.F) {
	f.Add([]byte("héllo wörld 😀 日本語 ok"), []byte{0, 1, 2, 0, 0, 1, 3, 0, 0, 0, 1})
	f.Add([]byte("€€€€"), []byte{1, 1, 1, 1, 1, 1})
	f.Add([]byte("\xff\xfe\xc3(\xe2\x82"), []byte{0, 0, 0, 0})
	f.Add([]byte("\xf0\x9f\x98A\xed\xa0\x80"), []byte{2, 0, 1})
	f.Add([]byte("ends inside \xe6\x97"), []byte{7, 7})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		chunks, err := relayAll(t, plainDecoder{}, data, cuts)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if got := strings.Join(chunks, ""); got != string(data) {
			t.Fatalf("got %q, want %q", got, data)
		}
		if utf8.Valid(data) {
			for _, c := range chunks {
				if !utf8.ValidString(c) {
					t.Fatalf("got chunk %q, want valid UTF-8 chunks from valid input", c)
				}
			}
		}
	})
}

// FuzzSSEChunks builds an openai event stream from text (one delta per
// rune run), cuts the bytes anywhere, and checks the text comes back whole.
func FuzzSSEChunks(f *testing.F) {
	f.Add("héllo wörld 😀 \"quoted\" \\ back\nslash", []byte{0, 1, 2, 3, 4, 5, 6, 7}, uint8(3), false)
	f.Add("日本語のテキスト", []byte{5, 5, 5}, uint8(1), true)
	f.Add("", []byte{}, uint8(0), false)
	f.Fuzz(func(t *testing.T, text string, cuts []byte, runesPerDelta uint8, crlf bool) {
		if !utf8.ValidString(text) {
			return // JSON text is valid UTF-8
		}
		nl := "\n"
		if crlf {
			nl = "\r\n"
		}
		var sse strings.Builder
		sse.WriteString(": ping" + nl + nl)
		sse.WriteString(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + nl + nl)
		runes := []rune(text)
		step := int(runesPerDelta%5) + 1
		for i := 0; i < len(runes); i += step {
			content, _ := json.Marshal(string(runes[i:min(i+step, len(runes))]))
			fmt.Fprintf(&sse, `data: {"choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}%s%s`, content, nl, nl)
		}
		sse.WriteString(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + nl + nl + "data: [DONE]" + nl + nl)

		chunks, err := relayAll(t, &sseDecoder{}, []byte(sse.String()), cuts)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if got := strings.Join(chunks, ""); got != text {
			t.Fatalf("got %q, want %q", got, text)
		}
	})
}

// FuzzSSEDecoder feeds arbitrary bytes to the openai decoder: whatever the
// server sends, the decoder must not panic, and the text it passes on is
// valid UTF-8 (encoding/json turns bad bytes in strings into U+FFFD).
func FuzzSSEDecoder(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\"},\"finish_reason\":\"length\"}]}\n\n"), []byte{1, 2, 3})
	f.Add([]byte("event: error\ndata: {\"message\":\"x\",\"code\":500}\n\ndata: [DONE]\n\n"), []byte{7})
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\r\r"), []byte{0})
	f.Add([]byte("error: {\"code\":\"x\"}\n\ndata: {\"object\":\"error\"}\n\n"), []byte{})
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"\\ud83d\",\"reasoning\":{},\"content\":\"x\"}}]}\n\n"), []byte{3})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		chunks, _ := relayAll(t, &sseDecoder{}, data, cuts)
		for _, c := range chunks {
			if !utf8.ValidString(c) {
				t.Fatalf("got chunk %q, want valid UTF-8", c)
			}
		}
	})
}
