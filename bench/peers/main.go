// Command peers measures pinpipe side by side with the Python stack it
// replaces, on the same machine, against the same real Kafka, Postgres and
// S3 (scripts/stack), with the same synthetic pins:
//
//   - ingest: the seed's FastAPI + pydantic + kafka-python API (acks=all, one
//     uvicorn worker) vs pinpipe's POST /pins, one pin a request and bulk;
//   - batch: PySpark local[*] running the seed's cleaning, and PySpark doing
//     pinpipe's contract, vs `pinpipe batch --date D` over the same raw zone,
//     with a row-for-row check of pinpipe's curated output;
//   - stream: Spark Structured Streaming (Kafka → clean → foreachBatch upsert
//     into Postgres) vs pinpipe's stream lane, freshness at a fixed rate;
//   - query: Spark SQL vs pinpipe's /query vs DuckDB over the same curated
//     Parquet, for the dashboard's example queries.
//
// It installs the peers itself (a Python venv from PyPI, two jars from Maven
// Central, both cached) and prints one table of ratios and the raw numbers.
// Run it with bench/peers/run, which loads the stack's settings.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	parts    string
	cache    string
	repo     string
	work     string
	keep     bool
	conns    int
	bulkConn int
	bulkSize int
	duration time.Duration
	warmup   time.Duration
	pins     int
	date     string
	spark    string
	rate     int
	streamD  time.Duration
	backlog  int
	runs     int
}

func main() {
	var o options
	cache, _ := os.UserCacheDir()
	flag.StringVar(&o.parts, "parts", "ingest,batch,stream,query", "comma-separated parts to run, in this order")
	flag.StringVar(&o.cache, "cache", filepath.Join(cache, "pinpipe-peers"), "where the venv, the jars and the pinpipe binary are kept between runs")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's work directory (logs, Parquet copies)")
	flag.IntVar(&o.conns, "conns", 32, "ingest: connections for one-pin requests")
	flag.IntVar(&o.bulkConn, "bulk-conns", 4, "ingest: connections for bulk requests")
	flag.IntVar(&o.bulkSize, "bulk-size", 1000, "ingest: pins per bulk request")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "ingest: how long each case is measured")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "ingest: unmeasured load before each case")
	flag.IntVar(&o.pins, "pins", 1_000_000, "batch: raw pins in the day (5% re-sends)")
	flag.StringVar(&o.date, "date", "2024-03-01", "batch: the day the pins land in")
	flag.StringVar(&o.spark, "spark-memory", "4g", "batch, query: Spark driver memory (local[*] runs in the driver)")
	flag.IntVar(&o.rate, "stream-rate", 2000, "stream: pins/s produced to Kafka")
	flag.DurationVar(&o.streamD, "stream-duration", 45*time.Second, "stream: how long the rate is measured (after 10 s unmeasured)")
	flag.IntVar(&o.backlog, "stream-backlog", 300_000, "stream: pins of the backlog each side drains for its sustained maximum (0: not measured)")
	flag.IntVar(&o.runs, "query-runs", 10, "query: measured runs of each query in Spark SQL (after one warm-up); pinpipe and DuckDB take three times as many, in turns")
	pythonOnly := flag.Bool("python", false, "only install the Python peers (pyspark) into the cache if missing, print the venv's python and exit (scripts/test's lake interop test uses it)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("peers: ")
	if *pythonOnly {
		check(os.MkdirAll(o.cache, 0o755))
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		python, err := setupPython(ctx, o.cache)
		stop()
		check(err)
		fmt.Println(python)
		return
	}

	st, err := stackFromEnv()
	check(err)
	o.repo, err = repoRoot()
	check(err)
	check(os.MkdirAll(o.cache, 0o755))
	o.work, err = os.MkdirTemp("", "pinpipe-peers-")
	check(err)
	if o.keep {
		log.Printf("work directory: %s", o.work)
	} else {
		defer os.RemoveAll(o.work)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := setup(ctx, o)
	check(err)
	env.stack = st
	env.run = time.Now().UTC().Format("20060102t150405")

	var res results
	// The table is printed whatever happened; a part that failed makes
	// the run exit 1 after it.
	defer func() {
		res.print(os.Stdout, env)
		if len(res.failed) > 0 {
			os.Exit(1)
		}
	}()
	for _, part := range strings.Split(o.parts, ",") {
		start := time.Now()
		switch strings.TrimSpace(part) {
		case "ingest":
			err = benchIngest(ctx, env, &res)
		case "batch":
			err = benchBatch(ctx, env, &res)
		case "stream":
			err = benchStream(ctx, env, &res)
		case "query":
			err = benchQuery(ctx, env, &res)
		default:
			err = fmt.Errorf("unknown part %q: want ingest, batch, stream or query", part)
		}
		if err != nil {
			log.Printf("%s: %v", part, err)
			res.failed = append(res.failed, fmt.Sprintf("%s: %v", part, err))
			if ctx.Err() != nil {
				return
			}
			continue
		}
		log.Printf("%s done in %s", part, time.Since(start).Round(time.Second))
	}
}

// stack holds the real services' settings from scripts/stack env.
type stack struct {
	brokers     []string
	s3Endpoint  string
	accessKey   string
	secretKey   string
	region      string
	postgresURL string
}

// stackFromEnv reads the stack's settings. Returns an error saying how to
// get them when Kafka, S3 or Postgres is not set.
func stackFromEnv() (stack, error) {
	s := stack{
		s3Endpoint:  os.Getenv("PINPIPE_S3_ENDPOINT"),
		accessKey:   os.Getenv("AWS_ACCESS_KEY_ID"),
		secretKey:   os.Getenv("AWS_SECRET_ACCESS_KEY"),
		region:      os.Getenv("AWS_REGION"),
		postgresURL: os.Getenv("PINPIPE_POSTGRES_URL"),
	}
	if b := os.Getenv("PINPIPE_KAFKA_BROKERS"); b != "" {
		s.brokers = strings.Split(b, ",")
	}
	if len(s.brokers) == 0 || s.s3Endpoint == "" || s.postgresURL == "" {
		return s, fmt.Errorf("the real stack is not set: run bench/peers/run, or eval \"$(scripts/stack env)\" first (PINPIPE_KAFKA_BROKERS, PINPIPE_S3_ENDPOINT and PINPIPE_POSTGRES_URL are needed)")
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	return s, nil
}

// repoRoot returns the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: run from the pinpipe repository")
		}
		dir = parent
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/peers:", err)
		os.Exit(1)
	}
}
