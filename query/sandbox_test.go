package query_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/query"
)

func TestQueryRefusesAnythingButOneReadOnlyStatementAndReadsNothing(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 1, "2026-11-20", 30), "20261121T080000Z", 100)
	st.ok("SELECT count(*) FROM pins") // the mirror now holds files a COPY could target

	out := filepath.Join(st.mirror.Dir(), "curated", "stolen.csv")
	outside := filepath.Join(st.dataDir, "outside.csv")
	cases := []struct {
		name, sql string
		status    int
		reason    string // in the problem's detail
	}{
		{"copy to a file", "COPY pins TO '" + outside + "'", 403, "COPY writes files"},
		{"copy into the mirror", "COPY (SELECT * FROM pins) TO '" + out + "' (FORMAT csv)", 403, "COPY writes files"},
		{"attach", "ATTACH '" + filepath.Join(st.dataDir, "x.duckdb") + "' AS x", 403, "ATTACH opens another database"},
		{"install", "INSTALL httpfs", 403, "INSTALL downloads extensions"},
		{"force install", "FORCE INSTALL httpfs", 403, "INSTALL downloads extensions"},
		{"load", "LOAD httpfs", 403, "LOAD loads extensions"},
		{"set", "SET threads = 1", 403, "SET changes engine settings"},
		{"set external access", "SET enable_external_access = true", 403, "SET changes engine settings"},
		{"reset", "RESET lock_configuration", 403, "RESET changes engine settings"},
		{"pragma", "PRAGMA database_list", 403, "PRAGMA"},
		{"pragma setting", "PRAGMA threads = 1", 403, "PRAGMA"},
		{"create", "CREATE TABLE t AS SELECT * FROM pins", 403, "CREATE changes the catalog"},
		{"create view", "CREATE OR REPLACE TEMP VIEW pins AS SELECT 1", 403, "CREATE changes the catalog"},
		{"insert", "INSERT INTO pins VALUES (1)", 403, "INSERT changes data"},
		{"cte insert", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", 400, ""},
		{"drop", "DROP VIEW pins", 403, "DROP changes the catalog"},
		{"export", "EXPORT DATABASE '" + st.dataDir + "'", 403, "EXPORT writes files"},
		{"call", "CALL pragma_version()", 403, "CALL runs procedures"},
		{"explain analyze copy", "EXPLAIN ANALYZE COPY pins TO '" + outside + "'", 403, "COPY writes files"},
		{"read_csv outside", "SELECT * FROM read_csv('/etc/passwd')", 403, "read_csv"},
		{"read_text environ", "SELECT * FROM read_text('/proc/self/environ')", 403, "read_text"},
		{"glob everything", "SELECT * FROM glob('/**')", 403, "glob"},
		{"escape the mirror", "SELECT * FROM read_text('" + st.mirror.Dir() + "/../../../../etc/passwd')", 403, "read_text"},
		{"url", "SELECT * FROM read_text('http://127.0.0.1:1/')", 403, "read_text"},
		{"two statements", "SELECT 1; SELECT 2", 403, "one statement"},
		{"statement hidden after a comment", "SELECT 1; -- fine\nCOPY pins TO '" + outside + "'", 403, "one statement"},
		{"empty", " ; ", 400, "empty"},
		{"syntax error", "SELEKT 1", 400, "not SELEKT"},
		{"bad column", "SELECT nope FROM pins", 400, "nope"},
		{"a parenthesis that would escape the row cap", "SELECT 1) AS t, (SELECT 2", 400, "syntax error"},
		{"pivot that creates a type", "PIVOT pins ON category USING count(*)", 400, "IN ("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := st.post(c.sql, 0)
			if a.Status != c.status || !strings.Contains(a.Problem.Detail, c.reason) {
				t.Fatalf("%s\ngot %d %q, want %d with %q", c.sql, a.Status, a.Problem.Detail, c.status, c.reason)
			}
			if strings.Contains(a.Body, "root:") || strings.Contains(a.Body, "PATH=") {
				t.Fatalf("the answer shows what a file holds: %s", a.Body)
			}
			st.noPaths(a.Body)
		})
	}
	for _, p := range []string{out, outside, filepath.Join(st.dataDir, "x.duckdb")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	// Nothing changed: the views, the settings and the attached databases are as they were.
	if rows := st.ok("SELECT count(*) FROM pins"); rows[0][0].(interface{ String() string }).String() != "30" {
		t.Errorf("pins has %v rows after the refused statements, want 30", rows[0][0])
	}
	if got := query.EngineState(t, st.engine); got != "threads=2 external=false databases=1 logging=0 profiling=\"\"" {
		t.Errorf("engine state changed: %s", got)
	}
}

func TestQueryAllowsEveryReadOnlyForm(t *testing.T) {
	st := newStack(t, nil)
	st.land(pinsOf(t, 2, "2026-11-20", 12), "20261121T080000Z", 100)
	st.mustAnswer(t,
		"SELECT count(*) FROM pins",
		"  -- a comment first\n/* and another */ SELECT 1;  ",
		"WITH c AS (SELECT category FROM pins) SELECT count(*) FROM c",
		"FROM pins SELECT category LIMIT 1",
		"FROM pins_raw",
		"TABLE pins",
		"VALUES (1, 'a'), (2, 'b')",
		"DESCRIBE pins",
		"SHOW TABLES",
		"SUMMARIZE pins_raw",
		"EXPLAIN SELECT count(*) FROM pins",
		"EXPLAIN ANALYZE SELECT count(*) FROM pins",
		"(SELECT 1) UNION ALL (SELECT 2)",
		"SELECT 'a;b' AS semicolon_in_text, \"category\" FROM pins LIMIT 1",
		"PIVOT (SELECT category, dt FROM pins) ON dt IN ('2026-11-20') USING count(*)",
	)
}

func TestQuerySandboxHoldsEvenForStatementsThatReachDuckDB(t *testing.T) {
	// The gate is one fence; DuckDB's own settings are the other: were a
	// file-reading function let through, DuckDB must refuse files outside
	// the mirror, and the settings by itself.
	st := newStack(t, nil)
	for _, sql := range []string{
		"SELECT * FROM read_parquet('/var/lib/*/*.parquet')",
		"SELECT * FROM read_json_auto('/etc/hostname')",
		"SELECT * FROM read_blob('/etc/passwd')",
		"SELECT * FROM parquet_metadata('/etc/passwd')",
		"SELECT * FROM sniff_csv('/etc/passwd')",
		"SELECT * FROM read_text('http://127.0.0.1:1/')",
	} {
		a := st.post(sql, 0)
		if a.Status != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", sql, a.Status, a.Problem.Detail)
		}
		st.noPaths(a.Body)
		if err := query.RunUnchecked(t, st.engine, sql); err == nil || !strings.Contains(err.Error(), "ermission") {
			t.Errorf("%s past the gate: %v, want DuckDB's permission error", sql, err)
		}
	}
	for _, sql := range []string{"SET enable_external_access = true", "SET allowed_directories = ['/']", "RESET lock_configuration"} {
		if err := query.RunUnchecked(t, st.engine, sql); err == nil {
			t.Errorf("%s past the gate was accepted", sql)
		}
	}
}

func TestQueryPastTheTimeLimitIsInterruptedAndTheServerStaysResponsive(t *testing.T) {
	st := newStack(t, func(o *query.Options) { o.Timeout = 500 * time.Millisecond })
	var wg sync.WaitGroup
	var long answer
	wg.Add(1)
	go func() {
		defer wg.Done()
		long = st.post("SELECT count(*) FROM range(1000000000) a, range(1000000000) b", 0)
	}()
	// While DuckDB grinds, the server still answers.
	if resp, _ := st.get("SELECT 42", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a small query during the long one answered %d", resp.StatusCode)
	}
	wg.Wait()
	if long.Status != http.StatusGatewayTimeout || !strings.Contains(long.Problem.Detail, "PINPIPE_QUERY_TIMEOUT") {
		t.Fatalf("the cross join answered %d %q, want 504", long.Status, long.Problem.Detail)
	}
	if rows := st.ok("SELECT 1 + 1 AS two"); len(rows) != 1 {
		t.Fatalf("the query after the timeout: %v", rows)
	}
}

func TestQueryBeyondTheConcurrencyLimitGets429(t *testing.T) {
	st := newStack(t, func(o *query.Options) { o.MaxConcurrent = 1; o.Timeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = st.engine.Query(ctx, "SELECT count(*) FROM range(1000000000) a, range(1000000000) b", 1, discard{})
	}()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		a := st.post("SELECT 1", 0)
		return a.Status == http.StatusTooManyRequests, a.Body
	})
	cancel() // the client of the long query leaves: DuckDB is interrupted
	<-done
	st.ok("SELECT 1")
}

type discard struct{}

func (discard) Columns(_, _ []string) error { return nil }
func (discard) Row([]any) error             { return nil }

// mustAnswer posts each query and fails the test for every one that does not
// answer 200, naming it and the problem's detail.
func (st *stack) mustAnswer(t *testing.T, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if a := st.post(sql, 0); a.Status != http.StatusOK {
			t.Errorf("%q: %d %s", sql, a.Status, a.Problem.Detail)
		}
	}
}
