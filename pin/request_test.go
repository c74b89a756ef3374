package pin

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const testUUID = "fbe53c66-3442-4773-b19e-d3ec6f54dddf"

// goodPin is a valid pin object with the given index, spaced like the
// source app's JSON.
func goodPin(i int) string {
	return fmt.Sprintf(`{"index": %d, "unique_id": "%08d-3442-4773-b19e-d3ec6f54dddf", "category": "travel"}`, i, i)
}

// minimalPin is goodPin(i) decoded.
func minimalPin(i int) Pin {
	return Pin{Index: int64(i), UniqueID: fmt.Sprintf("%08d-3442-4773-b19e-d3ec6f54dddf", i), Category: "travel"}
}

func TestParseRequestAcceptsASingleObject(t *testing.T) {
	body := `  {"index": 7528, "unique_id": "` + testUUID + `", "category": "mens-fashion",
		"title": "A \"quoted\" title", "description": null, "downloaded": 1, "save_location": "Local save in /data/x"}` + "\n"
	recs, err := ParseRequest([]byte(body), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{
		Pin: Pin{Index: 7528, UniqueID: testUUID, Category: "mens-fashion", Title: str(`A "quoted" title`),
			Downloaded: i64(1), SaveLocation: str("Local save in /data/x")},
		Raw: []byte(`{"index":7528,"unique_id":"` + testUUID + `","category":"mens-fashion","title":"A \"quoted\" title","description":null,"downloaded":1,"save_location":"Local save in /data/x"}`),
	}}
	assertRecords(t, recs, want)
}

func TestParseRequestAcceptsAnArray(t *testing.T) {
	body := "[\n  " + goodPin(0) + ",\n  " + goodPin(1) + "\n]"
	recs, err := ParseRequest([]byte(body), false)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, recs, []Record{
		{Pin: minimalPin(0), Raw: compactPin(0)},
		{Pin: minimalPin(1), Raw: compactPin(1)},
	})
}

func TestParseRequestAcceptsNDJSONWithBlankLinesAndCRLF(t *testing.T) {
	body := goodPin(0) + "\n\n   \n" + goodPin(1) + "\r\n" + goodPin(2) // no final newline
	recs, err := ParseRequest([]byte(body), true)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, recs, []Record{
		{Pin: minimalPin(0), Raw: compactPin(0)},
		{Pin: minimalPin(1), Raw: compactPin(1)},
		{Pin: minimalPin(2), Raw: compactPin(2)},
	})
}

func TestParseRequestKeepsUnknownFieldsInRaw(t *testing.T) {
	body := `{"zz": 1.50, "index": 1, "extra": {"a": [1, 2, {"b": null}], "c": "\u00e9\n"},
	          "unique_id": "` + testUUID + `", "Index": "x", "category": "art", "flag": true, "zz": 2}`
	recs, err := ParseRequest([]byte(body), false)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, recs, []Record{{
		Pin: Pin{Index: 1, UniqueID: testUUID, Category: "art"},
		Raw: []byte(`{"zz":1.50,"index":1,"extra":{"a":[1,2,{"b":null}],"c":"\u00e9\n"},"unique_id":"` + testUUID + `","Index":"x","category":"art","flag":true,"zz":2}`),
	}})
}

func TestParseRequestDecodesEscapesInKeysAndValues(t *testing.T) {
	body := `{"ind\u0065x": 1, "unique_id": "FBE53C66-3442-4773-B19E-D3EC6F54DDDF", "category": "a\/b",` +
		` "title": "caf\u00e9 \ud83d\ude00 \ud800 tab\t", "poster_name": "raw é"}`
	recs, err := ParseRequest([]byte(body), false)
	if err != nil {
		t.Fatal(err)
	}
	want := Pin{Index: 1, UniqueID: "FBE53C66-3442-4773-B19E-D3EC6F54DDDF", Category: "a/b",
		Title: str("café 😀 \ufffd tab\t"), PosterName: str("raw é")}
	if !reflect.DeepEqual(recs[0].Pin, want) {
		t.Errorf("got %s, want %s", fmtPin(recs[0].Pin), fmtPin(want))
	}
	if got := Clean(recs[0].Pin, Lineage{}).UniqueID; got != testUUID {
		t.Errorf("cleaned unique_id = %s, want the lowercase %s", got, testUUID)
	}
}

func TestParseRequestRawsDoNotOverlap(t *testing.T) {
	recs, err := ParseRequest([]byte(goodPin(0)+"\n"+goodPin(1)), true)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(recs[0].Raw, "garbage"...)
	if string(recs[1].Raw) != string(compactPin(1)) {
		t.Errorf("appending to one Raw changed the next: %s", recs[1].Raw)
	}
}

// TestParseRequestRejectsABadPin lists each schema violation in a single
// object: the problem+json shows exactly these.
func TestParseRequestRejectsABadPin(t *testing.T) {
	const (
		u = `"unique_id": "` + testUUID + `"`
		c = `"category": "travel"`
	)
	for _, tc := range []struct {
		name, body string
		want       []FieldError
	}{
		{"index as string", `{"index": "12", ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got string "12"`}}},
		{"index with fraction", `{"index": 1.5, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got number 1.5`}}},
		{"index negative", `{"index": -1, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got number -1`}}},
		{"index with exponent", `{"index": 1e3, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got number 1e3`}}},
		{"index too large", `{"index": 99999999999999999999, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0 that fits in 64 bits, got number 99999999999999999999`}}},
		{"index null", `{"index": null, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got null`}}},
		{"downloaded as string", `{"index": 1, ` + u + `, ` + c + `, "downloaded": "1"}`,
			[]FieldError{{Field: "downloaded", Message: `field "downloaded" must be 0, 1 or null, got string "1"`}}},
		{"downloaded 2", `{"index": 1, ` + u + `, ` + c + `, "downloaded": 2}`,
			[]FieldError{{Field: "downloaded", Message: `field "downloaded" must be 0, 1 or null, got number 2`}}},
		{"downloaded boolean", `{"index": 1, ` + u + `, ` + c + `, "downloaded": true}`,
			[]FieldError{{Field: "downloaded", Message: `field "downloaded" must be 0, 1 or null, got boolean true`}}},
		{"title as number", `{"index": 1, ` + u + `, ` + c + `, "title": 5}`,
			[]FieldError{{Field: "title", Message: `field "title" must be a string or null, got number 5`}}},
		{"follower_count as number", `{"index": 1, ` + u + `, ` + c + `, "follower_count": 437}`,
			[]FieldError{{Field: "follower_count", Message: `field "follower_count" must be a string or null, got number 437`}}},
		{"tag_list as array", `{"index": 1, ` + u + `, ` + c + `, "tag_list": ["a", "b"]}`,
			[]FieldError{{Field: "tag_list", Message: `field "tag_list" must be a string or null, got an array`}}},
		{"missing index", `{` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `missing required field "index"`}}},
		{"missing unique_id", `{"index": 1, ` + c + `}`,
			[]FieldError{{Field: "unique_id", Message: `missing required field "unique_id"`}}},
		{"missing category", `{"index": 1, ` + u + `}`,
			[]FieldError{{Field: "category", Message: `missing required field "category"`}}},
		{"field names match exactly", `{"Index": 1, ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `missing required field "index"`}}},
		{"bad UUID", `{"index": 1, "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddZ", ` + c + `}`,
			[]FieldError{{Field: "unique_id", Message: `field "unique_id" must be a UUID string such as "fbe53c66-3442-4773-b19e-d3ec6f54dddf", got string "fbe53c66-3442-4773-b19e-d3ec6f54dddZ"`}}},
		{"UUID as number", `{"index": 1, "unique_id": 42, ` + c + `}`,
			[]FieldError{{Field: "unique_id", Message: `field "unique_id" must be a UUID string such as "fbe53c66-3442-4773-b19e-d3ec6f54dddf", got number 42`}}},
		{"empty category", `{"index": 1, ` + u + `, "category": ""}`,
			[]FieldError{{Field: "category", Message: `field "category" must be a non-empty string, got string ""`}}},
		{"blank category", `{"index": 1, ` + u + `, "category": " \t"}`,
			[]FieldError{{Field: "category", Message: `field "category" must contain a visible character (a letter, digit, punctuation mark or symbol); got string " \t", which has none`}}},
		{"field given twice", `{"index": 1, ` + u + `, ` + c + `, "index": 2}`,
			[]FieldError{{Field: "index", Message: `field "index" appears more than once`}}},
		{"NUL in a string", `{"index": 1, ` + u + `, ` + c + `, "title": "a\u0000b"}`,
			[]FieldError{{Field: "title", Message: `field "title" must not contain the NUL character (\u0000)`}}},
		{"long value shortened", `{"index": "` + strings.Repeat("9", 50) + `", ` + u + `, ` + c + `}`,
			[]FieldError{{Field: "index", Message: `field "index" must be an integer >= 0, got string "` + strings.Repeat("9", 40) + `…"`}}},
		{"every problem of the record", `{"index": -1, "category": 5, "title": false}`,
			[]FieldError{
				{Field: "index", Message: `field "index" must be an integer >= 0, got number -1`},
				{Field: "unique_id", Message: `missing required field "unique_id"`},
				{Field: "category", Message: `field "category" must be a non-empty string, got number 5`},
				{Field: "title", Message: `field "title" must be a string or null, got boolean false`},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []string
			for _, fe := range tc.want[:min(3, len(tc.want))] {
				msgs = append(msgs, fe.Message)
			}
			msg := "the pin is invalid; nothing was accepted. " + strings.Join(msgs, "; ")
			if len(tc.want) > 3 {
				msg += fmt.Sprintf("; and %d more problem", len(tc.want)-3)
			}
			assertRejected(t, tc.body, false, msg, tc.want)

			// Validate (the lanes' check) finds the same problems.
			_, err := Validate([]byte(tc.body))
			e, ok := err.(*Error)
			if !ok || e.Code != EINVALID || !reflect.DeepEqual(e.Detail, tc.want) {
				t.Errorf("Validate: %#v", err)
			}
		})
	}
}

func TestParseRequestRejectsMalformedJSON(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ndjson     bool
		msg        string
		want       []FieldError
	}{
		{"object", `{"index": 1, "unique_id": }`, false,
			`the request body is not valid JSON; nothing was accepted. malformed JSON at byte offset 26 (line 1, column 27): invalid character '}' looking for beginning of value`,
			[]FieldError{{Record: 0, Message: `malformed JSON at byte offset 26 (line 1, column 27): invalid character '}' looking for beginning of value`}}},
		{"object over lines", "{\n  \"index\": 1,\n  \"unique_id\" \"x\"\n}", false,
			`the request body is not valid JSON; nothing was accepted. malformed JSON at byte offset 30 (line 3, column 15): invalid character '"' after object key`,
			[]FieldError{{Record: 0, Message: `malformed JSON at byte offset 30 (line 3, column 15): invalid character '"' after object key`}}},
		{"NDJSON line 3", goodPin(0) + "\n" + goodPin(1) + "\n" + `{"index": 2, "unique_id": ` + "\n" + goodPin(3) + "\n", true,
			`1 of 4 pins is invalid; nothing was accepted. line 3: malformed JSON at column 27: unexpected end of JSON input`,
			[]FieldError{{Record: 2, Line: 3, Message: `malformed JSON at column 27: unexpected end of JSON input`}}},
		{"NDJSON line holding two objects", goodPin(0) + " " + goodPin(1), true,
			`1 of 1 pins is invalid; nothing was accepted. line 1: malformed JSON at column 89: unexpected data after the JSON object; NDJSON holds one pin per line`,
			[]FieldError{{Record: 0, Line: 1, Message: `malformed JSON at column 89: unexpected data after the JSON object; NDJSON holds one pin per line`}}},
		{"NDJSON pretty-printed object", "{\n\"index\": 1\n}", true,
			`3 of 3 pins are invalid; nothing was accepted. line 1: malformed JSON at column 2: unexpected end of JSON input; line 2: malformed JSON at column 8: unexpected data after the JSON object; NDJSON holds one pin per line; line 3: malformed JSON at column 1: invalid character '}' looking for beginning of value`,
			[]FieldError{
				{Record: 0, Line: 1, Message: `malformed JSON at column 2: unexpected end of JSON input`},
				{Record: 1, Line: 2, Message: `malformed JSON at column 8: unexpected data after the JSON object; NDJSON holds one pin per line`},
				{Record: 2, Line: 3, Message: `malformed JSON at column 1: invalid character '}' looking for beginning of value`},
			}},
		{"invalid UTF-8", "{\"index\": 1, \"title\": \"\xff\"}", false,
			`the request body is not valid JSON; nothing was accepted. malformed JSON at byte offset 23 (line 1, column 24): invalid UTF-8 (byte 0xff) in string literal`,
			[]FieldError{{Message: `malformed JSON at byte offset 23 (line 1, column 24): invalid UTF-8 (byte 0xff) in string literal`}}},
		{"control character in a string", "{\"index\": 1, \"title\": \"a\tb\"}", false,
			`the request body is not valid JSON; nothing was accepted. malformed JSON at byte offset 24 (line 1, column 25): invalid character '\t' in string literal`,
			[]FieldError{{Message: `malformed JSON at byte offset 24 (line 1, column 25): invalid character '\t' in string literal`}}},
		{"array element", "[" + goodPin(0) + ", {\"index\": 1,,}]", false,
			`the request body is not valid JSON; nothing was accepted. record 1: malformed JSON at byte offset 102 (line 1, column 103): invalid character ',' looking for beginning of object key string`,
			[]FieldError{{Record: 1, Message: `malformed JSON at byte offset 102 (line 1, column 103): invalid character ',' looking for beginning of object key string`}}},
		{"array missing a comma", "[" + goodPin(0) + "\n " + goodPin(1) + "]", false,
			`the request body is not valid JSON; nothing was accepted. record 1: malformed JSON at byte offset 90 (line 2, column 2): invalid character '{' after array element`,
			[]FieldError{{Record: 1, Message: `malformed JSON at byte offset 90 (line 2, column 2): invalid character '{' after array element`}}},
		{"array cut short", "[" + goodPin(0) + ",", false,
			`the request body is not valid JSON; nothing was accepted. record 1: malformed JSON at byte offset 89 (line 1, column 90): unexpected end of JSON input`,
			[]FieldError{{Record: 1, Message: `malformed JSON at byte offset 89 (line 1, column 90): unexpected end of JSON input`}}},
		{"data after the array", "[" + goodPin(0) + "] []", false,
			`the request body is not valid JSON; nothing was accepted. record 1: malformed JSON at byte offset 90 (line 1, column 91): unexpected data after the JSON array`,
			[]FieldError{{Record: 1, Message: `malformed JSON at byte offset 90 (line 1, column 91): unexpected data after the JSON array`}}},
		{"NDJSON sent as JSON", goodPin(0) + "\n" + goodPin(1), false,
			`the request body is not valid JSON; nothing was accepted. malformed JSON at byte offset 88 (line 2, column 1): unexpected data after the pin's JSON object; send several pins as a JSON array, or as NDJSON with Content-Type: application/x-ndjson`,
			[]FieldError{{Record: 0, Message: `malformed JSON at byte offset 88 (line 2, column 1): unexpected data after the pin's JSON object; send several pins as a JSON array, or as NDJSON with Content-Type: application/x-ndjson`}}},
		{"not JSON", "index=1", false,
			`the request body is not valid JSON; nothing was accepted. record 0: malformed JSON at byte offset 0 (line 1, column 1): the body must be a JSON object, a JSON array of objects, or NDJSON with Content-Type: application/x-ndjson; it starts with 'i'`,
			[]FieldError{{Message: `malformed JSON at byte offset 0 (line 1, column 1): the body must be a JSON object, a JSON array of objects, or NDJSON with Content-Type: application/x-ndjson; it starts with 'i'`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertRejected(t, tc.body, tc.ndjson, tc.msg, tc.want)
		})
	}
}

func TestParseRequestRejectsWholeRequestOnOneBadPin(t *testing.T) {
	pins := []string{goodPin(0), goodPin(1), goodPin(2), `{"index": "12", "unique_id": "` + testUUID + `", "category": "travel"}`, goodPin(4)}
	want := []FieldError{{Record: 3, Field: "index", Message: `field "index" must be an integer >= 0, got string "12"`}}
	assertRejected(t, "["+strings.Join(pins, ",")+"]", false,
		`1 of 5 pins is invalid; nothing was accepted. record 3: field "index" must be an integer >= 0, got string "12"`, want)

	// In NDJSON, Record counts pins and Line counts lines, blank ones too.
	want = []FieldError{{Record: 3, Line: 5, Field: "index", Message: `field "index" must be an integer >= 0, got string "12"`}}
	assertRejected(t, pins[0]+"\n"+pins[1]+"\n\n"+pins[2]+"\n"+pins[3]+"\n"+pins[4]+"\n", true,
		`1 of 5 pins is invalid; nothing was accepted. line 5: field "index" must be an integer >= 0, got string "12"`, want)
}

func TestParseRequestListsEveryBadPin(t *testing.T) {
	pins := []string{goodPin(0), `{"index": "12", "unique_id": "` + testUUID + `", "category": "travel"}`, goodPin(2),
		`{"index": 3, "category": "travel"}`, goodPin(4)}
	assertRejected(t, "["+strings.Join(pins, ",")+"]", false,
		`2 of 5 pins are invalid; nothing was accepted. record 1: field "index" must be an integer >= 0, got string "12"; record 3: missing required field "unique_id"`,
		[]FieldError{
			{Record: 1, Field: "index", Message: `field "index" must be an integer >= 0, got string "12"`},
			{Record: 3, Field: "unique_id", Message: `missing required field "unique_id"`},
		})
}

func TestParseRequestRejectsArrayElementsThatAreNotObjects(t *testing.T) {
	assertRejected(t, "["+goodPin(0)+`, 5, "x", null, [], {}]`, false,
		`5 of 6 pins are invalid; nothing was accepted. record 1: record must be a JSON object, got number 5; record 2: record must be a JSON object, got string "x"; record 3: record must be a JSON object, got null; and 4 more problems`,
		[]FieldError{
			{Record: 1, Message: `record must be a JSON object, got number 5`},
			{Record: 2, Message: `record must be a JSON object, got string "x"`},
			{Record: 3, Message: `record must be a JSON object, got null`},
			{Record: 4, Message: `record must be a JSON object, got an array`},
			{Record: 5, Field: "index", Message: `missing required field "index"`},
			{Record: 5, Field: "unique_id", Message: `missing required field "unique_id"`},
			{Record: 5, Field: "category", Message: `missing required field "category"`},
		})
}

func TestParseRequestCapsTheListOfProblems(t *testing.T) {
	bad := strings.Repeat(`{"index": -1, "unique_id": "`+testUUID+`", "category": "x"},`, 150)
	_, err := ParseRequest([]byte("["+bad+goodPin(150)+"]"), false)
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("got %v, want an *Error", err)
	}
	if detail := e.Detail.([]FieldError); len(detail) != MaxProblems || detail[99].Record != 99 {
		t.Errorf("detail has %d problems, want the first %d", len(detail), MaxProblems)
	}
	if want := "150 of 151 pins are invalid; nothing was accepted."; !strings.HasPrefix(e.Message, want) {
		t.Errorf("message %q does not start with %q", e.Message, want)
	}
	if want := "; and 147 more problems (the detail lists the first 100 of 150)"; !strings.HasSuffix(e.Message, want) {
		t.Errorf("message %q does not end with %q", e.Message, want)
	}
}

func TestParseRequestRejectsARequestWithoutPins(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ndjson     bool
	}{
		{"empty body", "", false},
		{"blank body", " \n\t", false},
		{"empty array", "[ ]", false},
		{"empty NDJSON", "", true},
		{"NDJSON of blank lines", "\n \r\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertRejected(t, tc.body, tc.ndjson, "the request holds no pins", nil)
		})
	}
}

// assertRejected checks that ParseRequest rejects body with exactly this
// message and detail.
func assertRejected(t *testing.T, body string, ndjson bool, msg string, detail []FieldError) {
	t.Helper()
	recs, err := ParseRequest([]byte(body), ndjson)
	if recs != nil {
		t.Errorf("got %d records with the error, want nil", len(recs))
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("got error %v, want an *Error", err)
	}
	if e.Code != EINVALID {
		t.Errorf("code = %s, want %s", e.Code, EINVALID)
	}
	if e.Message != msg {
		t.Errorf("message:\n got %s\nwant %s", e.Message, msg)
	}
	var got []FieldError
	if e.Detail != nil {
		got = e.Detail.([]FieldError)
	}
	if !reflect.DeepEqual(got, detail) {
		t.Errorf("detail:\n got %#v\nwant %#v", got, detail)
	}
}

func assertRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Pin, want[i].Pin) {
			t.Errorf("record %d pin:\n got %s\nwant %s", i, fmtPin(got[i].Pin), fmtPin(want[i].Pin))
		}
		if string(got[i].Raw) != string(want[i].Raw) {
			t.Errorf("record %d raw:\n got %s\nwant %s", i, got[i].Raw, want[i].Raw)
		}
	}
}

func compactPin(i int) []byte {
	return []byte(strings.NewReplacer(": ", ":", ", ", ",").Replace(goodPin(i)))
}

func fmtPin(p Pin) string {
	s := fmt.Sprintf("%+v", p)
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			s += fmt.Sprintf(" %s=%q", v.Type().Field(i).Name, fmt.Sprint(f.Elem().Interface()))
		}
	}
	return s
}

func TestParseRequestIgnoresAByteOrderMark(t *testing.T) {
	for _, ndjson := range []bool{false, true} {
		recs, err := ParseRequest([]byte("\xef\xbb\xbf"+goodPin(0)+"\n"), ndjson)
		if err != nil {
			t.Fatalf("ndjson=%v: %v", ndjson, err)
		}
		assertRecords(t, recs, []Record{{Pin: minimalPin(0), Raw: compactPin(0)}})
	}
	// Only at the start: elsewhere it is malformed JSON.
	assertRejected(t, goodPin(0)+"\n\xef\xbb\xbf"+goodPin(1), true,
		`1 of 2 pins is invalid; nothing was accepted. line 2: malformed JSON at column 1: invalid character byte 0xef looking for beginning of value`,
		[]FieldError{{Record: 1, Line: 2, Message: `malformed JSON at column 1: invalid character byte 0xef looking for beginning of value`}})
}
