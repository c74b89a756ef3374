// Command query measures ad-hoc SQL over the curated zone: it generates
// 10,000,000 curated pins as Parquet (with DuckDB itself), stores them in an
// in-process pinpipe's lake, then runs six typical analytics queries N
// times each through POST /query and, in the same run, directly in DuckDB
// over the same Parquet files (the floor), and prints p50/p95 side by side.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"pinpipe/config"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pipeline"
)

// queries are the six analytics queries: SQL over the view pins.
var queries = []struct{ name, sql string }{
	{"count by category", `SELECT category, count(*) AS pins FROM pins GROUP BY category ORDER BY pins DESC, category`},
	{"top posters by followers", `SELECT poster_name, max(follower_count) AS followers, count(*) AS pins FROM pins
		WHERE poster_name IS NOT NULL GROUP BY poster_name ORDER BY followers DESC NULLS LAST, poster_name LIMIT 20`},
	{"pins per day", `SELECT dt, count(*) AS pins FROM pins GROUP BY dt ORDER BY dt`},
	{"top-20 tags (unnest)", `SELECT tag, count(*) AS pins FROM (SELECT unnest(tags) AS tag FROM pins)
		GROUP BY tag ORDER BY pins DESC, tag LIMIT 20`},
	{"filtered p95 followers", `SELECT category, quantile_cont(follower_count, 0.95) AS p95_followers FROM pins
		WHERE dt >= DATE '2026-11-14' AND is_image_or_video = 'video' GROUP BY category ORDER BY category`},
	{"latest 100 pins", `SELECT * FROM pins ORDER BY ingested_at DESC LIMIT 100`},
}

func main() {
	rows := flag.Int("rows", 10_000_000, "curated pins to generate")
	days := flag.Int("days", 10, "days the pins spread over (2026-11-10 onwards)")
	runs := flag.Int("runs", 15, "timed runs of each query on each side")
	dir := flag.String("dir", "", "work directory; generated Parquet is reused from it when present (default: a temporary one, removed)")
	threads := flag.Int("threads", 2, "DuckDB threads, on both sides")
	memory := flag.String("memory", "2GB", "DuckDB memory limit, on both sides")
	staleness := flag.Duration("staleness", 2*time.Second, "pinpipe's PINPIPE_MIRROR_STALENESS: how often a query waits for a listing of the lake")
	flag.Parse()
	ctx := context.Background()

	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "pinpipe-bench-query-")
		check(err)
		defer os.RemoveAll(d)
		work = d
	}
	gen := filepath.Join(work, "parquet")
	files := generate(ctx, gen, *rows, *days)

	// pinpipe: the whole pipeline in this process, embedded defaults.
	data := filepath.Join(work, "pinpipe")
	check(os.RemoveAll(data))
	fs := flag.NewFlagSet("pinpipe", flag.ContinueOnError)
	cfg, _, err := config.Load(fs, []string{"--addr", "127.0.0.1:0", "--data-dir", data,
		"--query-threads", fmt.Sprint(*threads), "--query-memory-limit", *memory, "--query-timeout", "10m", "--mirror-staleness", staleness.String()}, os.Getenv)
	check(err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	storeInLake(ctx, filepath.Join(data, "s3"), cfg.S3Bucket, gen, files, log)
	p, err := pipeline.Start(ctx, cfg, log)
	check(err)
	defer p.Stop(context.Background())
	base := "http://" + p.Addr
	start := time.Now()
	fmt.Fprintf(os.Stderr, "pinpipe's mirror is copying the lake…")
	for count(base) != *rows { // the first listing may predate the last upload
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, " done in %s\n", time.Since(start).Round(time.Millisecond))

	// The floor: DuckDB over the same files, same settings, same view.
	floor, err := sql.Open("duckdb", "")
	check(err)
	defer floor.Close()
	floor.SetMaxOpenConns(1)
	for _, s := range []string{
		fmt.Sprintf("SET threads = %d", *threads), "SET memory_limit = '" + *memory + "'", "SET parquet_metadata_cache = true",
		"CREATE VIEW pins AS SELECT * FROM read_parquet(['" + strings.Join(files, "', '") + "'], hive_partitioning = true, hive_types = {'dt': DATE})",
	} {
		_, err := floor.ExecContext(ctx, s)
		check(err)
	}

	type sample struct{ pinpipe, floor []time.Duration }
	samples := make([]sample, len(queries))
	for i, q := range queries {
		// Warm both sides once and check they agree.
		_, pn := post(base, q.sql)
		_, fn := direct(ctx, floor, q.sql)
		if pn != fn {
			fail(fmt.Errorf("%s: pinpipe answered %d rows, DuckDB %d", q.name, pn, fn))
		}
		for r := range *runs {
			// Alternate which side goes first, so load on the machine falls on both.
			if r%2 == 0 {
				d, _ := post(base, q.sql)
				samples[i].pinpipe = append(samples[i].pinpipe, d)
			}
			d, _ := direct(ctx, floor, q.sql)
			samples[i].floor = append(samples[i].floor, d)
			if r%2 == 1 {
				d, _ := post(base, q.sql)
				samples[i].pinpipe = append(samples[i].pinpipe, d)
			}
		}
		fmt.Fprintf(os.Stderr, "measured %q\n", q.name)
	}

	// The fixed cost of a request: a query that reads nothing.
	var fixedP, fixedF []time.Duration
	for range 50 {
		d, _ := post(base, "SELECT 1")
		fixedP = append(fixedP, d)
		d, _ = direct(ctx, floor, "SELECT 1")
		fixedF = append(fixedF, d)
	}

	fmt.Printf("\n%d curated pins over %d days (%d Parquet files, %s), %d runs per query and side, DuckDB threads=%d memory_limit=%s\n",
		*rows, *days, len(files), size(files), *runs, *threads, *memory)
	fmt.Printf("pinpipe = POST /query on an in-process pinpipe (HTTP, JSON, sandbox, mirror snapshot); floor = DuckDB on the same files\n\n")
	fmt.Printf("| %-26s | %9s | %9s | %9s | %9s | %7s | %7s |\n", "query", "floor p50", "floor p95", "pinpipe p50", "pinpipe p95", "p50 ×", "p95 ×")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|\n", dash(28), dash(11), dash(11), dash(13), dash(13), dash(9), dash(9))
	for i, q := range queries {
		f50, f95 := pct(samples[i].floor, 50), pct(samples[i].floor, 95)
		p50, p95 := pct(samples[i].pinpipe, 50), pct(samples[i].pinpipe, 95)
		fmt.Printf("| %-26s | %6.1f ms | %6.1f ms | %8.1f ms | %8.1f ms | %6.2f× | %6.2f× |\n",
			q.name, ms(f50), ms(f95), ms(p50), ms(p95), float64(p50)/float64(f50), float64(p95)/float64(f95))
	}
	fmt.Printf("\nfixed cost of one request (SELECT 1, p50): pinpipe %.2f ms, DuckDB %.2f ms\n", ms(pct(fixedP, 50)), ms(pct(fixedF, 50)))
}

// generate writes rows curated pins over days as Parquet under dir, one
// object per day named as the batch job names them, and returns the files.
// A directory that already holds this generation is reused.
func generate(ctx context.Context, dir string, rows, days int) []string {
	var files []string
	perDay := rows / days
	for d := range days {
		dt := time.Date(2026, 11, 10+d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		files = append(files, filepath.Join(dir, filepath.FromSlash(layout.CuratedKey(dt, "20261201T080000Z", 0))))
	}
	marker := filepath.Join(dir, fmt.Sprintf("generated-%d-%d", rows, days))
	if _, err := os.Stat(marker); err == nil {
		fmt.Fprintf(os.Stderr, "reusing the %d pins generated in %s\n", rows, dir)
		return files
	}
	check(os.RemoveAll(dir))
	db, err := sql.Open("duckdb", "")
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	start := time.Now()
	for d, f := range files {
		check(os.MkdirAll(filepath.Dir(f), 0o755))
		first, last := d*perDay, (d+1)*perDay
		if d == days-1 {
			last = rows
		}
		_, err := db.ExecContext(ctx, fmt.Sprintf(pinsSQL, first, last, time.Date(2026, 11, 10+d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), last-first, f))
		check(err)
		progress("generating curated pins", last, rows, start)
	}
	check(os.WriteFile(marker, nil, 0o644))
	return files
}

// storeInLake puts the generated files into the embedded S3 server's
// directory that pinpipe then starts on, under the same keys.
func storeInLake(ctx context.Context, dir, bucket, gen string, files []string, log *slog.Logger) {
	e, err := lake.StartEmbedded(dir, "127.0.0.1:0", log)
	check(err)
	defer e.Close(context.Background())
	store, err := lake.Open(ctx, lake.Options{Endpoint: e.Endpoint, Bucket: bucket, Region: "us-east-1", AccessKey: lake.EmbeddedKey, SecretKey: lake.EmbeddedSecret})
	check(err)
	start := time.Now()
	for i, f := range files {
		rel, _ := filepath.Rel(gen, f)
		body, err := os.Open(f)
		check(err)
		check(store.Put(ctx, filepath.ToSlash(rel), body))
		body.Close()
		progress("storing the Parquet in pinpipe's lake", i+1, len(files), start)
	}
}

// pinsSQL makes pins %d to %d of day %s (%d pins a day) with the curated
// schema, shaped like the real ones: 13 categories, skewed follower counts,
// a few tags each from a vocabulary of 300, some NULLs.
const pinsSQL = `COPY (
  SELECT
    i AS id_index,
    CASE WHEN hash(i, 1) %% 20 = 0 THEN NULL ELSE 'Pin idea ' || (hash(i, 2) %% 50000) END AS title,
    ['art', 'beauty', 'christmas', 'diy-and-crafts', 'education', 'event-planning', 'finance', 'home-decor',
     'mens-fashion', 'quotes', 'tattoos', 'travel', 'vehicles'][1 + (hash(i, 3) %% 13)::INT] AS category,
    uuid()::VARCHAR AS unique_id,
    CASE WHEN hash(i, 4) %% 10 = 0 THEN NULL ELSE 'A description of idea ' || (hash(i, 5) %% 20000) END AS description,
    CASE WHEN hash(i, 6) %% 50 = 0 THEN NULL ELSE 'poster_' || (hash(i, 7) %% 50000) END AS poster_name,
    CASE WHEN hash(i, 8) %% 30 = 0 THEN NULL ELSE pow(10, (hash(i, 9) %% 7000) / 1000.0)::BIGINT END AS follower_count,
    array_to_string(t, ',') AS tag_list,
    t AS tags,
    CASE WHEN hash(i, 10) %% 10 < 8 THEN 'image' ELSE 'video' END AS is_image_or_video,
    'https://i.pinimg.com/originals/' || (hash(i, 11) %% 1000000) || '.jpg' AS image_src,
    (hash(i, 12) %% 2)::INTEGER AS downloaded,
    '/data/' || category AS save_location,
    TIMESTAMP '%[3]s' + to_microseconds(((i - %[1]d) * 86400000000 // %[4]d)::BIGINT) AS ingested_at,
    (i %% 3)::INTEGER AS kafka_partition,
    i // 3 AS kafka_offset
  FROM (SELECT i, ['tag' || (hash(i, k) %% 300) FOR k IN range(3 + (hash(i, 13) %% 4)::BIGINT)] AS t FROM range(%[1]d, %[2]d) r(i))
) TO '%[5]s' (FORMAT parquet, COMPRESSION snappy)`

// post runs sql through POST /query and returns its latency and row count.
func post(base, sql string) (time.Duration, int) {
	body, _ := json.Marshal(map[string]any{"sql": sql, "limit": 100000})
	start := time.Now()
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
	check(err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	check(err)
	var r struct {
		RowCount int `json:"row_count"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
		fail(fmt.Errorf("POST /query: %d %s", resp.StatusCode, b))
	}
	return took, r.RowCount
}

// count returns the rows of pins, as pinpipe sees them.
func count(base string) int {
	body, _ := json.Marshal(map[string]any{"sql": "SELECT count(*) FROM pins"})
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
	check(err)
	defer resp.Body.Close()
	var r struct{ Rows [][]int }
	check(json.NewDecoder(resp.Body).Decode(&r))
	return r.Rows[0][0]
}

// direct runs sql in the floor's DuckDB, reading every value, and returns
// its latency and row count.
func direct(ctx context.Context, db *sql.DB, q string) (time.Duration, int) {
	start := time.Now()
	rows, err := db.QueryContext(ctx, q)
	check(err)
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		check(rows.Scan(ptrs...))
		n++
	}
	check(rows.Err())
	rows.Close()
	return time.Since(start), n
}

func progress(what string, done, total int, start time.Time) {
	fmt.Fprintf(os.Stderr, "\r%s: %d/%d (%.0f%%, %s)", what, done, total, 100*float64(done)/float64(total), time.Since(start).Round(time.Second))
	if done == total {
		fmt.Fprintln(os.Stderr)
	}
}

func size(files []string) string {
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return fmt.Sprintf("%.0f MB", float64(n)/1e6)
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func dash(n int) string { return strings.Repeat("-", n) }

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/query:", err)
	os.Exit(1)
}
