package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the row-for-row check and the DuckDB side of the query part
	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/synth"
)

// benchBucket is the S3 bucket of the batch and query parts. A batch part
// empties the day it uses first; the day then stays for the query part (a
// later -parts query reuses it) until the next batch part.
const benchBucket = "pinpipe-peers"

// benchBatch lands e.pins raw pins in a day of the raw zone (the real S3, and
// a local copy for Spark, which cannot reach S3 without jars from outside the
// peers' list), then runs pinpipe's daily job and the two PySpark jobs over
// it and checks pinpipe's curated output against the contract job's.
func benchBatch(ctx context.Context, e *env, res *results) error {
	store, err := e.lake(ctx)
	if err != nil {
		return err
	}
	if err := clearDay(ctx, store, e.date); err != nil {
		return err
	}
	rawDir := filepath.Join(e.work, "lake", "raw", "dt="+e.date)
	log.Printf("batch: landing %d raw pins in day %s (S3 bucket %s, and %s)", e.pins, e.date, benchBucket, rawDir)
	if err := landDay(ctx, store, rawDir, e.date, e.pins); err != nil {
		return err
	}

	log.Printf("batch: pinpipe batch --date %s", e.date)
	started := time.Now()
	pp, err := start(e, "batch-pinpipe", e.repo, pinpipeEnv(
		"PINPIPE_DATA_DIR="+filepath.Join(e.work, "batch-data"),
		"PINPIPE_S3_ENDPOINT="+e.stack.s3Endpoint, "PINPIPE_S3_BUCKET="+benchBucket,
		"AWS_ACCESS_KEY_ID="+e.stack.accessKey, "AWS_SECRET_ACCESS_KEY="+e.stack.secretKey, "AWS_REGION="+e.stack.region,
		"PINPIPE_LOG_LEVEL=info"),
		e.pinpipe, "batch", "--quiet", "--date", e.date)
	if err != nil {
		return err
	}
	if err := pp.wait(ctx); err != nil {
		return err
	}
	wall := time.Since(started)
	logText, _ := os.ReadFile(pp.log)
	curated, err := logDuration(logText, `batch: curated zone replaced.* took=(\S+)`)
	if err != nil {
		return fmt.Errorf("pinpipe batch: %w (log: %s)", err, pp.log)
	}
	rowsIn, rowsOut := logInt(logText, `rows_in=(\d+)`), logInt(logText, `rows_out=(\d+)`)
	ppRSS := pp.maxRSS()
	res.record("batch", "pinpipe", fmt.Sprintf("%d raw pins: read + clean + dedupe + curated Parquet", rowsIn),
		"%.1f s, %.0f rows/s, %d rows out, peak RSS %s (whole process); whole run with the serving stand-in %.1f s",
		curated.Seconds(), float64(rowsIn)/curated.Seconds(), rowsOut, mib(ppRSS), wall.Seconds())

	curatedDir := filepath.Join(e.work, "lake", "curated", "dt="+e.date)
	if err := download(ctx, store, layout.Curated.DayPrefix(e.date), curatedDir); err != nil {
		return err
	}

	var spark [2]sparkResult
	for i, mode := range []string{"seed", "contract"} {
		log.Printf("batch: PySpark, %s", mode)
		out := filepath.Join(e.work, "spark-"+mode)
		r, err := e.sparkJob(ctx, "batch-spark-"+mode, "spark_batch.py", mode, rawDir, out)
		if err != nil {
			return err
		}
		spark[i] = r
		what := map[string]string{"seed": "the seed's cleaning", "contract": "pinpipe's contract"}[mode]
		res.record("batch", "PySpark "+mode, fmt.Sprintf("%d raw pins: %s, Parquet out", r.RowsIn, what),
			"%.1f s (+ %.1f s JVM start, excluded), %.0f rows/s, %d rows out, peak RSS %s (JVM %s + Python %s)",
			r.Seconds, r.JVMStart, float64(r.RowsIn)/r.Seconds, r.RowsOut, mib(r.JVMPeak+r.PyPeak), mib(r.JVMPeak), mib(r.PyPeak))
	}
	ppRate := float64(rowsIn) / curated.Seconds()
	res.compare("batch", "contract: read + clean + dedupe + write", "PySpark contract job", "rows/s", ppRate, float64(spark[1].RowsIn)/spark[1].Seconds, false)
	res.compare("batch", "contract: peak RSS", "PySpark contract job", "MiB", float64(ppRSS)/(1<<20), float64(spark[1].JVMPeak+spark[1].PyPeak)/(1<<20), true)
	res.compare("batch", "vs the seed's lighter cleaning", "PySpark seed job", "rows/s", ppRate, float64(spark[0].RowsIn)/spark[0].Seconds, false)

	diff, err := compareCurated(curatedDir, filepath.Join(e.work, "spark-contract"))
	if err != nil {
		return err
	}
	if diff != "" {
		res.note("batch: pinpipe's curated day differs from the PySpark contract job's: %s", diff)
		return fmt.Errorf("curated output differs from the contract job's: %s", diff)
	}
	res.note("batch: pinpipe's curated day equals the PySpark contract job's output row for row (%d rows, DuckDB EXCEPT ALL both ways)", rowsOut)
	return nil
}

// lake opens the benchmark bucket on the real S3.
func (e *env) lake(ctx context.Context) (*lake.Store, error) {
	return lake.Open(ctx, lake.Options{Endpoint: e.stack.s3Endpoint, Bucket: benchBucket, Region: e.stack.region,
		AccessKey: e.stack.accessKey, SecretKey: e.stack.secretKey})
}

// clearDay deletes the day's objects of every zone.
func clearDay(ctx context.Context, store *lake.Store, dt string) error {
	for _, prefix := range []string{layout.Raw.DayPrefix(dt), layout.Curated.DayPrefix(dt), layout.Rejected.DayPrefix(dt)} {
		objs, err := store.List(ctx, prefix)
		if err != nil {
			return fmt.Errorf("clear %s: %w", prefix, err)
		}
		keys := make([]string, len(objs))
		for i, o := range objs {
			keys[i] = o.Key
		}
		if err := store.Delete(ctx, keys...); err != nil {
			return fmt.Errorf("clear %s: %w", prefix, err)
		}
	}
	return nil
}

// landDay writes n synthetic records into day dt of the raw zone, as the
// landing would: keyed by the lower-case unique_id over three partitions,
// 10,000 records an object, every 20th record a re-send of an earlier pin
// (so 5% are versions the dedupe drops), timestamps spread over the day in
// offset order. Each object also goes to dir, for Spark.
func landDay(ctx context.Context, store *lake.Store, dir, dt string, n int) error {
	const perObject, partitions, resendEvery = 10_000, 3, 20
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	day, err := time.Parse(time.DateOnly, dt)
	if err != nil {
		return err
	}
	gen := synth.New(7)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	var (
		pending [partitions][]batch.RawRecord
		next    [partitions]int64
		earlier [][]byte
	)
	flush := func(part int) {
		recs := pending[part]
		pending[part] = nil
		if len(recs) == 0 {
			return
		}
		key := layout.RawKey(dt, part, recs[0].Offset, recs[len(recs)-1].Offset)
		g.Go(func() error {
			var buf bytes.Buffer
			if err := batch.WriteRaw(&buf, recs); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, path.Base(key)), buf.Bytes(), 0o644); err != nil {
				return err
			}
			return store.Put(gctx, key, &buf)
		})
	}
	for seq := range n {
		var v []byte
		if seq%resendEvery == resendEvery-1 && len(earlier) > 0 {
			v = earlier[(seq*7919)%len(earlier)]
		} else {
			v, _ = json.Marshal(gen.Next())
			if len(earlier) < 50_000 {
				earlier = append(earlier, v)
			}
		}
		var p struct {
			UniqueID string `json:"unique_id"`
		}
		_ = json.Unmarshal(v, &p)
		key := strings.ToLower(p.UniqueID)
		h := fnv.New32a()
		h.Write([]byte(key))
		part := int(h.Sum32() % partitions)
		pending[part] = append(pending[part], batch.RawRecord{
			Topic: "pins", Partition: int32(part), Offset: next[part],
			Timestamp: day.Add(time.Duration(seq) * (24 * time.Hour / time.Duration(n+1))).Truncate(time.Millisecond),
			Key:       key, Value: string(v),
		})
		next[part]++
		if len(pending[part]) == perObject {
			flush(part)
		}
	}
	for part := range partitions {
		flush(part)
	}
	return g.Wait()
}

// download copies the Parquet objects under prefix into dir.
func download(ctx context.Context, store *lake.Store, prefix, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		body, err := store.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, path.Base(o.Key)))
		if err == nil {
			_, err = io.Copy(f, body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		body.Close()
		if err != nil {
			return fmt.Errorf("download %s: %w", o.Key, err)
		}
	}
	return nil
}

// sparkResult is what a PySpark job reports (its PEERS_RESULT line).
type sparkResult struct {
	RowsIn   int64                `json:"rows_in"`
	RowsOut  int64                `json:"rows_out"`
	Seconds  float64              `json:"seconds"`
	JVMStart float64              `json:"jvm_start"`
	JVMPeak  int64                `json:"jvm_peak"`
	PyPeak   int64                `json:"py_peak"`
	Queries  map[string][]float64 `json:"queries"`
}

// sparkJob runs one of the Python jobs to its end and returns its result.
func (e *env) sparkJob(ctx context.Context, name, script string, args ...string) (sparkResult, error) {
	var r sparkResult
	p, err := start(e, name, e.dir(), e.sparkEnv(), append([]string{e.python, script}, args...)...)
	if err != nil {
		return r, err
	}
	if err := p.wait(ctx); err != nil {
		return r, err
	}
	return r, readResult(p, &r)
}

// sparkEnv is the environment of a Spark job.
func (e *env) sparkEnv(kv ...string) []string {
	return withEnv([]string{"PYSPARK_", "SPARK_"}, append([]string{
		"PEERS_JARS=" + joinComma(e.jars), "PEERS_SPARK_MEMORY=" + e.spark, "SPARK_LOCAL_IP=127.0.0.1",
	}, kv...)...)
}

// readResult decodes the last PEERS_RESULT line of p's log into v.
func readResult(p *proc, v any) error {
	f, err := os.Open(p.log)
	if err != nil {
		return err
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if _, s, ok := strings.Cut(sc.Text(), "PEERS_RESULT "); ok {
			last = s
		}
	}
	if last == "" {
		return fmt.Errorf("%s printed no result (log: %s)%s", p.name, p.log, p.tail())
	}
	return json.Unmarshal([]byte(last), v)
}

// compareCurated returns "" when the two directories of Parquet hold the
// same rows (as a multiset, every contract column), else what differs.
func compareCurated(pinpipeDir, sparkDir string) (string, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return "", err
	}
	defer db.Close()
	cols := `id_index::BIGINT, title, category, unique_id, description, poster_name, follower_count::BIGINT,
		tag_list, tags::VARCHAR[], is_image_or_video, image_src, downloaded::INTEGER, save_location,
		ingested_at::TIMESTAMP, kafka_partition::INTEGER, kafka_offset::BIGINT`
	a := fmt.Sprintf("SELECT %s FROM read_parquet('%s/*.parquet')", cols, pinpipeDir)
	b := fmt.Sprintf("SELECT %s FROM read_parquet('%s/*.parquet')", cols, sparkDir)
	var na, nb, onlyA, onlyB int64
	q := fmt.Sprintf(`SELECT (SELECT count(*) FROM (%[1]s)), (SELECT count(*) FROM (%[2]s)),
		(SELECT count(*) FROM (%[1]s EXCEPT ALL %[2]s)), (SELECT count(*) FROM (%[2]s EXCEPT ALL %[1]s))`, a, b)
	if err := db.QueryRow(q).Scan(&na, &nb, &onlyA, &onlyB); err != nil {
		return "", fmt.Errorf("compare curated output: %w", err)
	}
	if onlyA == 0 && onlyB == 0 && na == nb {
		return "", nil
	}
	var sample string
	_ = db.QueryRow(fmt.Sprintf(`SELECT string_agg(unique_id, ', ') FROM (SELECT unique_id FROM (%s EXCEPT ALL %s) LIMIT 3)`, a, b)).Scan(&sample)
	return fmt.Sprintf("pinpipe %d rows, Spark %d; %d rows only in pinpipe's (e.g. %s), %d only in Spark's", na, nb, onlyA, sample, onlyB), nil
}

func logDuration(text []byte, pattern string) (time.Duration, error) {
	m := regexp.MustCompile(pattern).FindSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("no line matches %q", pattern)
	}
	return time.ParseDuration(string(m[1]))
}

func logInt(text []byte, pattern string) int64 {
	var n int64
	if m := regexp.MustCompile(pattern).FindSubmatch(text); m != nil {
		fmt.Sscan(string(m[1]), &n)
	}
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
