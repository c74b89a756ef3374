package query

import (
	"encoding/json"
	"testing"
)

func TestCellBytesIsTheLengthOfTheJSONAnswer(t *testing.T) {
	for _, v := range []any{
		"plain", "", "a\x00b", `quote " and \ backslash`, "<tag> & more", "tab\tnew\nline", "ünïcødé",
		"\b\f\r\x01\x1f", []any{}, map[string]any{}, []any{"a", nil, json.Number("12")},
		map[string]any{"k": "v", "<": []any{"x", map[string]any{}}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := cellBytes(v); got != int64(len(b)) {
			t.Errorf("%q: cellBytes %d, JSON has %d bytes", v, got, len(b))
		}
	}
}

func TestBudgetRefusesAValueOrAnAnswerPastItsLimit(t *testing.T) {
	b := &budget{maxValue: 10, maxTotal: 30}
	if err := b.add(16, []int64{10}); err != nil {
		t.Fatal(err)
	}
	if err := b.add(0, []int64{11}); err == nil || budgetError(b) == nil {
		t.Fatal("a value of 11 bytes passed a limit of 10")
	}
	b = &budget{maxValue: 10, maxTotal: 30}
	for range 3 {
		_ = b.add(0, []int64{10})
	}
	if err := b.add(0, []int64{1}); err == nil {
		t.Fatal("31 bytes passed a limit of 30")
	}
}
