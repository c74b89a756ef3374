package pin

import (
	"strings"
	"testing"
)

// TestParseRequestCountsPinsNotProblems: the counts say how many pins a
// request held and how many were bad, however many problems a bad pin had.
func TestParseRequestCountsPinsNotProblems(t *testing.T) {
	threeBad := `{"index": "x", "unique_id": 5, "category": ""}` // three problems, one pin
	array := func(pins ...string) string { return "[" + strings.Join(pins, ",") + "]" }
	var fortyGood []string
	for i := range 40 {
		fortyGood = append(fortyGood, goodPin(i))
	}
	for _, c := range []struct {
		name   string
		body   string
		ndjson bool
		want   Counts
		ok     bool
	}{
		{"one pin with three bad fields", threeBad, false, Counts{Pins: 1, Invalid: 1}, false},
		{"41 pins, one bad", array(append(fortyGood, threeBad)...), false, Counts{Pins: 41, Invalid: 1}, false},
		{"three pins, two bad, NDJSON", goodPin(0) + "\n" + threeBad + "\n{not json\n", true, Counts{Pins: 3, Invalid: 2}, false},
		{"not JSON at all", "nonsense", false, Counts{Pins: 1, Invalid: 1}, false},
		{"all good", array(goodPin(0), goodPin(1)), false, Counts{Pins: 2}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs, got, err := Limits{}.ParseRequestCounts([]byte(c.body), c.ndjson)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if c.ok && len(recs) != c.want.Pins {
				t.Errorf("%d records, want %d", len(recs), c.want.Pins)
			}
			if got != c.want {
				t.Errorf("counts = %+v, want %+v", got, c.want)
			}
		})
	}
}
