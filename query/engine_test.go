package query_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/query"
)

func TestCountsByCategoryAreThoseThePinsImply(t *testing.T) {
	st := newStack(t, nil)
	d1, d2 := pinsOf(t, 10, "2026-11-20", 700), pinsOf(t, 11, "2026-11-21", 450)
	st.land(d1, "20261121T080000Z", 300) // three curated objects
	st.land(d2, "20261122T080000Z", 1000)

	want := categories(append(append([]pin.Cleaned{}, d1.cleaned...), d2.cleaned...))
	got := st.counts("SELECT category, count(*) FROM pins GROUP BY 1")
	if !equalCounts(got, want) {
		t.Fatalf("counts by category\n got %v\nwant %v", got, want)
	}
	perDay := st.counts("SELECT dt, count(*) FROM pins GROUP BY dt")
	if !equalCounts(perDay, map[string]int64{"2026-11-20": 700, "2026-11-21": 450}) {
		t.Fatalf("pins per day: %v", perDay)
	}
}

func TestRawViewAgreesWithWhatWasPosted(t *testing.T) {
	st := newStack(t, nil)
	d := pinsOf(t, 12, "2026-11-20", 90)
	st.land(d, "20261121T080000Z", 1000)

	rows := st.ok("SELECT topic, \"partition\", \"offset\", \"timestamp\", value, dt FROM pins_raw ORDER BY \"timestamp\"")
	if len(rows) != len(d.raw) {
		t.Fatalf("pins_raw has %d rows, %d were posted", len(rows), len(d.raw))
	}
	for i, r := range d.raw {
		want := []any{r.Topic, json.Number(fmt.Sprint(r.Partition)), json.Number(fmt.Sprint(r.Offset)),
			r.Timestamp.Format("2006-01-02T15:04:05Z07:00"), r.Value, d.dt}
		if !reflect.DeepEqual(rows[i], want) {
			t.Fatalf("pins_raw row %d\n got %#v\nwant %#v", i, rows[i], want)
		}
	}
	// The raw zone keeps the message as sent: the same categories come out of its JSON.
	raw := st.counts("SELECT value->>'category', count(*) FROM pins_raw GROUP BY 1")
	if !equalCounts(raw, categories(d.cleaned)) {
		t.Fatalf("categories in pins_raw %v, want %v", raw, categories(d.cleaned))
	}
}

func TestHalfReplacedDayIsReadAsTheNewestRunOnly(t *testing.T) {
	st := newStack(t, nil)
	old, fresh := pinsOf(t, 20, "2026-11-20", 500), pinsOf(t, 21, "2026-11-20", 120)
	st.land(old, "20261121T080000Z", 200) // three objects
	if got := st.counts("SELECT dt, count(*) FROM pins GROUP BY 1"); got["2026-11-20"] != 500 {
		t.Fatalf("before the re-run: %v", got)
	}
	// The re-run has written its objects; the old ones are not deleted yet.
	for n := 0; n*100 < len(fresh.cleaned); n++ {
		st.putCurated(fresh.dt, "20261122T080000Z", n, fresh.cleaned[n*100:min((n+1)*100, len(fresh.cleaned))])
	}
	got := st.counts("SELECT category, count(*) FROM pins GROUP BY 1")
	if !equalCounts(got, categories(fresh.cleaned)) {
		t.Fatalf("a half-replaced day reads as\n %v\nwant the newest run's\n %v", got, categories(fresh.cleaned))
	}
	// The old objects go; nothing changes for readers.
	objs, err := st.lake.List(t.Context(), "curated/dt=2026-11-20/part-20261121T080000Z-")
	testenv.Must(t, err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	testenv.Must(t, st.lake.Delete(t.Context(), keys...))
	if got := st.counts("SELECT category, count(*) FROM pins GROUP BY 1"); !equalCounts(got, categories(fresh.cleaned)) {
		t.Fatalf("after the old run's objects went: %v", got)
	}
}

func TestEmptyZonesAreTypedViewsWithNoRows(t *testing.T) {
	st := newStack(t, nil)
	describe := func(view string) [][]any {
		var out [][]any
		for _, r := range st.ok("SELECT column_name, column_type FROM (DESCRIBE " + view + ")") {
			out = append(out, r)
		}
		return out
	}
	emptyPins, emptyRaw := describe("pins"), describe("pins_raw")
	if rows := st.ok("SELECT (SELECT count(*) FROM pins), (SELECT count(*) FROM pins_raw)"); fmt.Sprint(rows[0]) != "[0 0]" {
		t.Fatalf("empty zones count %v", rows[0])
	}
	st.land(pinsOf(t, 30, "2026-11-20", 10), "20261121T080000Z", 100)
	if got := describe("pins"); !reflect.DeepEqual(got, emptyPins) {
		t.Errorf("pins over no files has columns\n %v\nover the batch's files\n %v", emptyPins, got)
	}
	if got := describe("pins_raw"); !reflect.DeepEqual(got, emptyRaw) {
		t.Errorf("pins_raw over no files has columns\n %v\nover the landing's files\n %v", emptyRaw, got)
	}
}

func TestCSVAnswerHasAHeaderAndTheRows(t *testing.T) {
	st := newStack(t, nil)
	d := pinsOf(t, 40, "2026-11-20", 60)
	st.land(d, "20261121T080000Z", 100)

	resp, body := st.get("SELECT category, count(*) AS pins, min(dt) AS first_day FROM pins GROUP BY 1 ORDER BY 1", "text/csv")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	testenv.Must(t, err)
	want := [][]string{{"category", "pins", "first_day"}}
	cats := categories(d.cleaned)
	var names []string
	for c := range cats {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		want = append(want, []string{c, fmt.Sprint(cats[c]), "2026-11-20"})
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("CSV\n got %q\nwant %q", recs, want)
	}
	if resp.Trailer.Get("X-Pinpipe-Row-Count") != fmt.Sprint(len(names)) || resp.Trailer.Get("X-Pinpipe-Truncated") != "false" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

func TestRowCapTruncatesAndKeepsTheOrder(t *testing.T) {
	st := newStack(t, nil)
	a := st.post("SELECT range AS n FROM range(100000) ORDER BY n DESC", 3)
	if a.Status != http.StatusOK || a.Result.RowCount != 3 || !a.Result.Truncated || fmt.Sprint(a.Result.Rows) != "[[99999] [99998] [99997]]" {
		t.Fatalf("limit 3: %d %s", a.Status, a.Body)
	}
	if a.Result.Columns[0].Name != "n" || a.Result.Columns[0].Type != "BIGINT" {
		t.Fatalf("columns %v", a.Result.Columns)
	}
	a = st.post("SELECT range AS n FROM range(3)", 3)
	if a.Result.RowCount != 3 || a.Result.Truncated {
		t.Fatalf("exactly the limit: %s", a.Body)
	}
	a = st.post("SELECT 1 AS a, 2 AS a", 0) // duplicate names: run as written
	if a.Status != http.StatusOK || fmt.Sprint(a.Result.Columns) != "[{a INTEGER} {a INTEGER}]" {
		t.Fatalf("duplicate names: %s", a.Body)
	}
	if a := st.post("SELECT 1", query.MaxLimit+1); a.Status != http.StatusBadRequest {
		t.Fatalf("limit above the maximum: %d", a.Status)
	}
}

func TestValuesAreJSONFriendly(t *testing.T) {
	st := newStack(t, nil)
	a := st.post(`SELECT DATE '2026-11-20' AS d, TIMESTAMP '2026-11-20 08:01:02.5' AS ts,
		TIMESTAMPTZ '2026-11-20 08:01:02+00' AS tstz, TIME '08:01:02' AS t, [1, 2] AS list, ['a', NULL] AS texts,
		{'k': 1} AS obj, 170141183460469231731687303715884105727::HUGEINT AS huge, 9007199254740993::BIGINT AS big,
		1.50::DECIMAL(10, 2) AS dec, '\xAA'::BLOB AS blob, 'ab'::BLOB AS text_blob, 'nan'::DOUBLE AS nan,
		INTERVAL 1 DAY + INTERVAL 90 MINUTE AS iv, '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS id, NULL AS nothing`, 0)
	if a.Status != http.StatusOK {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	want := `[["2026-11-20","2026-11-20T08:01:02.5Z","2026-11-20T08:01:02Z","08:01:02",[1,2],["a",null],{"k":1},` +
		`170141183460469231731687303715884105727,9007199254740993,1.5,"\\xAA","ab","NaN","1 day 01:30:00",` +
		`"6ba7b810-9dad-11d1-80b4-00c04fd430c8",null]]`
	if !strings.Contains(a.Body, `"rows":[`+want[1:len(want)-1]+"\n]") {
		t.Fatalf("rows\n got %s\nwant %s", a.Body, want)
	}
}

func TestErrorsAndAnswersDoNotShowServerPaths(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 50, "2026-11-20", 5), "20261121T080000Z", 100)
	a := st.post("SELECT * FROM pins WHERE category = 1 + 'x'", 0)
	if a.Status != http.StatusBadRequest {
		t.Fatalf("%d %s", a.Status, a.Body)
	}
	st.noPaths(a.Body)
	for _, sql := range []string{
		"SELECT sql FROM duckdb_views() WHERE view_name = 'pins'",
		"SELECT * FROM read_parquet('" + st.mirror.Dir() + "/curated/dt=2026-11-20/missing.parquet')",
		"SELECT * FROM '" + st.mirror.Dir() + "/curated/dt=2026-11-20/missing.parquet'",
	} {
		a = st.post(sql, 0)
		if a.Status != http.StatusForbidden {
			t.Fatalf("%s: %d %s", sql, a.Status, a.Body)
		}
		st.noPaths(a.Body)
	}
}
