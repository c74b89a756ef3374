package query_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"pinpipe/query"
)

// secretMarker is in a query another client runs first; no later answer
// may show it.
const secretMarker = "another_users_secret_7f3a"

// attack is a statement a hostile client sends, and how it must be refused.
type attack struct {
	name, sql string
	status    int
	reason    string // in the problem's detail
}

func TestQueryRefusesWhatChangesEngineStateOrReadsItsInternals(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 3, "2026-11-20", 30), "20261121T080000Z", 100)
	st.ok("SELECT '" + secretMarker + "' AS s, count(*) FROM pins")
	nowhere := filepath.Join(st.dataDir, "nonexistent-dir")
	inMirror := filepath.Join(st.mirror.Dir(), "curated")
	attacks := []attack{
		{"logging to a missing directory", "SELECT * FROM enable_logging(storage='file', storage_path='" + nowhere + "')", 403, "enable_logging"},
		{"logging in memory", "SELECT * FROM enable_logging(level='info')", 403, "enable_logging"},
		{"logging, lower case and spaced", "select * from  ENABLE_LOGGING ( level := 'info' )", 403, "enable_logging"},
		{"the log", "FROM duckdb_logs", 403, "duckdb_logs"},
		{"the log as a function", "SELECT * FROM duckdb_logs()", 403, "duckdb_logs"},
		{"the parsed log", "SELECT * FROM duckdb_logs_parsed('QueryLog')", 403, "duckdb_logs_parsed"},
		{"profiling into the mirror", "SELECT * FROM enable_profiling(save_location='" + inMirror + "/p.json')", 403, "enable_profiling"},
		{"peg parser", "SELECT * FROM enable_peg_parser()", 403, "enable_peg_parser"},
		{"checkpoint", "SELECT * FROM force_checkpoint()", 403, "force_checkpoint"},
		{"settings", "SELECT * FROM duckdb_settings()", 403, "duckdb_settings"},
		{"settings as a view", "SELECT name, value FROM duckdb_settings", 403, "duckdb_settings"},
		{"a setting", "SELECT current_setting('temp_directory')", 403, "current_setting"},
		{"a setting through replace", "SELECT replace(current_setting('temp_directory'), '/', '|')", 403, "current_setting"},
		{"a setting in a lambda", "SELECT list_transform([1], x -> current_setting('temp_directory'))", 403, "current_setting"},
		{"a setting in a subquery", "SELECT (SELECT value FROM duckdb_settings() WHERE name = 'temp_directory')", 403, "duckdb_settings"},
		{"a setting in a CTE", "WITH s AS (SELECT * FROM duckdb_settings()) SELECT * FROM s", 403, "duckdb_settings"},
		{"a lateral join", "SELECT * FROM pins, LATERAL (SELECT * FROM duckdb_temporary_files())", 403, "duckdb_temporary_files"},
		{"temporary files", "FROM duckdb_temporary_files()", 403, "duckdb_temporary_files"},
		{"databases", "SELECT path FROM duckdb_databases()", 403, "duckdb_databases"},
		{"extensions", "SELECT install_path FROM duckdb_extensions()", 403, "duckdb_extensions"},
		{"a CTE named like an internal view", "WITH duckdb_settings AS (SELECT * FROM duckdb_settings) SELECT * FROM duckdb_settings", 400, "Circular"},
		{"a CTE hiding an internal view for later", "WITH a AS (SELECT 1), b AS (SELECT * FROM duckdb_views) SELECT * FROM b", 403, "duckdb_views"},
		{"a forward CTE reference", "WITH a AS (SELECT * FROM duckdb_views), duckdb_views AS (SELECT 1) SELECT * FROM a", 403, "duckdb_views"},
		{"information_schema", "SELECT * FROM information_schema.tables", 403, "information_schema.tables"},
		{"pg_catalog", "SELECT * FROM pg_catalog.pg_settings", 403, "pg_catalog.pg_settings"},
		{"pg_settings unqualified", "SELECT * FROM pg_settings", 403, "pg_settings"},
		{"sqlite_master", "SELECT * FROM sqlite_master", 403, "sqlite_master"},
		{"a view definition", "SELECT pg_get_viewdef('pins')", 403, "pg_get_viewdef"},
		{"a view's SQL in the catalog", "SELECT sql FROM duckdb_views()", 403, "duckdb_views"},
		{"a file by name", "SELECT * FROM '" + inMirror + "/x.parquet'", 403, "a query reads the views"},
		{"a file by table function", "SELECT * FROM read_parquet('" + inMirror + "/*/*.parquet')", 403, "read_parquet"},
		{"SQL the gate never sees", "SELECT * FROM query('SELECT * FROM duckdb_settings()')", 403, "query"},
		{"a table by name", "SELECT * FROM query_table('duckdb_settings')", 403, "query_table"},
		{"a histogram of a table by name", "SELECT * FROM histogram('duckdb_settings', name)", 403, "histogram"},
		{"a serialized plan", "SELECT json_serialize_plan('SELECT * FROM duckdb_settings()')", 403, "json_serialize_plan"},
		{"the random seed of later requests", "SELECT setseed(0.5)", 403, "setseed"},
		{"a variable", "SELECT getvariable('x')", 403, "getvariable"},
		{"writing the log", "SELECT write_log('x')", 403, "write_log"},
		{"a qualified function", "SELECT main.current_setting('threads')", 403, "current_setting"},
		{"a builder past its guard", "SELECT main.repeat('x', 3)", 403, "call functions by their name alone"},
		{"a system function by its schema", "SELECT system.main.repeat('x', 3)", 403, "call functions by their name alone"},
		{"explained settings", "EXPLAIN SELECT * FROM duckdb_settings()", 403, "duckdb_settings"},
		{"explain analyze of logging", "EXPLAIN ANALYZE SELECT * FROM enable_logging(level='info')", 403, "enable_logging"},
		{"explain with a query in its options", "EXPLAIN ((SELECT 1)) SELECT 1", 403, "EXPLAIN's options"},
		{"describe of settings", "DESCRIBE SELECT current_setting('threads')", 403, "current_setting"},
		{"summarize of settings", "SUMMARIZE SELECT * FROM duckdb_settings()", 403, "duckdb_settings"},
		{"show databases", "SHOW databases", 403, "SHOW"},
		{"show a setting", "SHOW threads", 403, ""},
		{"a pivot of settings", "PIVOT (SELECT name, value FROM duckdb_settings()) ON name IN ('threads') USING first(value)", 403, "duckdb_settings"},
		{"a width that builds a huge value", "SELECT printf('%1000000000d', 1)", 403, "printf"},
		{"a width from an argument", "SELECT format('{:>{}}', 'x', 1000000000)", 403, "format"},
		{"a sleep", "SELECT sleep_ms(100000)", 403, "sleep_ms"},
		{"a NUL byte", "SELECT 1\x00; SELECT * FROM duckdb_settings()", 400, "NUL"},
		{"the file name of a lake object", "SELECT filename FROM pins", 400, "filename"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) { st.refused(a) })
	}
	st.unharmed(30)
	for _, p := range []string{nowhere, filepath.Join(inMirror, "p.json")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

func TestQueryAllowsTheFunctionsOfOrdinaryAnalysis(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 4, "2026-11-20", 40), "20261121T080000Z", 100)
	st.mustAnswer(t,
		"SELECT category, count(*), avg(follower_count), max(length(title)) FROM pins GROUP BY ALL ORDER BY 2 DESC",
		"SELECT date_trunc('hour', ingested_at) AS h, count(*) FROM pins GROUP BY h",
		"SELECT tag, count(*) FROM (SELECT unnest(tags) AS tag FROM pins) GROUP BY tag",
		"SELECT t.tag FROM pins, unnest(tags) AS t(tag) LIMIT 3",
		"SELECT row_number() OVER (PARTITION BY category ORDER BY follower_count DESC) AS r, title FROM pins QUALIFY r <= 2",
		"SELECT list_transform(tags, x -> upper(x)), regexp_replace(title, '[aeiou]', '', 'g') FROM pins",
		"SELECT value->>'category', json_extract_string(value, '$.title') FROM pins_raw",
		"SELECT * FROM range(3) r(i) JOIN generate_series(1, 3) g(j) ON i = j",
		"SELECT i FROM unnest([1, 2, 3]) AS u(i)",
		"WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5) SELECT sum(i) FROM r",
		"WITH a AS (SELECT category FROM pins), b AS (SELECT * FROM a) SELECT count(*) FROM b",
		"SELECT printf('%5d|%-8s', 42, 'x'), format('{:>10}', 'y')",
		"SELECT repeat('ab', 3), lpad('7', 3, '0'), rpad('7', 3, '0'), range(5), generate_series(1, 3), list_resize([1], 3, 0)",
		"SELECT {'a': 1, 'b': [1, 2]} AS s, MAP {'k': 1} AS m, [1, 2][1], 'abc'[1:2]",
		"SELECT CAST(follower_count AS VARCHAR) || ' followers', coalesce(description, ''), title ILIKE '%a%' FROM pins",
		"SELECT quantile_cont(follower_count, 0.9), approx_count_distinct(poster_name), string_agg(DISTINCT category, ',') FROM pins",
		"SELECT * FROM pins WHERE dt = DATE '2026-11-20' AND category IN (SELECT category FROM pins LIMIT 2)",
		"SELECT now() > ingested_at, extract(year FROM dt), strftime(dt, '%Y') FROM pins",
		"DESCRIBE SELECT category FROM pins",
		"SHOW ALL TABLES",
		"SHOW pins",
		"EXPLAIN (FORMAT json) SELECT count(*) FROM pins",
		"SELECT * FROM pins_raw, pins LIMIT 1",
		"SELECT COLUMNS('^c') FROM pins",
		"SELECT * EXCLUDE (tags) FROM pins",
		"SELECT $a1$a dollar-quoted string$a1$ AS s",
	)
}

func TestTheRowCapHoldsWhateverTheQuerySpells(t *testing.T) {
	// Each query fails once it reaches row 1,000,000: it answers only
	// when DuckDB stops at the cap rather than materialising the rest.
	st := newStack(t, nil)
	const boom = "CASE WHEN i = 1000000 THEN error('materialised past the cap') ELSE i END"
	for name, sql := range map[string]string{
		"plain":                          "SELECT " + boom + " AS i FROM range(2000000) t(i)",
		"a dollar tag with digits":       "SELECT $a1$)$a1$ AS s, " + boom + " AS i FROM range(2000000) t(i)",
		"a dollar tag with a paren":      "SELECT $q_2$ ( $q_2$ AS s, " + boom + " AS i FROM range(2000000) t(i)",
		"duplicate column names":         "SELECT " + boom + " AS i, i AS i, i AS i_1 FROM range(2000000) t(i)",
		"an identifier with a dollar":    "SELECT i AS a$b$, " + boom + " AS i FROM range(2000000) t(i)",
		"a trailing comment":             "SELECT " + boom + " AS i FROM range(2000000) t(i) -- )",
		"a values list":                  "SELECT " + boom + " AS i FROM range(2000000) t(i) UNION ALL VALUES (1)",
		"a block comment with a paren":   "SELECT " + boom + " /* ) */ AS i FROM range(2000000) t(i)",
		"a subquery with ORDER BY":       "FROM (SELECT " + boom + " AS i FROM range(2000000) t(i))",
		"a quoted identifier with paren": `SELECT ` + boom + ` AS ")" FROM range(2000000) t(i)`,
	} {
		t.Run(name, func(t *testing.T) {
			a := st.post(sql, 5)
			if a.Status != http.StatusOK || !a.Result.Truncated || len(a.Result.Rows) != 5 {
				t.Fatalf("%s\n%d truncated=%v rows=%d %s", sql, a.Status, a.Result.Truncated, len(a.Result.Rows), a.Problem.Detail)
			}
		})
	}
	a := st.post("SELECT 1 AS a, 2 AS a, 3 AS a_1", 0)
	var names []string
	for _, c := range a.Result.Columns {
		names = append(names, c.Name)
	}
	if a.Status != http.StatusOK || strings.Join(names, ",") != "a,a,a_1" {
		t.Fatalf("duplicate columns answer %d %v %s", a.Status, names, a.Problem.Detail)
	}
}

func TestAnswersAndValuesAreBounded(t *testing.T) {
	st := newStack(t, func(o *query.Options) { o.MaxResultBytes = 4 << 20; o.MaxValueBytes = 1 << 20 })
	st.land(pinsOf(t, 5, "2026-11-20", 20), "20261121T080000Z", 100)
	for _, a := range []attack{
		{"a gigabyte string", "SELECT repeat('x', 1000000000)", 413, "repeat"},
		{"a gigabyte string, then measured", "SELECT length(repeat('x', 1000000000))", 413, "repeat"},
		{"a padded string", "SELECT lpad('x', 1000000000, 'y')", 413, "lpad"},
		{"a long list", "SELECT range(20000000)", 413, "range"},
		{"a long list from two bounds", "SELECT generate_series(1, 20000000)", 413, "generate_series"},
		{"a resized list", "SELECT list_resize([1], 20000000)", 413, "list_resize"},
		{"a repeated list", "SELECT repeat([1, 2, 3], 10000000)", 413, "repeat"},
		{"a repeat just past its guard", "SELECT repeat('x', 65537)", 413, "the most one call of it may build"},
		{"a guard hidden in a column", "SELECT repeat('x', i) FROM range(65530, 65540) t(i)", 413, "repeat"},
		{"a value built by concatenation", "SELECT string_agg(repeat('x', 1000), '') FROM range(3000)", 413, "one value"},
		{"a list built by aggregation", "SELECT list(i) FROM range(1000000) t(i)", 413, "one value"},
		{"many rows of medium values", "SELECT repeat('x', 60000) FROM range(100000)", 413, "PINPIPE_QUERY_MAX_RESULT_BYTES"},
		{"many rows of small values", "SELECT i, 'abcdefghijklmnopqrstuvwxyz' || i FROM range(1000000) t(i)", 413, "PINPIPE_QUERY_MAX_RESULT_BYTES"},
	} {
		t.Run(a.name, func(t *testing.T) { st.refusedWithLimit(a, query.MaxLimit) })
	}
	// Just under the limits is fine.
	if rows := st.ok("SELECT string_agg('x', '') AS s FROM range(1000000 - 10)"); len(rows[0][0].(string)) != 1000000-10 {
		t.Fatalf("a value under the limit came back with %d bytes", len(rows[0][0].(string)))
	}
	st.unharmed(20)
}

func TestAttacksAtOnceLeaveTheEngineUsable(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 6, "2026-11-20", 10), "20261121T080000Z", 100)
	var wg sync.WaitGroup
	for _, sql := range []string{
		"SELECT repeat('x', 1000000000)",
		"SELECT range(20000000)",
		"SELECT * FROM enable_logging(level='info')",
		"SELECT current_setting('temp_directory')",
	} {
		wg.Go(func() {
			a := st.post(sql, 0)
			if a.Status == http.StatusOK {
				t.Errorf("%s answered 200", sql)
			}
			st.noPaths(a.Body)
		})
	}
	wg.Wait()
	st.unharmed(10)
}

// refused posts a and fails the test unless it is refused as a says,
// without a server path or another request's text in the answer.
func (st *stack) refused(a attack) { st.t.Helper(); st.refusedWithLimit(a, 0) }

func (st *stack) refusedWithLimit(a attack, limit int) {
	st.t.Helper()
	got := st.post(a.sql, limit)
	if got.Status != a.status || !strings.Contains(got.Problem.Detail, a.reason) {
		st.t.Fatalf("%q\ngot %d %q, want %d with %q", a.sql, got.Status, got.Problem.Detail, a.status, a.reason)
	}
	if strings.Contains(got.Body, secretMarker) {
		st.t.Fatalf("the answer shows another request's SQL: %s", got.Body)
	}
	st.noPaths(got.Body)
}

// unharmed fails the test unless the engine still answers as before: pins
// has rows rows, and a query after the attacks runs as usual.
func (st *stack) unharmed(rows int) {
	st.t.Helper()
	got := st.ok("SELECT count(*) AS n, max(length(title)) > 0 FROM pins")
	if n := got[0][0].(json.Number).String(); n != json.Number(itoa(rows)).String() {
		st.t.Fatalf("pins has %s rows after the attacks, want %d", n, rows)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
