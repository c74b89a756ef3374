// Command stream measures the stream lane against an in-process pinpipe and
// the configured Postgres (the embedded stand-in when PINPIPE_POSTGRES_URL
// is unset): freshness p50/p99 at a steady posting rate, the most pins/s it
// stores, and with -outage how it rides out Postgres going away under load.
// It prints a table; progress goes to stderr.
//
//	go run ./bench/stream                      # steady 2,000 pins/s for 30 s, then max throughput
//	go run ./bench/stream -outage 30s          # Postgres cut for 30 s under 500 pins/s
//
// It uses its own topic, consumer groups and (on a real Postgres) its own
// database, dropped at the end; S3 and Cassandra are always embedded.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

const freshnessMetric = "pinpipe_stream_freshness_seconds"

type options struct {
	rate, perReq       int
	duration, maxDur   time.Duration
	workers, bulk      int
	drain              int
	outage             time.Duration
	outageRate         int
	keep               bool
	cfg                *config.Config
	realPG, realKafka  bool
	pgURL, description string
}

func main() {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	var o options
	fs.IntVar(&o.rate, "rate", 2000, "steady phase: pins/s posted")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "steady phase: how long")
	fs.IntVar(&o.perReq, "request-pins", 20, "steady and outage phases: pins per POST /pins request")
	fs.DurationVar(&o.maxDur, "max-duration", 20*time.Second, "max phase: how long to post as fast as possible (0: skip)")
	fs.IntVar(&o.workers, "max-workers", 4, "max phase: concurrent posters")
	fs.IntVar(&o.bulk, "max-request-pins", 500, "max phase: pins per request")
	fs.IntVar(&o.drain, "drain", 200000, "drain phase: pins put in a fresh topic, then stored by a starting lane (0: skip)")
	fs.DurationVar(&o.outage, "outage", 0, "instead of the phases above: cut Postgres for this long under load")
	fs.IntVar(&o.outageRate, "outage-rate", 500, "outage mode: pins/s posted throughout")
	fs.BoolVar(&o.keep, "keep", false, "keep the bench's Postgres database")
	cfg, _, err := config.Load(fs, os.Args[1:], os.Getenv)
	check(err)
	o.cfg = cfg
	o.realKafka, o.realPG = len(cfg.KafkaBrokers) > 0, cfg.PostgresURL != ""

	dir, err := os.MkdirTemp("", "pinpipe-bench-stream-")
	check(err)
	defer os.RemoveAll(dir)
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", dir
	cfg.S3Endpoint, cfg.CassandraHosts = "", nil
	cfg.Topic, cfg.GroupPrefix = testenv.Name("bench-stream-"), testenv.Name("bench-stream-")
	if o.realPG {
		drop, err := freshDatabase(&o)
		check(err)
		if !o.keep {
			defer drop()
		}
	}
	if o.realKafka {
		defer deleteTopics(cfg.KafkaBrokers, cfg.Topic, cfg.Topic+"-drain")
	}
	o.description = fmt.Sprintf("kafka %s, postgres %s, GOMAXPROCS=%d, micro-batches of %d records or %s (linger %s, Postgres only)",
		kind(o.realKafka), kind(o.realPG), runtime.GOMAXPROCS(0), cfg.StreamMaxRecords, cfg.StreamInterval, cfg.StreamLinger)

	if o.outage > 0 {
		if !o.realPG {
			fmt.Fprintln(os.Stderr, "-outage needs a real Postgres to cut: set PINPIPE_POSTGRES_URL (eval \"$(scripts/stack env)\")")
			os.Exit(2)
		}
		runOutage(&o)
		return
	}
	runThroughput(&o)
}

func kind(real bool) string {
	if real {
		return "external"
	}
	return "embedded"
}

// freshDatabase creates the bench's database next to PINPIPE_POSTGRES_URL's
// and points the config at it; drop removes it.
func freshDatabase(o *options) (drop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := o.cfg.PostgresURL
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("postgres at PINPIPE_POSTGRES_URL: %w", err)
	}
	defer conn.Close(ctx)
	name := testenv.Name("bench_stream_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	o.cfg.PostgresURL, o.pgURL = u.String(), u.String()
	fmt.Fprintf(os.Stderr, "bench database: %s\n", name)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	}, nil
}

func deleteTopics(brokers []string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
}

func start(cfg *config.Config) *pipeline.Pipeline {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	p, err := pipeline.Start(context.Background(), cfg, log)
	check(err)
	return p
}

func stop(p *pipeline.Pipeline) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.Stop(ctx)
}

// runThroughput runs the steady, max and drain phases and prints their table.
func runThroughput(o *options) {
	p := start(o.cfg)
	var rows [][]string

	// Steady: freshness at a fixed rate.
	before := snapshot(p.Registry, freshnessMetric)
	l := newLoader(p.Addr, o.perReq, 1, false)
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	pr := watch(ctx, p.Addr, "steady", l)
	t0 := time.Now()
	l.steady(ctx, o.rate)
	posted := time.Since(t0)
	cancel()
	_, ok := waitStored(p.Addr, l.accepted.Load(), 2*time.Minute)
	h := snapshot(p.Registry, freshnessMetric).since(before)
	rows = append(rows, []string{
		fmt.Sprintf("steady %d pins/s, %s", o.rate, o.duration),
		rate(l.accepted.Load(), posted), secs(h.quantile(0.5)), secs(h.quantile(0.99)),
		fmt.Sprintf("%.2f%%", 100*h.share(1)), secs(pr.worstP99()), fmt.Sprint(pr.maxLag()), note(ok, l),
	})
	stored := l.accepted.Load()

	// Max: post as fast as pinpipe accepts.
	if o.maxDur > 0 {
		before = snapshot(p.Registry, freshnessMetric)
		l = newLoader(p.Addr, o.bulk, 2, false)
		ctx, cancel = context.WithTimeout(context.Background(), o.maxDur)
		pr = watch(ctx, p.Addr, "max   ", l)
		t0 = time.Now()
		l.flat(ctx, o.workers)
		posted = time.Since(t0)
		cancel()
		st, _ := statsOf(p.Addr)
		during := st.Total - stored
		took, ok := waitStored(p.Addr, stored+l.accepted.Load(), 5*time.Minute)
		h = snapshot(p.Registry, freshnessMetric).since(before)
		rows = append(rows, []string{
			fmt.Sprintf("max: %d posters × %d pins, %s", o.workers, o.bulk, o.maxDur),
			rate(l.accepted.Load(), posted), secs(h.quantile(0.5)), secs(h.quantile(0.99)),
			fmt.Sprintf("%.2f%%", 100*h.share(1)), secs(pr.worstP99()), fmt.Sprint(pr.maxLag()),
			fmt.Sprintf("%s stored while posting; all stored %s after the last post%s", rate(during, posted), took.Round(100*time.Millisecond), okText(ok)),
		})
		stored += l.accepted.Load()
	}

	// Drain: a backlog already in the topic, stored by a starting lane.
	if o.drain > 0 {
		topic := o.cfg.Topic + "-drain"
		fill(p.Brokers, topic, o.drain)
		stop(p)
		cfg := *o.cfg
		cfg.Topic, cfg.GroupPrefix = topic, testenv.Name("bench-drain-")
		t0 = time.Now()
		p = start(&cfg)
		ctx, cancel = context.WithCancel(context.Background())
		pr = watch(ctx, p.Addr, "drain ", nil)
		took, ok := waitStored(p.Addr, stored+int64(o.drain), 10*time.Minute)
		cancel()
		rows = append(rows, []string{
			fmt.Sprintf("drain: %d pins already in the topic", o.drain),
			"-", "-", "-", "-", "-", fmt.Sprint(pr.maxLag()),
			fmt.Sprintf("%s into postgres (start to all stored: %s)%s", rate(int64(o.drain), took), took.Round(100*time.Millisecond), okText(ok)),
		})
	}
	stop(p)

	fmt.Printf("\nstream lane: %s\n", o.description)
	fmt.Printf("freshness = Kafka record timestamp → commit of its row (histogram %s, interpolated; ≤1s exact);\n", freshnessMetric)
	fmt.Printf("worst ring p99 = largest p99 /stream/stats showed (its last 8192 pins), polled each second\n\n")
	table([]string{"phase", "accepted pins/s", "p50", "p99", "≤1s", "worst ring p99", "max lag", "notes"}, rows)
}

// fill produces n synthetic pins straight into a fresh topic.
func fill(brokers []string, topic string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	check(broker.EnsureTopic(ctx, brokers, topic, broker.Partitions))
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 5000, BatchBytes: 64 << 20, BatchTimeout: 10 * time.Millisecond, Compression: kafka.Lz4}
	defer w.Close()
	g := synth.New(3)
	fmt.Fprintf(os.Stderr, "filling %s with %d pins…\n", topic, n)
	for done := 0; done < n; {
		batch := make([]kafka.Message, min(20000, n-done))
		for i := range batch {
			p := g.Next()
			v, err := json.Marshal(p)
			check(err)
			batch[i] = kafka.Message{Key: []byte(strings.ToLower(p["unique_id"].(string))), Value: v, Time: time.Now()}
		}
		// A topic just made may not have its leaders yet.
		check(retry.Do(ctx, retry.Bounded, slog.Default(), "fill "+topic, func() error {
			return w.WriteMessages(ctx, batch...)
		}))
		done += len(batch)
	}
}

func rate(n int64, d time.Duration) string {
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

func secs(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case math.IsInf(s, 1):
		return ">60s"
	}
	return fmt.Sprintf("%.3fs", s)
}

func note(ok bool, l *loader) string {
	s := fmt.Sprintf("%d pins accepted", l.accepted.Load())
	if f := l.failed.Load(); f > 0 {
		s += fmt.Sprintf(", %d requests refused", f)
	}
	return s + okText(ok)
}

func okText(ok bool) string {
	if ok {
		return ""
	}
	return " — NOT all stored before the timeout"
}

func table(head []string, rows [][]string) {
	w := make([]int, len(head))
	for _, r := range append([][]string{head}, rows...) {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			fmt.Printf("| %-*s ", w[i], c)
		}
		fmt.Println("|")
	}
	line(head)
	for i := range head {
		fmt.Printf("|%s", strings.Repeat("-", w[i]+2))
	}
	fmt.Println("|")
	for _, r := range rows {
		line(r)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/stream:", err)
		os.Exit(1)
	}
}
