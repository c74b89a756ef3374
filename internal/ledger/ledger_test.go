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

// landedAcrossMidnight: a's v1 landed on the 30th and its v2 on the 1st;
// everything else on the 30th but b's unknown v2, which never landed.
func landedAcrossMidnight() Landed {
	const d1, d2 = "2026-11-30", "2026-12-01"
	return Landed{
		"a": {Title(1): {d1}, Title(2): {d2}},
		"b": {Title(1): {d1}},
		"c": {Title(1): {d1}},
		"d": {Title(1): {d1}},
	}
}

func TestCheckDailyWantsEachDaysNewestOnItsOwnDay(t *testing.T) {
	const d1, d2 = "2026-11-30", "2026-12-01"
	rows := Rows{
		DayKey("a", d1): {Title(1)}, DayKey("a", d2): {Title(2)},
		DayKey("b", d1): {Title(1)}, DayKey("c", d1): {Title(1)}, DayKey("d", d1): {Title(1)},
	}
	if f := sent().CheckDaily("curated", rows, landedAcrossMidnight()); !f.OK() {
		t.Fatalf("a pin re-sent across midnight, a row on each day: %s", f)
	}
	// The same rows read as one row per pin are a's duplicate: what the
	// long soak reported for 2,407 pins that crossed midnight.
	byPin := Rows{}
	for k, v := range rows {
		id := k[:1]
		byPin[id] = append(byPin[id], v...)
	}
	if f := sent().CheckLatest("curated", byPin); len(f.Duplicated) != 1 {
		t.Fatalf("CheckLatest over both days: %s, want a duplicated", f)
	}
}

func TestCheckDailyFindsLossDoublesWrongVersionsAndStrangersPerDay(t *testing.T) {
	const d1, d2 = "2026-11-30", "2026-12-01"
	rows := Rows{
		DayKey("a", d1): {Title(2)}, // v2 landed on the 1st, not the 30th
		// a on the 1st lost
		DayKey("b", d1): {Title(1), Title(1)}, // twice
		DayKey("c", d1): {Title(1)},
		DayKey("d", d1): {Title(1)},
		DayKey("d", d2): {Title(1)}, // d never landed on the 1st
	}
	f := sent().CheckDaily("curated", rows, landedAcrossMidnight())
	if !slices.Equal(f.Lost, []string{DayKey("a", d2)}) || !slices.Equal(f.Duplicated, []string{DayKey("b", d1)}) ||
		!slices.Equal(f.NeverSent, []string{DayKey("d", d2)}) || len(f.WrongVersion) != 1 {
		t.Fatalf("got %s; want a on the 1st lost, b on the 30th twice, a on the 30th the wrong version, d on the 1st never sent", f)
	}
}
