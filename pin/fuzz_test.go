package pin

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets' seeds are the bodies below and the corpus in
// testdata/fuzz/<target>, which holds the shapes of the real pins (key
// orders, escapes, placeholders, NDJSON with CRLF, pretty-printed arrays, a
// byte order mark, unknown fields) and the classes of bad input. Run one
// target for a bounded time with
//
//	go test -run '^$' -fuzz '^FuzzParseRequest$' -fuzztime 60s ./pin
//
// and turn a failure it writes under testdata/fuzz into a regression test.

// fuzzBodies are request bodies worth mutating: the real pins one by one, as
// NDJSON and as an array, and the malformed classes of the table tests.
func fuzzBodies(t testing.TB) [][]byte {
	lines := samplePins(t)
	bodies := append([][]byte{}, lines...)
	bodies = append(bodies, bytes.Join(lines, []byte("\n")))
	bodies = append(bodies, append(append([]byte("["), bytes.Join(lines, []byte(",\n"))...), ']'))
	for _, s := range []string{
		``, `[]`, `[1, "x", null, [], {}]`, "\n\n", `{"index": "12"}`, `{"index": 1.5, "downloaded": 2}`,
		`{"ind\u0065x": 1, "unique_id": "FBE53C66-3442-4773-B19E-D3EC6F54DDDF", "category": "a", "title": "\ud83d\ude00\u0000"}`,
		`{"index": 1, "unique_id": "` + testUUID + `", "category": "x", "index": 2}`,
		`{"index": 1, "unique_id": "` + testUUID + `", "category": "x", "follower_count": "1.5k", "tag_list": " a,,b "}`,
		`{"index": 1, "unique_id": "` + testUUID + `", "category": "\u200b"}`,
		`[{"index": 1,,}]`, `{"a": [[[[{"b": -0.5e+10}]]]], "index": 0}`, "{\"title\": \"\xff\"}",
	} {
		bodies = append(bodies, []byte(s))
	}
	return bodies
}

// FuzzParseRequest checks that ParseRequest never panics, that a rejection
// is a well-formed EINVALID naming a record and a field, that every accepted
// record re-validates and re-encodes to the same pin, cleans the same way
// from Raw as from the pin and agrees with encoding/json, and that the field
// limit refuses exactly the records with a field over it.
func FuzzParseRequest(f *testing.F) {
	for _, b := range fuzzBodies(f) {
		f.Add(b, false, uint16(0))
		f.Add(b, true, uint16(24))
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool, maxField uint16) {
		l := Limits{MaxFieldBytes: int(maxField)}
		recs, err := l.ParseRequest(body, ndjson)
		unbounded, uerr := Limits{MaxFieldBytes: math.MaxInt}.ParseRequest(body, ndjson)
		if err != nil {
			checkRejection(t, recs, err, ndjson)
			if uerr == nil {
				checkRefusedForSize(t, unbounded, err, l.maxField())
			}
			return
		}
		if uerr != nil || !reflect.DeepEqual(recs, unbounded) {
			t.Fatalf("accepted under a limit, but not the same without one: %v", uerr)
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for i, r := range recs {
			checkAccepted(t, i, r, l)
		}
	})
}

// checkAccepted checks the properties of accepted record i.
func checkAccepted(t *testing.T, i int, r Record, l Limits) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, r.Raw); err != nil || !bytes.Equal(buf.Bytes(), r.Raw) {
		t.Fatalf("record %d: Raw is not compact JSON (%v): %s", i, err, r.Raw)
	}
	p, err := Validate(r.Raw)
	if err != nil {
		t.Fatalf("record %d: accepted, but its Raw does not validate: %v", i, err)
	}
	if !reflect.DeepEqual(p, r.Pin) {
		t.Fatalf("record %d: Raw validates to %s, ParseRequest gave %s", i, fmtPin(p), fmtPin(r.Pin))
	}
	agreeWithEncodingJSON(t, r)
	if n := largestField(t, r.Raw); n > l.maxField() {
		t.Fatalf("record %d: accepted with a field of %d bytes, over the limit of %d: %s", i, n, l.maxField(), r.Raw)
	}
	// The pin re-encoded by encoding/json is the same pin, and as a
	// request of its own it is accepted under the same limit.
	enc, err := json.Marshal(r.Pin)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := l.ParseRequest(enc, false); err != nil || len(again) != 1 || !reflect.DeepEqual(again[0].Pin, r.Pin) {
		t.Fatalf("record %d: re-encoded as %s it parses to %v, %v", i, enc, again, err)
	}
	lin := Lineage{IngestedAt: time.Unix(int64(i), 0), Partition: 1, Offset: int64(i)}
	c, err := CleanRaw(r.Raw, lin)
	if err != nil {
		t.Fatalf("record %d: CleanRaw: %v", i, err)
	}
	if want := Clean(r.Pin, lin); !reflect.DeepEqual(c, want) {
		t.Fatalf("record %d: CleanRaw and Clean differ: %+v vs %+v", i, c, want)
	}
	checkCleaned(t, c)
}

// checkRefusedForSize checks a request refused under the limit max that is
// accepted without a limit (as unbounded): every problem is a field over the
// limit, and the records listed are exactly those with such a field.
func checkRefusedForSize(t *testing.T, unbounded []Record, err error, max int) {
	t.Helper()
	listed := map[int]bool{}
	detail := err.(*Error).Detail.([]FieldError)
	for _, fe := range detail {
		if !strings.HasSuffix(fe.Message, " bytes (PINPIPE_MAX_FIELD_BYTES)") {
			t.Fatalf("valid without a limit, yet refused for %q", fe.Message)
		}
		listed[fe.Record] = true
	}
	for i, r := range unbounded {
		over := largestField(t, r.Raw) > max
		if over != listed[i] && (len(detail) < MaxProblems || i <= detail[len(detail)-1].Record) {
			t.Fatalf("record %d: largest field over %d is %v, listed as too large is %v: %s", i, max, over, listed[i], r.Raw)
		}
	}
}

// largestField measures a record's fields as Limits documents, with
// encoding/json: a known string field but unique_id (a UUID by schema) by
// its decoded text; an unknown field by its name as written and its compact
// value. raw must be compact.
func largestField(t *testing.T, raw []byte) int {
	t.Helper()
	known := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Pin]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		known[name] = true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	largest := 0
	for i := 0; dec.More(); i++ {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		switch {
		case key == "unique_id":
		case known[key] && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				t.Fatal(err)
			}
			largest = max(largest, len(s))
		case !known[key]:
			// The key as written: what the decoder read, less the quotes and
			// the comma before every member but the first.
			written := int(dec.InputOffset()-before) - len(v) - 3 // quotes and ':'
			if i > 0 {
				written--
			}
			largest = max(largest, written, len(v))
		}
	}
	return largest
}

// FuzzParseRequestShapes checks that one record is read the same way as a
// single object, in an array and on an NDJSON line: accepted alike, or
// refused with the same problems for each of its copies.
func FuzzParseRequestShapes(f *testing.F) {
	for _, b := range fuzzBodies(f) {
		f.Add(b, uint16(0))
		f.Add(b, uint16(40))
	}
	f.Fuzz(func(t *testing.T, rec []byte, maxField uint16) {
		rec = bytes.TrimPrefix(bytes.ReplaceAll(rec, []byte("\n"), []byte(" ")), bom)
		if t := bytes.TrimLeft(rec, " \t\r"); len(t) == 0 || t[0] != '{' {
			return // not an object: the single form would read it as something else
		}
		l := Limits{MaxFieldBytes: int(maxField)}
		single, errS := l.ParseRequest(rec, false)
		nd, errN := l.ParseRequest(bytes.Join([][]byte{rec, rec}, []byte("\r\n\n")), true)
		if !json.Valid(rec) {
			// Trailing data makes an array of it ("{…},{…}") but never a pin.
			if errS == nil || errN == nil {
				t.Fatalf("invalid JSON accepted: as one object %v, as NDJSON %v", errS, errN)
			}
			return
		}
		arr, errA := l.ParseRequest(append(append(append(append([]byte("["), rec...), ",\n"...), rec...), ']'), false)
		if (errS == nil) != (errA == nil) || (errS == nil) != (errN == nil) {
			t.Fatalf("one object: %v; array: %v; NDJSON: %v", errS, errA, errN)
		}
		if errS == nil {
			want := []Record{single[0], single[0]}
			if len(single) != 1 || !reflect.DeepEqual(arr, want) || !reflect.DeepEqual(nd, want) {
				t.Fatalf("one object gives %v, array %v, NDJSON %v", single, arr, nd)
			}
			return
		}
		probs := errS.(*Error).Detail.([]FieldError)
		if probs[0].Field == "" {
			return // malformed: the shapes differ in offsets and wording
		}
		var wantA, wantN []FieldError
		for n, line := range []int{1, 3} {
			for _, fe := range probs {
				fe.Record = n
				wantA = append(wantA, fe)
				fe.Line = line
				wantN = append(wantN, fe)
			}
		}
		wantA, wantN = wantA[:min(len(wantA), MaxProblems)], wantN[:min(len(wantN), MaxProblems)]
		if gotA := errA.(*Error).Detail; !reflect.DeepEqual(gotA, wantA) {
			t.Fatalf("array problems %v, want %v", gotA, wantA)
		}
		if gotN := errN.(*Error).Detail; !reflect.DeepEqual(gotN, wantN) {
			t.Fatalf("NDJSON problems %v, want %v", gotN, wantN)
		}
	})
}

// checkRejection checks a refused request: nil records and an EINVALID whose
// every problem names its record and, unless the whole record is bad (not
// JSON, not an object), the field its message is about.
func checkRejection(t *testing.T, recs []Record, err error, ndjson bool) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Code != EINVALID || e.Message == "" || recs != nil {
		t.Fatalf("want nil records and an EINVALID *Error with a message, got %d records, %#v", len(recs), err)
	}
	if e.Detail == nil {
		if e.Message != "the request holds no pins" {
			t.Fatalf("no detail for %q", e.Message)
		}
		return
	}
	d, ok := e.Detail.([]FieldError)
	if !ok || len(d) == 0 || len(d) > MaxProblems {
		t.Fatalf("detail is %#v", e.Detail)
	}
	for i, fe := range d {
		if fe.Message == "" || fe.Record < 0 || ndjson != (fe.Line > 0) || i > 0 && fe.Record < d[i-1].Record {
			t.Fatalf("bad FieldError %#v", fe)
		}
		// Field is "" for the whole record, and for an unknown field named "".
		whole := strings.HasPrefix(fe.Message, "malformed JSON") || strings.HasPrefix(fe.Message, "record must be a JSON object")
		if whole && fe.Field != "" || !whole && !strings.Contains(fe.Message, strconv.Quote(fe.Field)) {
			t.Fatalf("problem does not name its field: %#v", fe)
		}
	}
}

// agreeWithEncodingJSON checks the pin against the standard library's
// reading of Raw (exact keys, as a map).
func agreeWithEncodingJSON(t *testing.T, r Record) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json cannot read Raw %s: %v", r.Raw, err)
	}
	if n, _ := m["index"].(json.Number).Int64(); n != r.Pin.Index {
		t.Fatalf("index: encoding/json reads %v, pin has %d", m["index"], r.Pin.Index)
	}
	strs := map[string]*string{
		"unique_id": &r.Pin.UniqueID, "category": &r.Pin.Category, "title": r.Pin.Title,
		"description": r.Pin.Description, "poster_name": r.Pin.PosterName, "follower_count": r.Pin.FollowerCount,
		"tag_list": r.Pin.TagList, "is_image_or_video": r.Pin.IsImageOrVideo, "image_src": r.Pin.ImageSrc,
		"save_location": r.Pin.SaveLocation,
	}
	for name, p := range strs {
		v := m[name]
		switch {
		case p == nil && v != nil:
			t.Fatalf("%s: encoding/json reads %q, pin has nil", name, v)
		case p != nil && v != *p:
			t.Fatalf("%s: encoding/json reads %q, pin has %q", name, v, *p)
		}
	}
	if d := r.Pin.Downloaded; d == nil && m["downloaded"] != nil || d != nil && m["downloaded"] != json.Number(strconv.FormatInt(*d, 10)) {
		t.Fatalf("downloaded: encoding/json reads %v, pin has %v", m["downloaded"], d)
	}
}

func checkCleaned(t *testing.T, c Cleaned) {
	t.Helper()
	if c.Tags == nil || c.UniqueID != strings.ToLower(c.UniqueID) || c.Category == "" || c.Category != strings.TrimSpace(c.Category) || !visible(c.Category) {
		t.Fatalf("cleaned pin breaks an invariant: %+v", c)
	}
	for _, s := range []*string{c.Title, c.Description, c.PosterName, c.TagList, c.IsImageOrVideo, c.ImageSrc, c.SaveLocation} {
		if s != nil && (*s == "" || *s != strings.TrimSpace(*s)) {
			t.Fatalf("cleaned text %q is blank or untrimmed", *s)
		}
	}
	for _, tag := range c.Tags {
		if tag == "" || tag != strings.TrimSpace(tag) || strings.Contains(tag, ",") {
			t.Fatalf("bad tag %q", tag)
		}
	}
	if c.Downloaded != nil && *c.Downloaded != 0 && *c.Downloaded != 1 {
		t.Fatalf("downloaded = %d", *c.Downloaded)
	}
}

// FuzzScannerAgreesWithEncodingJSON checks the hand-written scanner against
// the standard library: it accepts exactly the JSON texts json.Valid accepts
// (except invalid UTF-8 and nesting past maxDepth, which it rejects on
// purpose), compacts them as json.Compact does, and decodes strings as
// json.Unmarshal does.
func FuzzScannerAgreesWithEncodingJSON(f *testing.F) {
	for _, b := range fuzzBodies(f) {
		f.Add(b, false)
	}
	for _, s := range []string{`"a\u00e9\ud83d\ude00\udc00\ud800x\n\/"`, `-0.0e-0`, `[1, [true, false, null]]`, `{"a" : {"b":[]}}`, `01`, `"\u12"`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, _ bool) {
		s := scanner{src: data, keep: true}
		s.skipSpace()
		_, _, _, raw, err := s.record(nil)
		if err == nil {
			if s.skipSpace(); s.pos < len(data) {
				err = s.fail("unexpected data")
			}
		}
		valid := json.Valid(data)
		switch {
		case err == nil && !valid:
			t.Fatalf("scanner accepts what encoding/json rejects: %q", data)
		case err != nil && valid && utf8.Valid(data) && !strings.Contains(err.Error(), "nested deeper"):
			t.Fatalf("scanner rejects valid JSON %q: %v", data, err)
		case err != nil:
			if off := err.(*syntaxError).off; off < 0 || off > len(data) {
				t.Fatalf("error offset %d outside the %d-byte input", off, len(data))
			}
			return
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil || !bytes.Equal(buf.Bytes(), raw) {
			t.Fatalf("compact: scanner %q, encoding/json %q (%v)", raw, buf.Bytes(), err)
		}
		if raw[0] == '"' {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if got := string(appendUnescaped(nil, raw[1:len(raw)-1])); got != want {
				t.Fatalf("unescape %s: got %q, encoding/json %q", raw, got, want)
			}
		}
	})
}
