package pin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzSeeds are request bodies worth mutating: the real pins and the
// malformed classes of the table tests.
func fuzzSeeds(f *testing.F) {
	lines := samplePins(f)
	for _, l := range lines {
		f.Add(l, false)
	}
	f.Add(bytes.Join(lines, []byte("\n")), true)
	f.Add(append(append([]byte("["), bytes.Join(lines, []byte(",\n"))...), ']'), false)
	for _, s := range []string{
		``, `[]`, `[1, "x", null, [], {}]`, "\n\n", `{"index": "12"}`, `{"index": 1.5, "downloaded": 2}`,
		`{"ind\u0065x": 1, "unique_id": "FBE53C66-3442-4773-B19E-D3EC6F54DDDF", "category": "a", "title": "\ud83d\ude00\u0000"}`,
		`{"index": 1, "unique_id": "` + testUUID + `", "category": "x", "index": 2}`,
		`{"index": 1, "unique_id": "` + testUUID + `", "category": "x", "follower_count": "1.5k", "tag_list": " a,,b "}`,
		`[{"index": 1,,}]`, `{"a": [[[[{"b": -0.5e+10}]]]], "index": 0}`, "{\"title\": \"\xff\"}",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
}

// FuzzParseRequest checks that ParseRequest never panics, that a rejection
// is a well-formed EINVALID, and that every accepted record re-validates to
// the same pin, cleans the same way from Raw as from the pin, and agrees with
// encoding/json.
func FuzzParseRequest(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		recs, err := ParseRequest(body, ndjson)
		if err != nil {
			checkRejection(t, recs, err, ndjson)
			return
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for i, r := range recs {
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
	})
}

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
	for _, fe := range d {
		if fe.Message == "" || fe.Record < 0 || ndjson != (fe.Line > 0) {
			t.Fatalf("bad FieldError %#v", fe)
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
	if c.Tags == nil || c.UniqueID != strings.ToLower(c.UniqueID) || c.Category == "" || c.Category != strings.TrimSpace(c.Category) {
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
	fuzzSeeds(f)
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
