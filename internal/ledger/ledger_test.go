package ledger

import (
	"slices"
	"testing"
)

func sent() *Ledger {
	l := New()
	l.Record(map[string]string{"a": Title(1), "b": Title(1), "c": Title(1), "d": Title(1)}, Accepted)
	l.Record(map[string]string{"a": Title(2)}, Accepted)
	l.Record(map[string]string{"b": Title(2)}, Unknown)
	l.Record(map[string]string{"e": Title(1)}, Unknown)
	l.Record(map[string]string{"f": Title(1)}, Refused)
	return l
}

func TestCheckLatestAcceptsWhatTheOutcomesAllow(t *testing.T) {
	for _, rows := range []Rows{
		{"a": {Title(2)}, "b": {Title(1)}, "c": {Title(1)}, "d": {Title(1)}},
		{"a": {Title(2)}, "b": {Title(2)}, "c": {Title(1)}, "d": {Title(1)}, "e": {Title(1)}},
	} {
		if f := sent().CheckLatest("s", rows); !f.OK() {
			t.Errorf("%v: %s", rows, f)
		}
	}
}

func TestCheckLatestFindsLossDoublesWrongVersionsAndStrangers(t *testing.T) {
	rows := Rows{
		"a": {Title(1)},           // v2 was accepted after v1
		"b": {Title(1), Title(2)}, // twice
		// c lost
		"d": {Title(1)},
		"e": {Title(1)},
		"f": {Title(1)}, // refused
		"x": {Title(1)}, // never sent
	}
	f := sent().CheckLatest("s", rows)
	check := func(what string, got, want []string) {
		slices.Sort(got)
		if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	check("lost", f.Lost, []string{"c"})
	check("duplicated", f.Duplicated, []string{"b"})
	check("never sent", f.NeverSent, []string{"f", "x"})
	if len(f.WrongVersion) != 1 {
		t.Errorf("wrong version: got %q, want a's", f.WrongVersion)
	}
}

func TestCheckAllCountsRetriedCopiesAndFindsLostVersions(t *testing.T) {
	rows := Rows{
		"a": {Title(1), Title(2), Title(2)},
		"b": {Title(1), Title(3)}, // v3 never sent
		"c": {Title(1)},
		// d's accepted v1 lost
		"f": {Title(1)}, // refused
	}
	f, extra := sent().CheckAll("raw", rows)
	if extra != 1 {
		t.Errorf("extra copies: got %d, want 1", extra)
	}
	if len(f.Lost) != 1 || f.Lost[0] != "d "+Title(1) {
		t.Errorf("lost: got %q", f.Lost)
	}
	if len(f.NeverSent) != 2 {
		t.Errorf("never sent: got %q, want b's v3 and refused f", f.NeverSent)
	}
	if len(f.Duplicated)+len(f.WrongVersion) != 0 {
		t.Errorf("got %s", f)
	}
}
