package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"pinpipe/lake/layout"
)

// dashboardQueries are the dashboard's example queries (web/static/sql.js),
// with Spark SQL's spelling where it differs from DuckDB's.
var dashboardQueries = []struct{ name, sql, spark string }{
	{"Pins per category", "SELECT category, count(*) AS pins FROM pins GROUP BY category ORDER BY pins DESC", ""},
	{"Top posters", "SELECT poster_name, max(follower_count) AS followers, count(*) AS pins FROM pins WHERE poster_name IS NOT NULL GROUP BY poster_name ORDER BY followers DESC NULLS LAST LIMIT 20", ""},
	{"Pins per day", "SELECT dt, count(*) AS pins FROM pins GROUP BY dt ORDER BY dt", ""},
	{"Raw vs curated", "SELECT 'raw' AS zone, count(*) AS records FROM pins_raw UNION ALL SELECT 'curated', count(*) FROM pins", ""},
	{"Top tags", "SELECT tag, count(*) AS pins FROM (SELECT unnest(tags) AS tag FROM pins) GROUP BY tag ORDER BY pins DESC LIMIT 25",
		"SELECT tag, count(*) AS pins FROM (SELECT explode(tags) AS tag FROM pins) GROUP BY tag ORDER BY pins DESC LIMIT 25"},
	{"Media types", "SELECT is_image_or_video AS media, count(*) AS pins FROM pins GROUP BY media ORDER BY pins DESC", ""},
	{"Latest pins", "SELECT * FROM pins ORDER BY ingested_at DESC LIMIT 100", ""},
}

// benchQuery runs the dashboard's example queries over the lake the batch
// part left in the benchmark bucket: through pinpipe's POST /query, through
// DuckDB straight over a local copy of the same Parquet, and through Spark
// SQL over that copy.
func benchQuery(ctx context.Context, e *env, res *results) error {
	store, err := e.lake(ctx)
	if err != nil {
		return err
	}
	lakeDir := filepath.Join(e.work, "lake")
	for _, z := range []layout.Zone{layout.Raw, layout.Curated} {
		dir := filepath.Join(lakeDir, string(z), "dt="+e.date)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		if err := download(ctx, store, z.DayPrefix(e.date), dir); err != nil {
			return err
		}
	}
	curated, _ := filepath.Glob(filepath.Join(lakeDir, "curated", "dt="+e.date, "*.parquet"))
	if len(curated) == 0 {
		return fmt.Errorf("the bucket %s holds no curated day %s: run the batch part first (-parts batch,query)", benchBucket, e.date)
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	pp, err := start(e, "query-pinpipe", e.repo, pinpipeEnv(
		fmt.Sprintf("PINPIPE_ADDR=127.0.0.1:%d", port),
		"PINPIPE_DATA_DIR="+filepath.Join(e.work, "query-data"),
		"PINPIPE_S3_ENDPOINT="+e.stack.s3Endpoint, "PINPIPE_S3_BUCKET="+benchBucket,
		"AWS_ACCESS_KEY_ID="+e.stack.accessKey, "AWS_SECRET_ACCESS_KEY="+e.stack.secretKey, "AWS_REGION="+e.stack.region,
		"PINPIPE_ROLES=query", "PINPIPE_LOG_LEVEL=warn"),
		e.pinpipe, "serve")
	if err != nil {
		return err
	}
	defer pp.stop()
	if err := waitHTTP(ctx, pp, base+"/healthz", time.Minute); err != nil {
		return err
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	for _, v := range []string{
		fmt.Sprintf(`CREATE VIEW pins AS SELECT * FROM read_parquet('%s/curated/*/*.parquet', hive_partitioning = true)`, lakeDir),
		fmt.Sprintf(`CREATE VIEW pins_raw AS SELECT * FROM read_parquet('%s/raw/*/*.parquet', hive_partitioning = true)`, lakeDir),
	} {
		if _, err := db.ExecContext(ctx, v); err != nil {
			return fmt.Errorf("duckdb: %w", err)
		}
	}
	var want int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pins").Scan(&want); err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	// pinpipe mirrors the bucket before it answers over it.
	if err := waitQueryCount(ctx, base, want, 5*time.Minute); err != nil {
		return err
	}

	type timings map[string][]time.Duration
	ppT, duckT := timings{}, timings{}
	// Both sides take turns, run by run, so a change in the machine's load
	// falls on both alike; they take three times Spark's runs, as a
	// millisecond query's p50 over ten runs moved by a third between runs.
	runs := 3 * e.runs
	log.Printf("query: pinpipe /query and DuckDB, %d runs each, taking turns", runs)
	for _, q := range dashboardQueries {
		for i := range runs + 1 {
			t := time.Now()
			if err := postQuery(base, q.sql); err != nil {
				return fmt.Errorf("pinpipe /query %q: %w", q.name, err)
			}
			pp := time.Since(t)
			t = time.Now()
			if err := drain(ctx, db, q.sql); err != nil {
				return fmt.Errorf("duckdb %q: %w", q.name, err)
			}
			if i > 0 {
				ppT[q.name] = append(ppT[q.name], pp)
				duckT[q.name] = append(duckT[q.name], time.Since(t))
			}
		}
	}

	log.Printf("query: Spark SQL, %d runs each", e.runs)
	var list [][2]string
	for _, q := range dashboardQueries {
		s := q.spark
		if s == "" {
			s = q.sql
		}
		list = append(list, [2]string{q.name, s})
	}
	qfile := filepath.Join(e.work, "queries.json")
	b, _ := json.Marshal(list)
	if err := os.WriteFile(qfile, b, 0o644); err != nil {
		return err
	}
	spark, err := e.sparkJob(ctx, "query-spark", "spark_query.py", lakeDir, qfile, fmt.Sprint(e.runs))
	if err != nil {
		return err
	}

	for _, q := range dashboardQueries {
		var st []time.Duration
		for _, s := range spark.Queries[q.name] {
			st = append(st, time.Duration(s*float64(time.Second)))
		}
		p50, p95 := pcts(ppT[q.name])
		d50, d95 := pcts(duckT[q.name])
		s50, s95 := pcts(st)
		res.record("query", "all three", q.name, "p50/p95 ms: pinpipe /query %.1f/%.1f, DuckDB %.1f/%.1f, Spark SQL %.1f/%.1f",
			ms(p50), ms(p95), ms(d50), ms(d95), ms(s50), ms(s95))
		res.compare("query", q.name+": p50", "Spark SQL", "ms", ms(p50), ms(s50), true)
		res.compare("query", q.name+": p50", "DuckDB (raw)", "ms", ms(p50), ms(d50), true)
	}
	res.note("query: %d curated rows; Spark's JVM start (%.1f s) is excluded; pinpipe is timed at the client (HTTP and JSON included), DuckDB and Spark in-process", want, spark.JVMStart)
	return nil
}

// pcts returns the p50 and p95 of ds.
func pcts(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Sorted(slices.Values(ds))
	return quantile(s, 0.50), quantile(s, 0.95)
}

// postQuery runs sql through POST /query and reads the whole answer.
func postQuery(base, sql string) error {
	body, _ := json.Marshal(map[string]any{"sql": sql, "limit": 1000})
	return post(http.DefaultClient, base+"/query", "application/json", body)
}

// waitQueryCount polls pinpipe's /query until the pins view holds want rows.
func waitQueryCount(ctx context.Context, base string, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		body, _ := json.Marshal(map[string]any{"sql": "SELECT count(*) FROM pins"})
		resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
		if err == nil {
			var r struct {
				Rows [][]json.Number `json:"rows"`
			}
			dec := json.NewDecoder(resp.Body)
			dec.UseNumber()
			_ = dec.Decode(&r)
			resp.Body.Close()
			if len(r.Rows) == 1 && len(r.Rows[0]) == 1 && r.Rows[0][0].String() == fmt.Sprint(want) {
				return nil
			}
			last = fmt.Sprint(r.Rows)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("pinpipe's pins view did not reach %d rows within %s (last: %s)", want, timeout, strings.TrimSpace(last))
}

// drain runs sql on db and reads every row.
func drain(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
	}
	return rows.Err()
}
