package query_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/internal/testenv"
	"pinpipe/query"
	"pinpipe/server"
)

// export asks GET /query/export for sql in format and returns the answer.
func (st *stack) export(sql, format string) (*http.Response, []byte) {
	st.t.Helper()
	resp, err := http.Get(st.srv.URL + "/query/export?format=" + format + "&sql=" + url.QueryEscape(sql))
	testenv.Must(st.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testenv.Must(st.t, err)
	return resp, b
}

// readParquet reads a Parquet file with a DuckDB of its own (not the
// sandboxed engine) and returns its column names and types and its rows as
// text.
func readParquet(t *testing.T, file []byte, order string) (names, types []string, rows [][]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.parquet")
	testenv.Must(t, os.WriteFile(path, file, 0o600))
	db, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	defer db.Close()
	r, err := db.Query("DESCRIBE SELECT * FROM read_parquet('" + path + "')")
	testenv.Must(t, err)
	for r.Next() {
		var n, typ string
		var a, b, c, d sql.NullString
		testenv.Must(t, r.Scan(&n, &typ, &a, &b, &c, &d))
		names, types = append(names, n), append(types, typ)
	}
	r.Close()
	cast := make([]string, len(names))
	for i, n := range names {
		cast[i] = fmt.Sprintf(`coalesce(CAST("%s" AS VARCHAR), '<null>')`, n)
	}
	r, err = db.Query("SELECT " + strings.Join(cast, ", ") + " FROM read_parquet('" + path + "') ORDER BY " + order)
	testenv.Must(t, err)
	defer r.Close()
	for r.Next() {
		row := make([]string, len(names))
		ptrs := make([]any, len(names))
		for i := range row {
			ptrs[i] = &row[i]
		}
		testenv.Must(t, r.Scan(ptrs...))
		rows = append(rows, row)
	}
	testenv.Must(t, r.Err())
	return names, types, rows
}

func TestExportsHoldTheWholeAnswerInEachFormat(t *testing.T) {
	st := newStack(t, nil)
	d := pinsOf(t, 7, "2026-11-20", 40)
	st.land(d, "20261121T080000Z", 1000)
	const n = 50000 // fifty times the table view's first page
	bulk := fmt.Sprintf("SELECT range AS n, 'row ' || range AS label FROM range(%d)", n)

	t.Run("csv", func(t *testing.T) {
		resp, body := st.export(bulk, "csv")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, `.csv"`) {
			t.Fatalf("Content-Disposition %q", cd)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Fatalf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
		}
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		testenv.Must(t, err)
		if len(recs) != n+1 || !reflect.DeepEqual(recs[0], []string{"n", "label"}) {
			t.Fatalf("%d lines, header %v; want %d rows under [n label]", len(recs), recs[0], n)
		}
		if !reflect.DeepEqual(recs[n], []string{strconv.Itoa(n - 1), fmt.Sprintf("row %d", n-1)}) {
			t.Fatalf("last row %v", recs[n])
		}
		if got := resp.Header.Get("X-Pinpipe-Row-Count"); got != strconv.Itoa(n) {
			t.Fatalf("X-Pinpipe-Row-Count %q", got)
		}
	})
	t.Run("jsonl", func(t *testing.T) {
		resp, body := st.export(bulk, "jsonl")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("status %d, type %q: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		lines := 0
		for sc.Scan() {
			var row struct {
				N     int64  `json:"n"`
				Label string `json:"label"`
			}
			testenv.Must(t, json.Unmarshal(sc.Bytes(), &row))
			if row.Label != fmt.Sprintf("row %d", row.N) {
				t.Fatalf("line %d: %s", lines+1, sc.Bytes())
			}
			lines++
		}
		if lines != n {
			t.Fatalf("%d lines, want %d", lines, n)
		}
	})
	t.Run("parquet", func(t *testing.T) {
		resp, body := st.export(bulk, "parquet")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %.300s", resp.StatusCode, body)
		}
		names, types, rows := readParquet(t, body, "n")
		if !reflect.DeepEqual(names, []string{"n", "label"}) || !reflect.DeepEqual(types, []string{"BIGINT", "VARCHAR"}) {
			t.Fatalf("columns %v %v", names, types)
		}
		if len(rows) != n || !reflect.DeepEqual(rows[n-1], []string{strconv.Itoa(n - 1), fmt.Sprintf("row %d", n-1)}) {
			t.Fatalf("%d rows, last %v", len(rows), rows[len(rows)-1])
		}
	})
	t.Run("parquet keeps the pins' types and values", func(t *testing.T) {
		const q = "SELECT id_index, unique_id, category, follower_count, tags, ingested_at, dt, downloaded FROM pins"
		resp, body := st.export(q, "parquet")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %.300s", resp.StatusCode, body)
		}
		names, types, rows := readParquet(t, body, "unique_id")
		if want := []string{"id_index", "unique_id", "category", "follower_count", "tags", "ingested_at", "dt", "downloaded"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("columns %v, want %v", names, want)
		}
		if types[4] != "VARCHAR[]" || types[6] != "DATE" || !strings.HasPrefix(types[5], "TIMESTAMP") {
			t.Fatalf("types %v", types)
		}
		// The same query answered by /query, as text, is the same table.
		a := st.post(q+" ORDER BY unique_id", query.MaxLimit)
		if len(a.Result.Rows) != len(d.cleaned) || len(rows) != len(d.cleaned) {
			t.Fatalf("%d rows exported, %d answered, %d landed", len(rows), len(a.Result.Rows), len(d.cleaned))
		}
		for i, r := range a.Result.Rows {
			if rows[i][1] != r[1] || rows[i][2] != r[2] || rows[i][6] != r[6] {
				t.Fatalf("row %d: exported %v, answered %v", i, rows[i], r)
			}
			if r[3] != nil && rows[i][3] != fmt.Sprint(r[3]) {
				t.Fatalf("row %d follower_count: exported %s, answered %v", i, rows[i][3], r[3])
			}
		}
	})
}

func TestExportsPastTheirLimitsAreRefusedBeforeAnyByte(t *testing.T) {
	st := newStack(t, func(o *query.Options) { o.ExportMaxRows = 1000 })
	resp, body := st.export("SELECT range FROM range(1001)", "csv")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "PINPIPE_EXPORT_MAX_ROWS") {
		t.Fatalf("1001 rows over a 1000-row limit: status %d: %s", resp.StatusCode, body)
	}
	if resp, body := st.export("SELECT range FROM range(1000)", "jsonl"); resp.StatusCode != 200 || bytes.Count(body, []byte("\n")) != 1000 {
		t.Fatalf("1000 rows: status %d, %d lines", resp.StatusCode, bytes.Count(body, []byte("\n")))
	}

	// The file's own limit: the server's, over the bytes of the file.
	small := httptestServer(t, st, 64<<10)
	resp2, err := http.Get(small + "/query/export?format=csv&sql=" + url.QueryEscape("SELECT 'a long enough line of text ' || range FROM range(900)"))
	testenv.Must(t, err)
	b2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 200 || bytes.Count(b2, []byte("\n")) != 901 {
		t.Fatalf("a 27 KB file under a 64 KiB limit: status %d, %d lines: %.300s", resp2.StatusCode, bytes.Count(b2, []byte("\n")), b2)
	}
	resp3, err := http.Get(small + "/query/export?format=csv&sql=" + url.QueryEscape("SELECT 'a line long enough that a thousand of them pass sixty-four KiB ' || range FROM range(1000)"))
	testenv.Must(t, err)
	b3, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b3), "PINPIPE_EXPORT_MAX_BYTES") ||
		resp3.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a 75 KB file over a 64 KiB limit: status %d: %.300s", resp3.StatusCode, b3)
	}
}

// httptestServer starts another HTTP layer over st's engine, with
// exports of at most maxBytes, and returns its URL.
// The export directory is left empty, whatever the outcome.
func httptestServer(t *testing.T, st *stack, maxBytes int64) string {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewServer(server.New(server.Options{Log: testenv.Log(t), Query: st.engine, MaxBodyBytes: 1 << 20,
		Registry: prometheus.NewRegistry(), ExportMaxBytes: maxBytes, ExportDir: dir}))
	t.Cleanup(func() {
		srv.Close()
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("exports left %d files behind in %s", len(left), dir)
		}
	})
	return srv.URL
}

func TestPagesOfAnAnswerFollowEachOther(t *testing.T) {
	st := newStack(t, nil)
	var seen []string
	for offset := 0; ; offset += 400 {
		body := fmt.Sprintf(`{"sql": "SELECT range AS n FROM range(1000) ORDER BY n", "limit": 400, "offset": %d}`, offset)
		resp, err := http.Post(st.srv.URL+"/query", "application/json", strings.NewReader(body))
		testenv.Must(t, err)
		a := st.read(resp)
		if a.Status != 200 || a.Result.Offset != offset {
			t.Fatalf("offset %d: status %d, offset %d: %s", offset, a.Status, a.Result.Offset, a.Body)
		}
		for _, r := range a.Result.Rows {
			seen = append(seen, fmt.Sprint(r[0]))
		}
		if want := offset+400 < 1000; a.Result.Truncated != want {
			t.Fatalf("offset %d: truncated %v, want %v", offset, a.Result.Truncated, want)
		}
		if !a.Result.Truncated {
			break
		}
	}
	if len(seen) != 1000 || seen[0] != "0" || seen[999] != "999" || seen[400] != "400" {
		t.Fatalf("%d rows over the pages, %v … %v", len(seen), seen[:3], seen[len(seen)-3:])
	}
	resp, err := http.Post(st.srv.URL+"/query", "application/json", strings.NewReader(`{"sql": "SELECT 1", "offset": -1}`))
	testenv.Must(t, err)
	if a := st.read(resp); a.Status != 400 || !strings.Contains(a.Problem.Detail, "offset") {
		t.Fatalf("offset -1: status %d: %s", a.Status, a.Body)
	}
}

func TestExportsRunOnlyWhatTheSandboxAllows(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 3, "2026-11-20", 10), "20261121T080000Z", 100)
	outside := filepath.Join(st.dataDir, "written.parquet")
	for _, q := range []string{
		"COPY (SELECT * FROM pins) TO '" + outside + "' (FORMAT parquet)",
		"SELECT * FROM read_parquet('" + filepath.Join(st.mirror.Dir(), "**", "*.parquet") + "')",
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT 1; COPY (SELECT 1) TO '" + outside + "'",
		"ATTACH '" + filepath.Join(st.dataDir, "x.duckdb") + "' AS x",
		"SET enable_external_access = true",
	} {
		for _, f := range []string{"csv", "parquet"} {
			resp, body := st.export(q, f)
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s as %s: status %d: %.300s", q, f, resp.StatusCode, body)
			}
			st.noPaths(string(body))
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Fatalf("an export wrote %s (%v)", outside, err)
	}
	for _, bad := range []string{"format=xlsx&sql=SELECT+1", "format=csv", "format=csv&sql=SELECT+1&limit=0"} {
		resp, err := http.Get(st.srv.URL + "/query/export?" + bad)
		testenv.Must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("%s: status %d: %s", bad, resp.StatusCode, b)
		}
	}
}

func TestSchemaListsTheViewsWithTheirColumns(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 4, "2026-11-20", 10), "20261121T080000Z", 100)
	resp, err := http.Get(st.srv.URL + "/query/schema")
	testenv.Must(t, err)
	defer resp.Body.Close()
	var got struct {
		Views []server.SchemaView `json:"views"`
	}
	testenv.Must(t, json.NewDecoder(resp.Body).Decode(&got))
	if resp.StatusCode != 200 || len(got.Views) != 3 {
		t.Fatalf("status %d, %d views", resp.StatusCode, len(got.Views))
	}
	types := map[string]string{}
	for _, v := range got.Views {
		for _, c := range v.Columns {
			types[v.Name+"."+c.Name] = c.Type
		}
	}
	for col, want := range map[string]string{
		"pins.id_index": "BIGINT", "pins.tags": "VARCHAR[]", "pins.dt": "DATE",
		"pins_live.unique_id": "VARCHAR", "pins_raw.offset": "BIGINT", "pins_raw.value": "VARCHAR",
	} {
		if types[col] != want {
			t.Errorf("%s is %q, want %q (all: %v)", col, types[col], want, types)
		}
	}
}
