package aura

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
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

// benchEvents returns the openai events that carry reply, about 64 bytes of
// text each (whole characters, as servers send them), ending with a
// finish_reason and [DONE]; and the text they carry.
func benchEvents() (events [][]byte, text []byte) {
	reply := bytes.ToValidUTF8(benchReply(), nil)
	for off := 0; off < len(reply); {
		end := min(off+benchChunkSize, len(reply))
		for end < len(reply) && end > off && reply[end]&0xC0 == 0x80 {
			end--
		}
		content, _ := json.Marshal(string(reply[off:end]))
		events = append(events, fmt.Appendf(nil, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]}`+"\n\n", content))
		off = end
	}
	events = append(events, []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"))
	return events, reply
}

// rawServer is a loopback HTTP/1.1 server that answers every request with
// the same chunked body, prepared before the benchmark starts: each element
// of pieces goes out as one HTTP chunk, and writeSize bytes of the encoded
// body go to the socket per write call (0: one write per chunk, as a server
// that flushes each chunk does). Unlike an httptest.Server it allocates
// nothing per chunk, so the process's malloc count during a benchmark is
// the client's, plus a constant per request.
type rawServer struct {
	ln   net.Listener
	resp []byte
	cuts []int // offsets in resp where a write ends
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
}

func newRawServer(b *testing.B, pieces [][]byte, writeSize int) *rawServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &rawServer{ln: ln, conn: map[net.Conn]struct{}{}}
	s.resp = []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, p := range pieces {
		s.resp = fmt.Appendf(s.resp, "%x\r\n", len(p))
		s.resp = append(s.resp, p...)
		s.resp = append(s.resp, "\r\n"...)
		if writeSize == 0 {
			s.cuts = append(s.cuts, len(s.resp))
		}
	}
	s.resp = append(s.resp, "0\r\n\r\n"...)
	if writeSize > 0 {
		for off := writeSize; off < len(s.resp); off += writeSize {
			s.cuts = append(s.cuts, off)
		}
	}
	s.cuts = append(s.cuts, len(s.resp))
	s.wg.Go(s.accept)
	b.Cleanup(s.close)
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

func (s *rawServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(conn) })
	}
}

// serve answers the requests of one kept-alive connection.
func (s *rawServer) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		prev := 0
		for _, cut := range s.cuts {
			if _, err := conn.Write(s.resp[prev:cut]); err != nil {
				return
			}
			prev = cut
		}
	}
}

func (s *rawServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// splitEvery cuts b into pieces of n bytes.
func splitEvery(b []byte, n int) [][]byte {
	var pieces [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		pieces = append(pieces, b[:k])
		b = b[k:]
	}
	return pieces
}

// mallocs returns the process's count of heap allocations so far.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// runStreamBench relays what the server sends for each iteration and
// reports throughput in reply bytes, and allocations per chunk the server
// sent. With a rawServer those are the client's: net/http's and this
// package's.
func runStreamBench(b *testing.B, c *Client, replyBytes, chunks int) {
	b.SetBytes(int64(replyBytes))
	b.ReportAllocs()
	before := mallocs()
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
	b.ReportMetric(float64(mallocs()-before)/float64(iterations*chunks), "allocs/chunk")
	b.ReportMetric(float64(yields)/float64(iterations), "yields/op")
}

// BenchmarkStream1MiB relays a 1 MiB chatbot-ui reply that a loopback server
// writes in 64-byte chunks, one write syscall each.
func BenchmarkStream1MiB(b *testing.B) {
	reply := benchReply()
	pieces := splitEvery(reply, benchChunkSize)
	srv := newRawServer(b, pieces, 0)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.url()}), len(reply), len(pieces))
}

// BenchmarkNetHTTPBaseline1MiB is BenchmarkStream1MiB without this
// package: plain net/http copying the body to io.Discard. It is the ceiling
// the loopback server's one write syscall per chunk puts on any client,
// and net/http's own share of the allocations.
func BenchmarkNetHTTPBaseline1MiB(b *testing.B) {
	reply := benchReply()
	pieces := splitEvery(reply, benchChunkSize)
	srv := newRawServer(b, pieces, 0)
	hc := &http.Client{Transport: &http.Transport{}}
	b.Cleanup(hc.CloseIdleConnections)
	b.SetBytes(int64(len(reply)))
	b.ReportAllocs()
	buf := make([]byte, readBufSize)
	before := mallocs()
	iterations := 0
	for b.Loop() {
		iterations++
		resp, err := hc.Post(srv.url(), "application/json", nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
		resp.Body.Close()
		if err != nil || n != int64(len(reply)) {
			b.Fatalf("got %d bytes, %v; want %d", n, err, len(reply))
		}
	}
	b.ReportMetric(float64(mallocs()-before)/float64(iterations*len(pieces)), "allocs/chunk")
}

// BenchmarkStream1MiBServerBatched is BenchmarkStream1MiB with the server's
// syscalls taken out of the way: it still sends 16384 HTTP chunks of 64
// bytes, but writes them to the socket 64 KiB at a time. What is left is
// mostly the client's own cost.
func BenchmarkStream1MiBServerBatched(b *testing.B) {
	reply := benchReply()
	pieces := splitEvery(reply, benchChunkSize)
	srv := newRawServer(b, pieces, 64<<10)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.url()}), len(reply), len(pieces))
}

// BenchmarkStreamOpenAI1MiB relays 1 MiB of reply text sent as openai
// events of 64 bytes of text each, one event per HTTP chunk and write.
func BenchmarkStreamOpenAI1MiB(b *testing.B) {
	events, text := benchEvents()
	srv := newRawServer(b, events, 0)
	runStreamBench(b, newTestClient(b, Config{BaseURL: srv.url(), Protocol: ProtocolOpenAI, Model: "m"}), len(text), len(events))
}

// BenchmarkRelay64 is the client's own cost per 64-byte chunk, with no
// network and no server: one read, the UTF-8 carry-over, one yield.
func BenchmarkRelay64(b *testing.B) {
	reply := benchReply()
	runRelayBench(b, plainDecoder{}, splitEvery(reply, benchChunkSize), len(reply))
}

// BenchmarkRelayOpenAI64 is the client's own cost per openai event of 64
// bytes of text, with no network and no server: one read of one event, the
// SSE framing, the JSON decoding, one yield.
func BenchmarkRelayOpenAI64(b *testing.B) {
	events, text := benchEvents()
	runRelayBench(b, nil, events, len(text))
}

// runRelayBench relays pieces, one per read, through a decoder (nil: a new
// sseDecoder for each reply) and reports allocations per piece.
func runRelayBench(b *testing.B, dec decoder, pieces [][]byte, textBytes int) {
	b.SetBytes(int64(textBytes))
	b.ReportAllocs()
	n := 0
	r := relay{yield: func(c Chunk, _ error) bool { n += len(c.Text); return true }}
	before := mallocs()
	iterations := 0
	for b.Loop() {
		iterations++
		n = 0
		d := dec
		if d == nil {
			d = &sseDecoder{}
		}
		if err := r.run(&piecesOf{pieces: pieces}, d, nil, 0, 0); err != nil && !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
		if n != textBytes {
			b.Fatalf("got %d bytes, want %d", n, textBytes)
		}
	}
	b.ReportMetric(float64(mallocs()-before)/float64(iterations*len(pieces)), "allocs/chunk")
}

// piecesOf returns one piece per read.
type piecesOf struct {
	pieces [][]byte
}

func (r *piecesOf) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces = r.pieces[1:]
	return n, nil
}
