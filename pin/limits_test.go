package pin

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// invisibleCategories are categories a reader cannot see, one for each class
// visible refuses.
var invisibleCategories = map[string]string{
	"zero width space":          "\u200b",
	"zero width non-joiner":     "\u200c",
	"zero width joiner":         "\u200d",
	"word joiner":               "\u2060",
	"byte order mark":           "\ufeff",
	"soft hyphen":               "\u00ad",
	"left-to-right mark":        "\u200e",
	"right-to-left override":    "\u202e",
	"mongolian vowel separator": "\u180e",
	"tag space":                 "\U000e0020",
	"no-break space":            "\u00a0",
	"ideographic space":         "\u3000",
	"line separator":            "\u2028",
	"paragraph separator":       "\u2029",
	"bell (a control)":          "\a",
	"hangul filler":             "\u3164",
	"variation selector 16":     "\ufe0f",
	"combining grapheme joiner": "\u034f",
	"braille pattern blank":     "\u2800",
	"private use":               "\ue000",
	"a mix of them":             " \u200b\u00a0\u2060\ufeff\u3164\t",
}

func TestValidateRefusesACategoryWithoutAVisibleCharacter(t *testing.T) {
	for name, cat := range invisibleCategories {
		t.Run(name, func(t *testing.T) {
			body := `{"index": 1, "unique_id": "` + testUUID + `", "category": ` + jsonString(cat) + `}`
			want := []FieldError{{Field: "category", Message: `field "category" must contain a visible character (a letter, digit, punctuation mark or symbol); got string ` + strconv.Quote(cat) + `, which has none`}}
			assertRejected(t, body, false, "the pin is invalid; nothing was accepted. "+want[0].Message, want)
			if _, err := Validate([]byte(body)); err == nil || !strings.Contains(err.Error(), "must contain a visible character") {
				t.Errorf("Validate (the lanes' check) accepts it: %v", err)
			}
		})
	}
}

func TestValidateAcceptsACategoryWithAVisibleCharacter(t *testing.T) {
	for _, cat := range []string{
		"travel", "é", "日本", "-", "€", "😀", "\u0301", "٣",
		"\u200bart\u200b", "\u3164x", " a ",
	} {
		body := `{"index": 1, "unique_id": "` + testUUID + `", "category": ` + jsonString(cat) + `}`
		p, err := Validate([]byte(body))
		if err != nil {
			t.Errorf("category %q: %v", cat, err)
			continue
		}
		if p.Category != cat {
			t.Errorf("category %q decoded as %q", cat, p.Category)
		}
	}
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pinWith is a valid pin object with extra members appended.
func pinWith(members string) string {
	return `{"index": 1, "unique_id": "` + testUUID + `", "category": "travel", ` + members + `}`
}

func TestParseRequestRefusesAFieldOverTheDefaultLimit(t *testing.T) {
	const msg = `field "title" is 15728640 bytes; the most a field may hold is 65536 bytes (PINPIPE_MAX_FIELD_BYTES)`
	body := pinWith(`"title": "` + strings.Repeat("x", 15<<20) + `"`)
	assertRejected(t, body, false, "the pin is invalid; nothing was accepted. "+msg, []FieldError{{Field: "title", Message: msg}})

	// The default applies to zero and negative limits alike, and a field of
	// exactly the limit is accepted.
	for _, l := range []Limits{{}, {MaxFieldBytes: -1}, {MaxFieldBytes: DefaultMaxFieldBytes}} {
		if _, err := l.ParseRequest([]byte(pinWith(`"title": "`+strings.Repeat("x", DefaultMaxFieldBytes)+`"`)), false); err != nil {
			t.Errorf("%+v: a title of exactly %d bytes: %v", l, DefaultMaxFieldBytes, err)
		}
		_, err := l.ParseRequest([]byte(pinWith(`"title": "`+strings.Repeat("x", DefaultMaxFieldBytes+1)+`"`)), false)
		if e, ok := err.(*Error); !ok || !strings.Contains(e.Message, `field "title" is 65537 bytes`) {
			t.Errorf("%+v: a title of %d bytes: %v", l, DefaultMaxFieldBytes+1, err)
		}
	}
}

// TestParseRequestBoundsEveryField checks each kind of field against a small
// limit: what is measured, and what the problem names.
func TestParseRequestBoundsEveryField(t *testing.T) {
	const max = 8
	l := Limits{MaxFieldBytes: max}
	tooLong := func(field string, n int) FieldError {
		return FieldError{Field: field, Message: `field "` + field + `" is ` + strconv.Itoa(n) + ` bytes; the most a field may hold is 8 bytes (PINPIPE_MAX_FIELD_BYTES)`}
	}
	for _, tc := range []struct {
		name, members string
		want          []FieldError // nil: accepted
	}{
		{"known string at the limit", `"title": "12345678"`, nil},
		{"escapes count as the text they decode to", `"title": "\u00e9\u00e9\u00e9\u00e9"`, nil},
		{"decoded text over the limit", `"description": "\u00e9\u00e9\u00e9\u00e9\u00e9"`, []FieldError{tooLong("description", 10)}},
		{"multi-byte UTF-8 counts bytes", `"poster_name": "日本語"`, []FieldError{tooLong("poster_name", 9)}},
		{"null is not measured", `"title": null`, nil},
		{"follower_count", `"follower_count": "123456789"`, []FieldError{tooLong("follower_count", 9)}},
		{"tag_list", `"tag_list": "a,b,c,d,e"`, []FieldError{tooLong("tag_list", 9)}},
		{"is_image_or_video", `"is_image_or_video": "image/png"`, []FieldError{tooLong("is_image_or_video", 9)}},
		{"image_src", `"image_src": "https://x"`, []FieldError{tooLong("image_src", 9)}},
		{"save_location", `"save_location": "/data/abc"`, []FieldError{tooLong("save_location", 9)}},
		{"every long field is listed", `"title": "123456789", "description": "1234567890"`,
			[]FieldError{tooLong("title", 9), tooLong("description", 10)}},
		{"unknown string, counted with its quotes", `"extra": "1234567"`, []FieldError{tooLong("extra", 9)}},
		{"unknown number", `"extra": 123456789`, []FieldError{tooLong("extra", 9)}},
		{"unknown object counted as compact JSON", `"extra": { "a" :  1 }`, nil}, // {"a":1} is 7 bytes
		{"unknown array over the limit", `"extra": [1, 2, 3, 4, 5]`, []FieldError{tooLong("extra", 11)}},
		{"unknown field's name", `"123456789": 1`,
			[]FieldError{{Field: "123456789", Message: `the name of field "123456789" is 9 bytes; the most a field name may hold is 8 bytes (PINPIPE_MAX_FIELD_BYTES)`}}},
		{"nested fields are part of their field's value", `"x": {"title": "123456789"}`, []FieldError{tooLong("x", 21)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := pinWith(tc.members)
			// category "travel" is 6 bytes, index and unique_id are bounded
			// by the schema; only the members under test can be too long.
			recs, err := l.ParseRequest([]byte(body), false)
			if tc.want == nil {
				if err != nil || len(recs) != 1 {
					t.Fatalf("want it accepted, got %v", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || !reflect.DeepEqual(e.Detail, tc.want) {
				t.Fatalf("got %#v, want detail %#v", err, tc.want)
			}
			// The lanes' Validate does not apply the limit.
			if _, err := Validate([]byte(body)); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseRequestBoundsTheCategory(t *testing.T) {
	body := `{"index": 1, "unique_id": "` + testUUID + `", "category": "` + strings.Repeat("\u200b", 3) + `"}`
	want := []FieldError{{Field: "category", Message: `field "category" is 9 bytes; the most a field may hold is 8 bytes (PINPIPE_MAX_FIELD_BYTES)`}}
	_, err := Limits{MaxFieldBytes: 8}.ParseRequest([]byte(body), false)
	if e, ok := err.(*Error); !ok || !reflect.DeepEqual(e.Detail, want) {
		t.Fatalf("got %#v, want detail %#v", err, want)
	}
}

func TestParseRequestShortensALongFieldNameInTheProblem(t *testing.T) {
	name := strings.Repeat("n", 100)
	body := pinWith(`"` + name + `": 1`)
	_, err := Limits{MaxFieldBytes: 64}.ParseRequest([]byte(body), false)
	short := strings.Repeat("n", 40) + "…"
	want := []FieldError{{Field: short, Message: `the name of field "` + short + `" is 100 bytes; the most a field name may hold is 64 bytes (PINPIPE_MAX_FIELD_BYTES)`}}
	if e, ok := err.(*Error); !ok || !reflect.DeepEqual(e.Detail, want) {
		t.Fatalf("got %#v, want detail %#v", err, want)
	}
}

func TestParseRequestNamesTheRecordOfALongField(t *testing.T) {
	l := Limits{MaxFieldBytes: 16}
	long := pinWith(`"title": "` + strings.Repeat("t", 17) + `"`)
	want := []FieldError{{Record: 2, Field: "title", Message: `field "title" is 17 bytes; the most a field may hold is 16 bytes (PINPIPE_MAX_FIELD_BYTES)`}}
	_, err := l.ParseRequest([]byte("["+goodPin(0)+","+goodPin(1)+","+long+"]"), false)
	if e, ok := err.(*Error); !ok || !reflect.DeepEqual(e.Detail, want) ||
		e.Message != "1 of 3 pins is invalid; nothing was accepted. record 2: "+want[0].Message {
		t.Errorf("array: got %#v", err)
	}
	want[0].Line = 4
	_, err = l.ParseRequest([]byte(goodPin(0)+"\n"+goodPin(1)+"\n\n"+long+"\n"), true)
	if e, ok := err.(*Error); !ok || !reflect.DeepEqual(e.Detail, want) ||
		e.Message != "1 of 3 pins is invalid; nothing was accepted. line 4: "+want[0].Message {
		t.Errorf("NDJSON: got %#v", err)
	}
}
