package pin

import (
	"encoding/json"
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
