package pin

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The ingest path checks every pin, so a request is read by one pass of this
// scanner instead of encoding/json's validate-then-decode-then-compact: it
// checks the JSON grammar (RFC 8259, UTF-8 strings), copies the text without
// insignificant whitespace, and notes where each known field's value is.
// Unknown fields are checked and copied but not decoded.

// kind is the JSON type of a value.
type kind uint8

const (
	kindNone kind = iota // absent
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindObject
	kindArray
)

// maxDepth bounds the nesting of unknown fields' values, so a hostile body
// cannot exhaust the stack.
const maxDepth = 512

// syntaxError is malformed JSON at byte offset off of the scanned text.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// scanner reads JSON from src. When keep is set, it appends what it reads to
// out with insignificant whitespace removed; src[mark:pos] is read but not
// yet appended.
//
// When maxField is above 0 (which needs keep, as the sizes are read off
// out), record notes in oversized each unknown field of the record whose
// name or value, as compact JSON, is longer than maxField bytes; the caller
// empties oversized between records.
type scanner struct {
	src       []byte
	pos       int
	mark      int
	keep      bool
	out       []byte
	depth     int
	maxField  int
	oversized []oversized
}

// oversized is an unknown field whose name or value is too large.
type oversized struct {
	name   string // the field's name, shortened for a message
	isName bool   // the name is too large, not the value
	bytes  int    // the size of the name (quotes excluded) or of the value
}

// reset starts reading src from its first byte, keeping out.
func (s *scanner) reset(src []byte) {
	s.src, s.pos, s.mark, s.depth = src, 0, 0, 0
}

// skipSpace moves past whitespace, leaving it out of out.
func (s *scanner) skipSpace() {
	p := s.pos
	if p >= len(s.src) || !isSpace(s.src[p]) {
		return
	}
	if s.keep {
		s.out = append(s.out, s.src[s.mark:p]...)
	}
	for p < len(s.src) && isSpace(s.src[p]) {
		p++
	}
	s.pos, s.mark = p, p
}

// written returns the length out has once what was read so far is flushed.
func (s *scanner) written() int {
	return len(s.out) + s.pos - s.mark
}

// flush appends what was read so far to out.
func (s *scanner) flush() {
	if s.keep {
		s.out = append(s.out, s.src[s.mark:s.pos]...)
	}
	s.mark = s.pos
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{off: s.pos, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) failEOF() error {
	return &syntaxError{off: s.pos, msg: "unexpected end of JSON input"}
}

// describeByte names an unexpected byte the way encoding/json does.
func describeByte(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= utf8.RuneSelf:
		return fmt.Sprintf("byte 0x%02x", c)
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// record reads one JSON value at pos, which should be a pin object: for an
// object it notes the known fields' spans (as offsets into src) in f. It
// returns the value's kind and its bytes [start, end) in src; with keep set,
// raw is the value's compact copy in out, capacity-capped so appending to it
// cannot overwrite a neighbour.
func (s *scanner) record(f *fields) (k kind, start, end int, raw []byte, err error) {
	start, outStart := s.pos, s.written()
	if s.pos < len(s.src) && s.src[s.pos] == '{' {
		k, err = kindObject, s.object(f)
	} else {
		k, _, err = s.value()
	}
	if err != nil {
		return k, start, s.pos, nil, err
	}
	s.flush()
	if s.keep {
		raw = s.out[outStart:len(s.out):len(s.out)]
	}
	return k, start, s.pos, raw, nil
}

// value reads any JSON value at pos.
func (s *scanner) value() (k kind, escaped bool, err error) {
	if s.pos >= len(s.src) {
		return kindNone, false, s.failEOF()
	}
	switch c := s.src[s.pos]; {
	case c == '"':
		escaped, err = s.str()
		return kindString, escaped, err
	case c == '-' || isDigit(c):
		return kindNumber, false, s.number()
	case c == '{':
		return kindObject, false, s.object(nil)
	case c == '[':
		return kindArray, false, s.array()
	case c == 't':
		return kindTrue, false, s.literal("true")
	case c == 'f':
		return kindFalse, false, s.literal("false")
	case c == 'n':
		return kindNull, false, s.literal("null")
	default:
		return kindNone, false, s.fail("invalid character %s looking for beginning of value", describeByte(c))
	}
}

// object reads an object at pos. With f set, it notes the known fields.
func (s *scanner) object(f *fields) error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("JSON nested deeper than %d levels", maxDepth)
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	var buf [32]byte
	for {
		if s.pos >= len(s.src) {
			return s.failEOF()
		}
		if s.src[s.pos] != '"' {
			return s.fail("invalid character %s looking for beginning of object key string", describeByte(s.src[s.pos]))
		}
		keyStart := s.pos
		escaped, err := s.str()
		if err != nil {
			return err
		}
		id := fieldID(-1)
		var key []byte
		if f != nil {
			key = s.src[keyStart+1 : s.pos-1]
			if escaped {
				key = appendUnescaped(buf[:0], key)
			}
			id = lookupField(key)
		}
		// An unknown field of the record counts its name and value as
		// the raw zone will hold them: escapes kept, whitespace dropped.
		checkSize := f != nil && id < 0 && s.maxField > 0
		if checkSize && s.pos-keyStart-2 > s.maxField {
			s.oversized = append(s.oversized, oversized{name: truncate(string(key)), isName: true, bytes: s.pos - keyStart - 2})
		}
		s.skipSpace()
		if s.pos >= len(s.src) {
			return s.failEOF()
		}
		if s.src[s.pos] != ':' {
			return s.fail("invalid character %s after object key", describeByte(s.src[s.pos]))
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		var outStart int
		if checkSize {
			outStart = s.written()
		}
		k, escaped, err := s.value()
		if err != nil {
			return err
		}
		if checkSize {
			if n := s.written() - outStart; n > s.maxField {
				s.oversized = append(s.oversized, oversized{name: truncate(string(key)), bytes: n})
			}
		}
		if id >= 0 {
			if sp := &f[id]; sp.kind != kindNone {
				sp.dup = true
			} else {
				*sp = span{kind: k, escaped: escaped, start: start, end: s.pos}
			}
		}
		s.skipSpace()
		if s.pos >= len(s.src) {
			return s.failEOF()
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("invalid character %s after object key:value pair", describeByte(s.src[s.pos]))
		}
	}
}

// array reads an array at pos.
func (s *scanner) array() error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("JSON nested deeper than %d levels", maxDepth)
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if _, _, err := s.value(); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.src) {
			return s.failEOF()
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("invalid character %s after array element", describeByte(s.src[s.pos]))
		}
	}
}

// str reads a string at pos and reports whether it holds escapes.
func (s *scanner) str() (escaped bool, err error) {
	src, p := s.src, s.pos+1
	for {
		// Pins are mostly long plain-ASCII strings: skip them 8 bytes at a time.
		for p+8 <= len(src) && !special8(binary.LittleEndian.Uint64(src[p:])) {
			p += 8
		}
		for p < len(src) {
			if c := src[p]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				break
			}
			p++
		}
		if p >= len(src) {
			s.pos = p
			return escaped, s.failEOF()
		}
		switch c := src[p]; {
		case c == '"':
			s.pos = p + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			if p+1 >= len(src) {
				s.pos = p + 1
				return escaped, s.failEOF()
			}
			switch src[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				for i := p + 2; i < p+6; i++ {
					if i >= len(src) {
						s.pos = i
						return escaped, s.failEOF()
					}
					if !isHex(src[i]) {
						s.pos = i
						return escaped, s.fail("invalid character %s in \\u hexadecimal character escape", describeByte(src[i]))
					}
				}
				p += 6
			default:
				s.pos = p + 1
				return escaped, s.fail("invalid character %s in string escape code", describeByte(src[p+1]))
			}
		case c < 0x20:
			s.pos = p
			return escaped, s.fail("invalid character %s in string literal", describeByte(c))
		default:
			r, size := utf8.DecodeRune(src[p:])
			if r == utf8.RuneError && size == 1 {
				s.pos = p
				return escaped, s.fail("invalid UTF-8 (byte 0x%02x) in string literal", c)
			}
			p += size
		}
	}
}

// special8 reports whether any of the 8 bytes in x ends or interrupts a
// plain-ASCII run of a string: '"', '\\', a control character or a non-ASCII
// byte. Each test is the exact "has a zero byte" / "has a byte less than n"
// bit trick, so there are no false negatives.
func special8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x|x)&high != 0
}

// number reads a number at pos.
func (s *scanner) number() error {
	src, p := s.src, s.pos
	if src[p] == '-' {
		p++
	}
	digits := func(what string) error {
		if p >= len(src) {
			s.pos = p
			return s.failEOF()
		}
		if !isDigit(src[p]) {
			s.pos = p
			return s.fail("invalid character %s %s", describeByte(src[p]), what)
		}
		for p < len(src) && isDigit(src[p]) {
			p++
		}
		return nil
	}
	if p < len(src) && src[p] == '0' {
		p++
	} else if err := digits("in numeric literal"); err != nil {
		return err
	}
	if p < len(src) && src[p] == '.' {
		p++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return err
		}
	}
	if p < len(src) && (src[p] == 'e' || src[p] == 'E') {
		p++
		if p < len(src) && (src[p] == '+' || src[p] == '-') {
			p++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return err
		}
	}
	s.pos = p
	return nil
}

// literal reads the literal word (true, false or null) at pos.
func (s *scanner) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if s.pos >= len(s.src) {
			return s.failEOF()
		}
		if s.src[s.pos] != word[i] {
			return s.fail("invalid character %s in literal %s (expecting %s)", describeByte(s.src[s.pos]), word, describeByte(word[i]))
		}
		s.pos++
	}
	return nil
}
