package aura

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

const (
	benchReplySize = 1 << 20
	benchChunkSize = 64
)

// benchReply is 1 MiB of mixed ASCII and multi-byte text, so that 64-byte
// cuts split characters and the UTF-8 carry-over is exercised.
func benchReply() []byte {
	const unit = "The quick brown fox jumps over the lazy dog. Съешь же ещё этих мягких булок. 日本語のテキスト. 😀\n"
	b := bytes.Repeat([]byte(unit), benchReplySize/len(unit)+1)
	return b[:benchReplySize]
}

// runStreamBench relays what srv sends for each iteration and reports
// throughput in reply bytes, and mallocs (of the whole process, the test
// server's included) per 64-byte chunk the server flushed.
func runStreamBench(b *testing.B, c *Client, replyBytes int) {
	b.SetBytes(int64(replyBytes))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	iterations, yields := 0, 0
	for b.Loop() {
		iterations++
		n := 0
		for s, err := range c.Stream(b.Context(), nil) {
			if err != nil {
				b.Fatalf("got error %v after %d bytes", err, n)
			}
			n += len(s)
			yields++
		}
		if n != replyBytes {
			b.Fatalf("got %d bytes, want %d", n, replyBytes)
		}
	}
	runtime.ReadMemStats(&after)
	chunks := float64(iterations) * float64(replyBytes/benchChunkSize)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/chunks, "allocs/chunk")
	b.ReportMetric(float64(yields)/float64(iterations), "yields/op")
}

// BenchmarkStream1MiB relays a 1 MiB chatbot-ui reply that a loopback server
// writes in 64-byte chunks, flushing after each.
func BenchmarkStream1MiB(b *testing.B) {
	reply := benchReply()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for off := 0; off < len(reply); off += benchChunkSize {
			_, _ = w.Write(reply[off : off+benchChunkSize])
			f.Flush()
		}
	}))
	b.Cleanup(srv.Close)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.URL}), len(reply))
}

// BenchmarkNetHTTPBaseline1MiB is BenchmarkStream1MiB without this
// package: plain net/http copying the body to io.Discard. It is the ceiling
// the loopback server's one write syscall per flushed chunk puts on any
// client.
func BenchmarkNetHTTPBaseline1MiB(b *testing.B) {
	reply := benchReply()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for off := 0; off < len(reply); off += benchChunkSize {
			_, _ = w.Write(reply[off : off+benchChunkSize])
			f.Flush()
		}
	}))
	b.Cleanup(srv.Close)
	hc := srv.Client()
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	buf := make([]byte, readBufSize)
	for b.Loop() {
		resp, err := hc.Post(srv.URL, "application/json", nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		if err != nil || n != int64(len(reply)) {
			b.Fatalf("got %d bytes, %v; want %d", n, err, len(reply))
		}
	}
}

// BenchmarkStream1MiBServerBatched is BenchmarkStream1MiB with the server's
// syscalls taken out of the way: it still sends 16384 HTTP chunks of 64
// bytes, but writes them to the socket 64 KiB at a time. What is left is
// mostly the client's own cost.
func BenchmarkStream1MiBServerBatched(b *testing.B) {
	reply := benchReply()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readBody(b, r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			b.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		bw := bufio.NewWriterSize(conn, 64<<10)
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		for off := 0; off < len(reply); off += benchChunkSize {
			_, _ = fmt.Fprintf(bw, "%x\r\n", benchChunkSize)
			_, _ = bw.Write(reply[off : off+benchChunkSize])
			_, _ = bw.WriteString("\r\n")
		}
		_, _ = bw.WriteString("0\r\n\r\n")
		_ = bw.Flush()
	}))
	b.Cleanup(srv.Close)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.URL}), len(reply))
}

// BenchmarkStreamOpenAI1MiB relays 1 MiB of reply text sent as openai
// events of 64 characters' worth of bytes each, one event per flush.
func BenchmarkStreamOpenAI1MiB(b *testing.B) {
	reply := []byte(bytes.ToValidUTF8(benchReply(), nil))
	var events [][]byte
	for off := 0; off < len(reply); {
		end := min(off+benchChunkSize, len(reply))
		for end < len(reply) && end > off && reply[end]&0xC0 == 0x80 {
			end-- // events carry whole characters, as servers send them
		}
		content, _ := json.Marshal(string(reply[off:end]))
		events = append(events, fmt.Appendf(nil, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}`+"\n\n", content))
		off = end
	}
	events = append(events, []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for _, e := range events {
			_, _ = w.Write(e)
			f.Flush()
		}
	}))
	b.Cleanup(srv.Close)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.URL, Protocol: ProtocolOpenAI, Model: "m"}), len(reply))
}

// BenchmarkRelay64 is the client's own cost per 64-byte chunk, with no
// network and no server: one read, the UTF-8 carry-over, one yield.
func BenchmarkRelay64(b *testing.B) {
	reply := benchReply()
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	r := relay{yield: func(string, error) bool { return true }}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	iterations := 0
	for b.Loop() {
		iterations++
		if err := r.run(&fixedReader{data: reply, n: benchChunkSize}, plainDecoder{}, nil, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/(float64(iterations)*float64(len(reply)/benchChunkSize)), "allocs/chunk")
}

// fixedReader returns data n bytes per read.
type fixedReader struct {
	data []byte
	n    int
}

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(r.n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}
