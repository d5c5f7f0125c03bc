package history

import (
	"bytes"
	"container/heap"
	_ "embed"
	"encoding/binary"
	"unicode"
	"unicode/utf8"
)

// The cl100k_base encoding, counted without building it: the 100,256 tokens are embedded
// sorted (cl100k.bin, read-only data of the binary, made from tiktoken-go's table by
// TestCl100kTable), and a token's rank is found by binary search. Nothing is allocated for the
// table (tiktoken-go's map of it takes about 4 MB of heap), and a program that never counts
// never touches it.
//
// cl100k.bin: "cl100k\x00\x01", the count n (uint32), n+1 offsets into the blob (uint32), n
// ranks (uint32), then the blob: the tokens' bytes, in byte order. Little-endian.
//
//go:embed cl100k.bin
var cl100kBin []byte

const cl100kMagic = "cl100k\x00\x01"

type cl100kTable struct {
	n              int
	offsets, ranks []byte // n+1 and n little-endian uint32s
	blob           []byte
}

var cl100k = func() cl100kTable {
	b := cl100kBin
	if len(b) < 12 || string(b[:8]) != cl100kMagic {
		panic("history: cl100k.bin is not a token table")
	}
	n := int(binary.LittleEndian.Uint32(b[8:]))
	offsets := b[12 : 12+4*(n+1)]
	ranks := b[12+4*(n+1) : 12+4*(n+1)+4*n]
	return cl100kTable{n: n, offsets: offsets, ranks: ranks, blob: b[12+4*(n+1)+4*n:]}
}()

func (t *cl100kTable) token(i int) []byte {
	lo := binary.LittleEndian.Uint32(t.offsets[4*i:])
	hi := binary.LittleEndian.Uint32(t.offsets[4*i+4:])
	return t.blob[lo:hi]
}

// rank returns the rank of the token b, and whether b is a token.
func (t *cl100kTable) rank(b []byte) (int, bool) {
	lo, hi := 0, t.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(t.token(m), b); {
		case c < 0:
			lo = m + 1
		case c > 0:
			hi = m
		default:
			return int(binary.LittleEndian.Uint32(t.ranks[4*m:])), true
		}
	}
	return 0, false
}

// countCl100k returns the number of cl100k_base tokens of s: s is cut into pieces as
// cl100k_base's pattern cuts it (see nextPiece), and each piece is byte-pair merged.
func countCl100k(s string) int {
	n := 0
	for len(s) > 0 {
		end := nextPiece(s)
		n += countPiece([]byte(s[:end]))
		s = s[end:]
	}
	return n
}

// nextPiece returns the length of the first piece of s (not empty) as cl100k_base's pattern
// matches it, the first of its alternatives that matches at the start of s:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// A byte that is not UTF-8 is a character of its own, neither a letter, a number nor space.
func nextPiece(s string) int {
	r, w := utf8.DecodeRuneInString(s)
	// 's 't 're 've 'm 'll 'd, in any case.
	if r == '\'' && len(s) > 1 {
		for _, c := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if len(s) >= 1+len(c) && equalFoldASCII(s[1:1+len(c)], c) {
				return 1 + len(c)
			}
		}
	}
	// An optional character that is not \r, \n, a letter or a number, then letters.
	if isLetter(r) {
		return w + runLen(s[w:], isLetter)
	}
	if r != '\r' && r != '\n' && !isNumber(r) {
		if r2, _ := utf8.DecodeRuneInString(s[w:]); w < len(s) && isLetter(r2) {
			return w + runLen(s[w:], isLetter)
		}
	}
	// One to three numbers.
	if isNumber(r) {
		end, k := w, 1
		for end < len(s) && k < 3 {
			r2, w2 := utf8.DecodeRuneInString(s[end:])
			if !isNumber(r2) {
				break
			}
			end, k = end+w2, k+1
		}
		return end
	}
	// An optional space, then characters that are not space, letters or numbers, then line
	// breaks.
	start := 0
	if r == ' ' {
		start = 1
	}
	if p := runLen(s[start:], isOther); p > 0 {
		end := start + p
		return end + runLen(s[end:], isLineBreak)
	}
	// Space: up to the last line break in the run of it, if there is one.
	ws := runLen(s, isSpace)
	if last := lastLineBreak(s[:ws]); last >= 0 {
		return last + 1
	}
	// Space not followed by something else: the run but its last character when something
	// follows, so that the next piece takes it (" word"); else the whole run.
	if ws == len(s) {
		return ws
	}
	_, lw := utf8.DecodeLastRuneInString(s[:ws])
	if ws-lw > 0 {
		return ws - lw
	}
	return ws
}

func isLetter(r rune) bool { return r != utf8.RuneError && unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }
func isSpace(r rune) bool  { return r != utf8.RuneError && unicode.IsSpace(r) }
func isOther(r rune) bool  { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

func isLineBreak(r rune) bool { return r == '\r' || r == '\n' }

// runLen returns the length in bytes of the run of characters at the start of s that are in.
func runLen(s string, in func(rune) bool) int {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !in(r) {
			break
		}
		i += w
	}
	return i
}

// lastLineBreak returns the index of the last \r or \n in s, or -1.
func lastLineBreak(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\r' || s[i] == '\n' {
			return i
		}
	}
	return -1
}

func equalFoldASCII(s, t string) bool {
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// countPiece returns the number of tokens byte-pair merging makes of p: starting from its
// bytes, the adjacent pair whose joined bytes have the lowest rank (the leftmost of equals) is
// joined, until no joined pair is a token.
func countPiece(p []byte) int {
	if _, ok := cl100k.rank(p); ok || len(p) == 1 {
		return 1
	}
	if len(p) > longPiece {
		return countLongPiece(p)
	}
	// bounds[i] is where part i starts; ranks[i] is the rank of parts i and i+1 joined
	// (noRank if that is no token).
	bounds := make([]int, len(p)+1)
	for i := range bounds {
		bounds[i] = i
	}
	pair := func(i int) int {
		if i+2 >= len(bounds) {
			return noRank
		}
		if r, ok := cl100k.rank(p[bounds[i]:bounds[i+2]]); ok {
			return r
		}
		return noRank
	}
	ranks := make([]int, len(p)-1)
	for i := range ranks {
		ranks[i] = pair(i)
	}
	for len(ranks) > 0 {
		best, at := noRank, -1
		for i, r := range ranks {
			if r < best {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		// Join parts at and at+1.
		bounds = append(bounds[:at+1], bounds[at+2:]...)
		ranks = append(ranks[:at], ranks[at+1:]...)
		if at < len(ranks) {
			ranks[at] = pair(at)
		}
		if at > 0 {
			ranks[at-1] = pair(at - 1)
		}
	}
	return len(bounds) - 1
}

const noRank = int(^uint(0) >> 1)

// longPiece is the length past which a piece is merged with a heap, in n log n rather than
// n squared: a megabyte of one letter must not take minutes.
const longPiece = 256

// countLongPiece is countPiece for a long piece: the parts are a linked list, and the pairs a
// heap ordered by rank, then position (the leftmost of equals first); a pair whose parts have
// changed since it was pushed is dropped when it comes up.
func countLongPiece(p []byte) int {
	n := len(p)
	next := make([]int, n) // the next part's start, n past the last
	prev := make([]int, n) // the previous part's start, -1 before the first
	for i := range n {
		next[i], prev[i] = i+1, i-1
	}
	merged := make([]bool, n) // a part joined into the one before it
	h := &pairHeap{}
	push := func(i int) {
		if i < 0 || next[i] >= n {
			return
		}
		if r, ok := cl100k.rank(p[i:next[next[i]]]); ok {
			heap.Push(h, pair{rank: r, at: i, end: next[next[i]]})
		}
	}
	next = append(next, n) // next[n] == n: the end of a pair whose second part is the last
	for i := range n - 1 {
		push(i)
	}
	parts := n
	for h.Len() > 0 {
		top := heap.Pop(h).(pair)
		// Still the same two parts?
		if merged[top.at] || next[top.at] >= n || next[next[top.at]] != top.end {
			continue
		}
		second := next[top.at]
		merged[second] = true
		next[top.at] = next[second]
		if next[top.at] < n {
			prev[next[top.at]] = top.at
		}
		parts--
		push(top.at)
		push(prev[top.at])
	}
	return parts
}

// pair is a pair of adjacent parts of a long piece, starting at at and ending at end.
type pair struct{ rank, at, end int }

// pairHeap is a min-heap (container/heap) of pairs by rank, then position.
type pairHeap []pair

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	return h[i].rank < h[j].rank || h[i].rank == h[j].rank && h[i].at < h[j].at
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pair)) }
func (h *pairHeap) Pop() any {
	x := (*h)[len(*h)-1]
	*h = (*h)[:len(*h)-1]
	return x
}
