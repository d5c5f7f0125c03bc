package aura

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader for the few fields of an openai stream chunk. It
// walks the bytes in place and allocates nothing, where encoding/json would
// allocate a decode state and a string per chunk, and a reply is hundreds
// of chunks. Values it is not asked about are skipped, checked only
// loosely. Object keys are compared as raw bytes (a key written with
// escapes does not match; no server does that).

var errJSON = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString returns the index just past the string literal at b[i].
func scanString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errJSON
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
		case c < 0x20:
			return 0, errJSON
		}
	}
	return 0, errJSON
}

// skipValue returns the index just past the value at or after i.
func skipValue(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, errJSON
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := scanString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errJSON
	}
	// A number, true, false or null.
	start := i
	for i < len(b) {
		c := b[i]
		if c == ',' || c == '}' || c == ']' || isSpace(c) {
			break
		}
		if c < 0x20 || c == '"' || c == '{' || c == '[' || c == ':' {
			return 0, errJSON
		}
		i++
	}
	if i == start {
		return 0, errJSON
	}
	return i, nil
}

// isNull reports whether the value at i (after space) is null.
func isNull(b []byte, i int) bool {
	i = skipSpace(b, i)
	return len(b)-i >= 4 && string(b[i:i+4]) == "null"
}

// rawStringIs reports whether the value at i is the string literal s,
// written without escapes.
func rawStringIs(b []byte, i int, s string) bool {
	end, err := scanString(b, i)
	return err == nil && string(b[i+1:end-1]) == s
}

// objectIter walks the members of an object. After next returns a member,
// the value starts at val; the iterator skips it on the following call.
type objectIter struct {
	b       []byte
	i       int // next position to read
	val     int // start of the current value
	started bool
	err     error
}

// newObjectIter starts at the object at or after i. If there is no object
// there, next returns false and err is set.
func newObjectIter(b []byte, i int) objectIter {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return objectIter{b: b, err: errJSON}
	}
	return objectIter{b: b, i: i + 1}
}

func (it *objectIter) next() (key []byte, ok bool) {
	if it.err != nil {
		return nil, false
	}
	b, i := it.b, skipSpace(it.b, it.i)
	if it.started {
		end, err := skipValue(b, it.val)
		if err != nil {
			it.err = err
			return nil, false
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		} else if i < len(b) && b[i] == '}' {
			it.i = i + 1
			it.err = errEnd
			return nil, false
		} else {
			it.err = errJSON
			return nil, false
		}
	} else if i < len(b) && b[i] == '}' {
		it.i = i + 1
		it.err = errEnd
		return nil, false
	}
	end, err := scanString(b, i)
	if err != nil {
		it.err = err
		return nil, false
	}
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		it.err = errJSON
		return nil, false
	}
	it.val = skipSpace(b, i+1)
	it.started = true
	return key, true
}

// errEnd marks an iterator that reached its closing brace.
var errEnd = errors.New("end of object")

// end returns the index just past the object's closing brace, or an error
// if the object was malformed. Call it after next returned false.
func (it *objectIter) end() (int, error) {
	if it.err != errEnd {
		return 0, it.err
	}
	return it.i, nil
}

// firstElement returns the start of the first element of the array at or
// after i, or ok=false for an empty array.
func firstElement(b []byte, i int) (start int, ok bool, err error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, false, errJSON
	}
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return 0, false, errJSON
	}
	if b[i] == ']' {
		return 0, false, nil
	}
	return i, true, nil
}

// appendString appends the decoded string literal at or after i to dst. It
// decodes as encoding/json does: invalid UTF-8 and lone surrogates become
// U+FFFD.
func appendString(dst, b []byte, i int) ([]byte, error) {
	i = skipSpace(b, i)
	end, err := scanString(b, i)
	if err != nil {
		return dst, err
	}
	s := b[i+1 : end-1]
	// Fast path: nothing to unescape or replace.
	simple := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple || (utf8.Valid(s) && !containsByte(s, '\\')) {
		return append(dst, s...), nil
	}
	for j := 0; j < len(s); {
		c := s[j]
		switch {
		case c == '\\':
			if j+1 >= len(s) {
				return dst, errJSON
			}
			switch s[j+1] {
			case '"', '\\', '/':
				dst = append(dst, s[j+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(s[j+2:])
				if !ok {
					return dst, errJSON
				}
				j += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if len(s)-j >= 6 && s[j] == '\\' && s[j+1] == 'u' {
						if v, ok := hex4(s[j+2:]); ok {
							r2 = v
						}
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						j += 6
						continue
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, errJSON
			}
			j += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			j++
		default:
			r, size := utf8.DecodeRune(s[j:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[j:j+size]...)
			}
			j += size
		}
	}
	return dst, nil
}

func containsByte(s []byte, c byte) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

// hex4 decodes the four hex digits at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// parseInt returns the integer at or after i, if the value there is one.
func parseInt(b []byte, i int) (int, bool) {
	i = skipSpace(b, i)
	end, err := skipValue(b, i)
	if err != nil || end == i || end-i > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b[i:end] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
