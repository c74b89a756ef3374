package pin

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validate decodes one pin object (a POST /pins record or a raw-zone message)
// and checks it against the pin schema (docs/contracts.md):
//   - index: a JSON integer >= 0 that fits in int64, written without fraction
//     or exponent (12, not "12", 12.0 or 1.2e1);
//   - unique_id: a UUID string in the 8-4-4-4-12 hex form, either case;
//   - category: a string with at least one visible character (see visible),
//     so not empty, blank, or made only of zero-width or format characters;
//   - title, description, poster_name, follower_count, tag_list,
//     is_image_or_video, image_src, save_location: a string or null;
//   - downloaded: 0, 1 or null.
//
// Unknown fields are allowed; a known field given twice is an error (readers
// disagree about which copy wins), and so is a known string field holding
// U+0000 (Postgres text cannot store it). Field names match exactly. No size
// limit applies here: ParseRequest bounds fields at the door (see Limits).
//
// Returns the pin, or an *Error with code EINVALID whose Message joins every
// problem ("field \"index\" must be an integer >= 0, got string \"12\"; missing
// required field \"unique_id\"") and whose Detail is the []FieldError (Record 0).
// Malformed JSON, including invalid UTF-8 or anything but whitespace after the
// object, is reported with its byte offset.
func Validate(raw []byte) (Pin, error) {
	s := scanner{src: raw}
	var f fields
	s.skipSpace()
	k, start, end, _, err := s.record(&f)
	if err == nil {
		if s.skipSpace(); s.pos < len(raw) {
			err = s.fail("unexpected data after the JSON object")
		}
	}
	var probs []FieldError
	var p Pin
	switch {
	case err != nil:
		probs = []FieldError{{Message: malformedAt(raw, err.(*syntaxError))}}
	case k != kindObject:
		probs = []FieldError{{Message: "record must be a JSON object, got " + got(k, raw[start:end])}}
	default:
		p, probs = decodePin(raw[start:end], &f, start, 0, nil)
	}
	if len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, pr := range probs {
			msgs[i] = pr.Message
		}
		return Pin{}, &Error{Code: EINVALID, Message: strings.Join(msgs, "; "), Detail: probs}
	}
	return p, nil
}

// malformedAt describes a syntax error in text with its byte offset, line
// and column (both 1-based, the column counted in bytes).
func malformedAt(text []byte, e *syntaxError) string {
	line, col := lineCol(text, e.off)
	return fmt.Sprintf("malformed JSON at byte offset %d (line %d, column %d): %s", e.off, line, col, e.msg)
}

func lineCol(text []byte, off int) (line, col int) {
	line, lineStart := 1, 0
	for i := 0; i < off && i < len(text); i++ {
		if text[i] == '\n' {
			line++
			lineStart = i + 1
		}
	}
	return line, off - lineStart + 1
}

// pinStrings backs a decoded pin's optional fields, so decoding one pin costs
// one allocation for them rather than one per field.
type pinStrings struct {
	s          [8]string
	downloaded int64
}

// decodePin decodes and checks the known fields of the object rec, whose
// spans in f are offsets into a text where rec starts at base. A string field
// longer than maxField bytes is a problem, unless maxField is 0. It appends
// each problem (Record unset) to probs and returns them.
func decodePin(rec []byte, f *fields, base, maxField int, probs []FieldError) (Pin, []FieldError) {
	d := pinDecoder{text: string(rec), base: base, max: maxField, probs: probs}
	var p Pin
	p.Index = d.index(f)
	if sp, ok := d.required(f, fUniqueID); ok {
		p.UniqueID = d.str(sp, fUniqueID)
		if sp.kind != kindString || !isUUID(p.UniqueID) {
			d.problem(fUniqueID, "must be a UUID string such as \"fbe53c66-3442-4773-b19e-d3ec6f54dddf\", got "+d.got(sp))
		}
	}
	if sp, ok := d.required(f, fCategory); ok {
		p.Category = d.str(sp, fCategory)
		switch {
		case sp.kind != kindString || p.Category == "":
			d.problem(fCategory, "must be a non-empty string, got "+d.got(sp))
		case d.tooLong(fCategory, p.Category):
		case !visible(p.Category):
			d.problem(fCategory, "must contain a visible character (a letter, digit, punctuation mark or symbol); got "+d.got(sp)+", which has none")
		}
	}
	var back *pinStrings
	opt := [...]struct {
		id  fieldID
		dst **string
	}{
		{fTitle, &p.Title}, {fDescription, &p.Description}, {fPosterName, &p.PosterName},
		{fFollowerCount, &p.FollowerCount}, {fTagList, &p.TagList},
		{fIsImageOrVideo, &p.IsImageOrVideo}, {fImageSrc, &p.ImageSrc},
		{fSaveLocation, &p.SaveLocation},
	}
	for i, o := range opt {
		sp := f[o.id]
		if sp.dup {
			d.duplicate(o.id)
		}
		switch sp.kind {
		case kindNone, kindNull:
		case kindString:
			if back == nil {
				back = new(pinStrings)
			}
			back.s[i] = d.str(sp, o.id)
			*o.dst = &back.s[i]
			d.tooLong(o.id, back.s[i])
		default:
			d.problem(o.id, "must be a string or null, got "+d.got(sp))
		}
	}
	if sp := f[fDownloaded]; sp.dup {
		d.duplicate(fDownloaded)
	}
	switch sp := f[fDownloaded]; {
	case sp.kind == kindNone || sp.kind == kindNull:
	case sp.kind == kindNumber && (d.raw(sp) == "0" || d.raw(sp) == "1"):
		if back == nil {
			back = new(pinStrings)
		}
		back.downloaded = int64(d.raw(sp)[0] - '0')
		p.Downloaded = &back.downloaded
	default:
		d.problem(fDownloaded, "must be 0, 1 or null, got "+d.got(sp))
	}
	return p, d.probs
}

// pinDecoder reads field values out of one record's text.
type pinDecoder struct {
	text  string
	base  int
	max   int // the most bytes a string field may hold; 0: no limit
	probs []FieldError
}

// tooLong reports whether the text s of a string field is longer than the
// limit, and reports it as a problem if so.
func (d *pinDecoder) tooLong(id fieldID, s string) bool {
	if d.max <= 0 || len(s) <= d.max {
		return false
	}
	d.probs = append(d.probs, fieldTooLong(fieldNames[id], len(s), d.max))
	return true
}

// fieldTooLong is the problem of a field of n bytes where at most max may be.
func fieldTooLong(name string, n, max int) FieldError {
	return FieldError{Field: name, Message: fmt.Sprintf("field %s is %d bytes; the most a field may hold is %d bytes (PINPIPE_MAX_FIELD_BYTES)",
		strconv.Quote(name), n, max)}
}

// problem describes an unknown field the scanner found too large.
func (o oversized) problem(max int) FieldError {
	if o.isName {
		return FieldError{Field: o.name, Message: fmt.Sprintf("the name of field %s is %d bytes; the most a field name may hold is %d bytes (PINPIPE_MAX_FIELD_BYTES)",
			strconv.Quote(o.name), o.bytes, max)}
	}
	return fieldTooLong(o.name, o.bytes, max)
}

func (d *pinDecoder) problem(id fieldID, msg string) {
	d.probs = append(d.probs, FieldError{Field: fieldNames[id], Message: "field " + strconv.Quote(fieldNames[id]) + " " + msg})
}

func (d *pinDecoder) duplicate(id fieldID) {
	d.problem(id, "appears more than once")
}

// required returns a required field's span, or reports it missing.
func (d *pinDecoder) required(f *fields, id fieldID) (span, bool) {
	sp := f[id]
	if sp.dup {
		d.duplicate(id)
	}
	if sp.kind == kindNone {
		d.probs = append(d.probs, FieldError{Field: fieldNames[id], Message: "missing required field " + strconv.Quote(fieldNames[id])})
		return sp, false
	}
	return sp, true
}

// raw returns a value's JSON text.
func (d *pinDecoder) raw(sp span) string {
	return d.text[sp.start-d.base : sp.end-d.base]
}

// str returns a string value's text ("" for other kinds). The text shares
// the record's one string unless it holds escapes; an escaped U+0000 is
// reported, as Postgres text cannot hold it.
func (d *pinDecoder) str(sp span, id fieldID) string {
	if sp.kind != kindString {
		return ""
	}
	q := d.raw(sp)
	if !sp.escaped {
		return q[1 : len(q)-1]
	}
	s := string(appendUnescaped(make([]byte, 0, len(q)), []byte(q[1:len(q)-1])))
	if strings.IndexByte(s, 0) >= 0 {
		d.problem(id, "must not contain the NUL character (\\u0000)")
	}
	return s
}

func (d *pinDecoder) index(f *fields) int64 {
	sp, ok := d.required(f, fIndex)
	if !ok {
		return 0
	}
	lit := d.raw(sp)
	if sp.kind == kindNumber && strings.IndexAny(lit, "-.eE") < 0 {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return n
		}
		d.problem(fIndex, "must be an integer >= 0 that fits in 64 bits, got number "+truncate(lit))
		return 0
	}
	d.problem(fIndex, "must be an integer >= 0, got "+d.got(sp))
	return 0
}

func (d *pinDecoder) got(sp span) string {
	return got(sp.kind, []byte(d.raw(sp)))
}

// got describes a value for an error message: its JSON type and, for
// scalars, the value (shortened).
func got(k kind, lit []byte) string {
	switch k {
	case kindString:
		body := lit[1 : len(lit)-1]
		if bytes.IndexByte(body, '\\') >= 0 {
			body = appendUnescaped(nil, body)
		}
		return "string " + strconv.Quote(truncate(string(body)))
	case kindNumber:
		return "number " + truncate(string(lit))
	case kindTrue, kindFalse:
		return "boolean " + string(lit)
	case kindNull:
		return "null"
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	}
	return "nothing"
}

// truncate shortens s to 40 runes for quoting in a message.
func truncate(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// isUUID reports whether s is a UUID in the 8-4-4-4-12 hex form. Any version
// and either case are accepted; Clean lowercases it.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// visible reports whether s holds a character a reader can see: one of
// Unicode's letters, marks, numbers, punctuation or symbols (categories L, M,
// N, P, S). Spaces and separators (Z*), controls (Cc), format characters (Cf:
// U+200B ZERO WIDTH SPACE, U+200D, U+2060, U+FEFF, bidi marks …), private-use
// and unassigned code points do not count, and neither do the letters, marks
// and symbols that render as nothing: variation selectors, the other
// default-ignorable code points (U+3164 HANGUL FILLER, U+034F COMBINING
// GRAPHEME JOINER, U+115F, U+FFA0 …) and U+2800 BRAILLE PATTERN BLANK.
// Returns false for "".
func visible(s string) bool {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if '!' <= r && r <= '~' {
				return true
			}
			continue
		}
		if unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) &&
			!unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) &&
			r != brailleBlank {
			return true
		}
	}
	return false
}

// brailleBlank is U+2800 BRAILLE PATTERN BLANK, a symbol (So) that shows as
// a space; it is a well-known way to make a name look empty.
const brailleBlank = '\u2800'
