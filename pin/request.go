package pin

import (
	"bytes"
	"fmt"
	"strings"
)

// MaxProblems caps the FieldErrors a rejected request lists; the message
// says when more were found.
const MaxProblems = 100

// summaryProblems is how many problems the error message itself quotes.
const summaryProblems = 3

// DefaultMaxFieldBytes is the most bytes one field of a POST /pins record may
// hold when Limits.MaxFieldBytes is 0: 64 KiB, far above any field of a real
// pin (the longest, descriptions and tag lists, are a few hundred bytes).
const DefaultMaxFieldBytes = 64 << 10

// Limits bounds what ParseRequest accepts beyond the schema. The zero value
// means the defaults.
//
// Only the door applies limits: Validate, which the lanes run on the raw
// zone, does not, so records accepted before a limit was lowered stay valid.
type Limits struct {
	// MaxFieldBytes is the most bytes one field of a record may hold; 0 or
	// less means DefaultMaxFieldBytes. A known string field (title,
	// category, …) is measured as the UTF-8 text it decodes to, the size the
	// stores keep; index, unique_id (a 36-byte UUID) and downloaded are
	// bounded by the schema.
	// An unknown field, kept only in the raw zone, is measured as JSON: its
	// name and its value (an object or array as a whole) each as the compact
	// JSON text Record.Raw holds.
	MaxFieldBytes int
}

func (l Limits) maxField() int {
	if l.MaxFieldBytes <= 0 {
		return DefaultMaxFieldBytes
	}
	return l.MaxFieldBytes
}

// Counts are how many pins a POST /pins body held and how many of them were
// invalid, for the ingest metrics.
type Counts struct {
	// Pins is every record the body held; for a body that is not valid JSON
	// past some point, the records read up to and including the malformed
	// one (what follows it cannot be counted).
	Pins int
	// Invalid is the records with at least one problem, however many
	// problems each had.
	Invalid int
}

// ParseRequest is Limits{}.ParseRequest: it parses with the default limits.
func ParseRequest(body []byte, ndjson bool) ([]Record, error) {
	return Limits{}.ParseRequest(body, ndjson)
}

// ParseRequest decodes a POST /pins body and validates every record: the
// schema (see Validate) and the limits (see Limits). The body is one JSON
// object, a JSON array of objects, or, when ndjson is true, NDJSON: one
// object per line, blank lines skipped, "\r\n" accepted. A leading UTF-8
// byte order mark is ignored.
//
// Returns every record in order, each Raw a compact copy of the client's
// object, all sharing one buffer the size of body. When any record is bad it
// returns nil and an *Error with code EINVALID: Message is a summary such as
// `2 of 5 pins are invalid; nothing was accepted. record 1: field "index" must
// be an integer >= 0, got string "12"; record 3: field "title" is 15728640
// bytes; the most a field may hold is 65536 bytes (PINPIPE_MAX_FIELD_BYTES)`,
// and Detail is the []FieldError of every problem of every bad record (at
// most MaxProblems; the message says when there were more).
// Malformed JSON is reported with its byte offset, line and column; in an
// array or single object it ends the parse, on an NDJSON line it spoils only
// that line. An empty body, an empty array or an NDJSON body of blank lines
// is EINVALID with the message "the request holds no pins" and no Detail.
func (l Limits) ParseRequest(body []byte, ndjson bool) ([]Record, error) {
	recs, _, err := l.ParseRequestCounts(body, ndjson)
	return recs, err
}

// ParseRequestCounts is ParseRequest that also returns how many pins the
// body held and how many were invalid; the counts are set whether or not the
// request is refused.
func (l Limits) ParseRequestCounts(body []byte, ndjson bool) ([]Record, Counts, error) {
	var p requestParser
	p.maxField = l.maxField()
	p.sc.keep, p.sc.maxField = true, p.maxField
	p.sc.out = make([]byte, 0, len(body))
	if ndjson {
		p.recs = make([]Record, 0, bytes.Count(body, []byte{'\n'})+1)
		p.parseNDJSON(body)
	} else {
		p.parseJSON(body)
	}
	// A body that is no JSON at all holds no record but is one refused thing.
	c := Counts{Pins: max(p.total, p.bad), Invalid: p.bad}
	if err := p.err(); err != nil {
		return nil, c, err
	}
	return p.recs, c, nil
}

type requestParser struct {
	sc       scanner
	v        scanned // the record being read
	recs     []Record
	probs    []FieldError // the listed problems, at most MaxProblems
	scratch  []FieldError // one record's problems
	nprobs   int          // problems found, listed or not
	total    int          // records seen
	bad      int          // records with a problem
	single   bool         // the body is one object
	broken   bool         // malformed JSON stopped the parse
	maxField int          // Limits.MaxFieldBytes in effect
}

// bom is the UTF-8 byte order mark, which some Windows tools put at the start
// of a file; RFC 8259 lets a parser ignore it, and so do we.
var bom = []byte("\xef\xbb\xbf")

// skipBOM moves past a byte order mark at the start of the scanner's text.
func (s *scanner) skipBOM() {
	if s.pos == 0 && bytes.HasPrefix(s.src, bom) {
		s.pos, s.mark = len(bom), len(bom)
	}
}

func (p *requestParser) parseJSON(body []byte) {
	s := &p.sc
	s.reset(body)
	s.skipBOM()
	s.skipSpace()
	if s.pos == len(body) {
		return
	}
	switch body[s.pos] {
	case '{':
		p.single = true
		if !p.read(0, 0) {
			return
		}
		if s.skipSpace(); s.pos < len(body) {
			p.malformed(0, 0, body, s.fail("unexpected data after the pin's JSON object; send several pins as a JSON array, or as NDJSON with Content-Type: application/x-ndjson"))
			return
		}
		p.check(0, 0)
	case '[':
		s.pos++
		s.skipSpace()
		if s.pos < len(body) && body[s.pos] == ']' {
			s.pos++
		} else {
			for n := 0; ; {
				if !p.read(n, 0) {
					return
				}
				p.check(n, 0)
				n++
				s.skipSpace()
				if s.pos >= len(body) {
					p.malformed(n, 0, body, s.failEOF())
					return
				}
				if body[s.pos] == ']' {
					s.pos++
					break
				}
				if body[s.pos] != ',' {
					p.malformed(n, 0, body, s.fail("invalid character %s after array element", describeByte(body[s.pos])))
					return
				}
				s.pos++
				s.skipSpace()
			}
		}
		if s.skipSpace(); s.pos < len(body) {
			p.malformed(p.total, 0, body, s.fail("unexpected data after the JSON array"))
		}
	default:
		p.malformed(0, 0, body, s.fail("the body must be a JSON object, a JSON array of objects, or NDJSON with Content-Type: application/x-ndjson; it starts with %s", describeByte(body[s.pos])))
	}
}

func (p *requestParser) parseNDJSON(body []byte) {
	s := &p.sc
	n := 0
	for line := 1; len(body) > 0; line++ {
		text := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			text, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		s.reset(text)
		if line == 1 {
			s.skipBOM()
		}
		if s.skipSpace(); s.pos == len(text) {
			continue
		}
		if p.read(n, line) {
			if s.skipSpace(); s.pos < len(text) {
				p.malformed(n, line, text, s.fail("unexpected data after the JSON object; NDJSON holds one pin per line"))
			} else {
				p.check(n, line)
			}
		}
		n++
	}
}

// scanned is one record as read, before it is checked.
type scanned struct {
	kind       kind
	start, end int // in the scanner's src
	raw        []byte
	fields     fields
}

// read reads the record at the scanner's position into p.v; it returns false
// when the record is malformed JSON, which it reports.
func (p *requestParser) read(n, line int) bool {
	v := &p.v
	v.fields = fields{}
	p.sc.oversized = p.sc.oversized[:0]
	var err error
	v.kind, v.start, v.end, v.raw, err = p.sc.record(&v.fields)
	p.total++
	if err != nil {
		p.malformed(n, line, p.sc.src, err)
		return false
	}
	return true
}

// check validates the record read into p.v and keeps it while no record
// has been bad.
func (p *requestParser) check(n, line int) {
	v := &p.v
	src := p.sc.src
	if v.kind != kindObject {
		p.scratch = append(p.scratch[:0], FieldError{Message: "record must be a JSON object, got " + got(v.kind, src[v.start:v.end])})
		p.add(n, line)
		return
	}
	var pin Pin
	pin, p.scratch = decodePin(src[v.start:v.end], &v.fields, v.start, p.maxField, p.scratch[:0])
	for _, o := range p.sc.oversized {
		p.scratch = append(p.scratch, o.problem(p.maxField))
	}
	if len(p.scratch) > 0 {
		p.add(n, line)
	} else if p.bad == 0 {
		p.recs = append(p.recs, Record{Pin: pin, Raw: v.raw})
	}
}

// malformed reports a syntax error in text (the body, or an NDJSON line)
// against record n. A malformed NDJSON line spoils only that line.
func (p *requestParser) malformed(n, line int, text []byte, err error) {
	e := err.(*syntaxError)
	var msg string
	if line > 0 {
		msg = fmt.Sprintf("malformed JSON at column %d: %s", e.off+1, e.msg)
	} else {
		msg = malformedAt(text, e)
		p.broken = true
	}
	p.scratch = append(p.scratch[:0], FieldError{Message: msg})
	p.add(n, line)
}

// add records the problems in scratch as record n's.
func (p *requestParser) add(n, line int) {
	if p.bad == 0 {
		p.recs = nil
	}
	p.bad++
	for _, fe := range p.scratch {
		p.nprobs++
		if len(p.probs) < MaxProblems {
			fe.Record, fe.Line = n, line
			p.probs = append(p.probs, fe)
		}
	}
}

func (p *requestParser) err() error {
	if p.bad == 0 {
		if p.total == 0 {
			return &Error{Code: EINVALID, Message: "the request holds no pins"}
		}
		return nil
	}
	var b strings.Builder
	switch {
	case p.broken:
		b.WriteString("the request body is not valid JSON; nothing was accepted.")
	case p.single:
		b.WriteString("the pin is invalid; nothing was accepted.")
	case p.bad == 1:
		fmt.Fprintf(&b, "1 of %d pins is invalid; nothing was accepted.", p.total)
	default:
		fmt.Fprintf(&b, "%d of %d pins are invalid; nothing was accepted.", p.bad, p.total)
	}
	for i, fe := range p.probs[:min(len(p.probs), summaryProblems)] {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		if i == 0 || fe.Record != p.probs[i-1].Record {
			switch {
			case fe.Line > 0:
				fmt.Fprintf(&b, "line %d: ", fe.Line)
			case !p.single:
				fmt.Fprintf(&b, "record %d: ", fe.Record)
			}
		}
		b.WriteString(fe.Message)
	}
	if more := p.nprobs - summaryProblems; more > 0 {
		fmt.Fprintf(&b, "; and %d more problem%s", more, plural(more))
		if p.nprobs > MaxProblems {
			fmt.Fprintf(&b, " (the detail lists the first %d of %d)", MaxProblems, p.nprobs)
		}
	}
	return &Error{Code: EINVALID, Message: b.String(), Detail: p.probs}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
