package query_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A statement met again skips the gate and the first prepare, and answers
// as it did, each page its own; a refused statement is refused every time;
// new files (another generation of the views) empty the cache, so the
// next query sees the new day.
func TestARepeatedStatementReusesItsPlanAndARefusedOneIsRefusedAgain(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 21, "2026-11-20", 120), "20261121T080000Z", 1000)
	hits := func() float64 {
		return testutil.ToFloat64(counter(t, st.registry, "pinpipe_query_plan_cache_hits_total"))
	}
	const q = "SELECT unique_id, category FROM pins ORDER BY unique_id"

	first := st.post(q, 50)
	if first.Status != http.StatusOK || hits() != 0 {
		t.Fatalf("first run: status %d, %v cache hits; %s", first.Status, hits(), first.Body)
	}
	again := st.post(q, 50)
	if again.Status != http.StatusOK || hits() != 1 {
		t.Fatalf("second run: status %d, %v cache hits, want 1; %s", again.Status, hits(), again.Body)
	}
	if !reflect.DeepEqual(first.Result.Rows, again.Result.Rows) || !reflect.DeepEqual(first.Result.Columns, again.Result.Columns) {
		t.Fatalf("the cached plan answered otherwise:\n%v\n%v", first.Result, again.Result)
	}
	if !again.Result.Truncated || len(again.Result.Rows) != 50 {
		t.Fatalf("a page of 50 of 120 rows: %d rows, truncated %v", len(again.Result.Rows), again.Result.Truncated)
	}
	all := st.ok(q) // default limit: all 120, the same plan
	if len(all) != 120 || !reflect.DeepEqual(all[:50], again.Result.Rows) || hits() != 2 {
		t.Fatalf("the whole answer: %d rows, %v hits", len(all), hits())
	}

	const hostile = "SELECT * FROM read_csv('/etc/passwd')"
	for i := range 2 {
		if a := st.post(hostile, 0); a.Status != http.StatusForbidden {
			t.Fatalf("run %d of a forbidden statement: status %d; %s", i+1, a.Status, a.Body)
		}
	}
	if hits() != 2 {
		t.Fatalf("a refused statement counted as a cache hit: %v", hits())
	}

	st.land(pinsOf(t, 22, "2026-11-21", 30), "20261122T080000Z", 1000)
	if rows := st.ok(q); len(rows) != 150 || hits() != 2 {
		t.Fatalf("after a new day: %d rows, want 150; %v hits, want 2 (a new generation starts empty)", len(rows), hits())
	}
	if rows := st.ok(q); len(rows) != 150 || hits() != 3 {
		t.Fatalf("again after a new day: %d rows, %v hits, want 3", len(rows), hits())
	}
}
