// Command landing measures the landing end to end: it produces synthetic pins
// to a fresh topic, lands them into a fresh bucket once per object size, and
// prints records/s, objects and bytes/record. With -resume-objects N it
// instead measures how long the landing takes to resume its partitions with
// N objects in the raw zone, before checkpoints (a listing of the zone) and
// after. It uses the embedded broker and S3 server unless
// PINPIPE_KAFKA_BROKERS / PINPIPE_S3_ENDPOINT are set.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/batch"
	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/lake"
	"pinpipe/synth"
)

func main() {
	n := flag.Int("n", 100000, "pins to produce and land")
	sizes := flag.String("max-records", "1000,10000,50000", "comma-separated PINPIPE_LANDING_MAX_RECORDS values to try")
	interval := flag.Duration("interval", time.Second, "PINPIPE_LANDING_INTERVAL")
	resumeObjects := flag.Int("resume-objects", 0, "instead: measure the landing's resume with this many raw objects in the zone")
	resumePartitions := flag.Int("resume-partitions", broker.Partitions, "partitions of the raw zone with -resume-objects")
	resumeRounds := flag.Int("resume-rounds", 5, "times each resume is measured with -resume-objects")
	flag.Parse()

	fs := flag.NewFlagSet("pinpipe", flag.ContinueOnError)
	cfg, _, err := config.Load(fs, nil, os.Getenv)
	check(err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pinpipe-bench-landing-")
	check(err)
	defer os.RemoveAll(dir)
	if *resumeObjects > 0 {
		benchResume(ctx, cfg, dir, *resumeObjects, *resumePartitions, *resumeRounds)
		return
	}

	topic := "bench-landing-" + suffix()
	brokers := cfg.KafkaBrokers
	if len(brokers) == 0 {
		b, err := broker.Start(dir+"/kafka", "127.0.0.1:0", topic, quiet)
		check(err)
		defer b.Close()
		brokers = b.Addrs()
	}
	check(broker.EnsureTopic(ctx, brokers, topic, broker.Partitions))
	s3 := lake.Options{Endpoint: cfg.S3Endpoint, Region: cfg.AWSRegion, AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey}
	if s3.Endpoint == "" {
		e, err := lake.StartEmbedded(dir+"/s3", "127.0.0.1:0", quiet)
		check(err)
		defer e.Close(ctx)
		s3 = lake.Options{Endpoint: e.Endpoint, Region: "us-east-1", AccessKey: lake.EmbeddedKey, SecretKey: lake.EmbeddedSecret}
	}

	fmt.Fprintf(os.Stderr, "producing %d pins to %s on %v…\n", *n, topic, brokers)
	produce(ctx, brokers, topic, *n)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	// first_s includes joining the group; records/s counts from start.
	fmt.Fprintln(tw, "max_records\tobjects\tfirst_s\tall_s\trecords/s\tMB stored\tbytes/record\tupload p50 ms\t")
	for _, f := range strings.Split(*sizes, ",") {
		maxRecords, err := strconv.Atoi(strings.TrimSpace(f))
		check(err)
		s3.Bucket = "bench-" + suffix()
		store, err := lake.Open(ctx, s3)
		check(err)
		r := land(ctx, brokers, topic, store, maxRecords, *interval, *n)
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", maxRecords, r.objects, r.first.Seconds(), r.took.Seconds(),
			float64(*n)/r.took.Seconds(), r.bytes/1e6, r.bytes/float64(*n), r.uploadP50*1000)
	}
	check(tw.Flush())
}

func produce(ctx context.Context, brokers []string, topic string, n int) {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	g := synth.New(1)
	for done := 0; done < n; {
		msgs := make([]kafka.Message, min(5000, n-done))
		for i := range msgs {
			p := g.Next()
			v, err := json.Marshal(p)
			check(err)
			msgs[i] = kafka.Message{Key: []byte(p["unique_id"].(string)), Value: v}
		}
		check(w.WriteMessages(ctx, msgs...))
		done += len(msgs)
	}
}

type result struct {
	objects   int
	first     time.Duration // until the first object was stored
	took      time.Duration // until the last
	bytes     float64
	uploadP50 float64
}

// land runs a landing with a fresh group until it has landed n records.
func land(ctx context.Context, brokers []string, topic string, store *lake.Store, maxRecords int, interval time.Duration, n int) result {
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	began := time.Now()
	go func() {
		done <- batch.RunLanding(ctx, batch.LandingOptions{Brokers: brokers, Topic: topic, Group: "bench-" + suffix(),
			Lake: store, MaxRecords: maxRecords, Interval: interval,
			Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Registry: reg})
	}()
	var r result
	for {
		m := gather(reg)
		if r.first == 0 && m["pinpipe_batch_landing_objects_total"] > 0 {
			r.first = time.Since(began)
		}
		if m["pinpipe_batch_landing_records_total"] >= float64(n) {
			r.took = time.Since(began)
			r.objects = int(m["pinpipe_batch_landing_objects_total"])
			r.bytes = m["pinpipe_batch_landing_bytes_total"]
			r.uploadP50 = m["upload_p50"]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	check(<-done)
	return r
}

// gather returns the landing's counters by name, and the upload histogram's
// median (the upper bound of the bucket holding it) as upload_p50.
func gather(reg *prometheus.Registry) map[string]float64 {
	mfs, err := reg.Gather()
	check(err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				out[mf.GetName()] += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil && h.GetSampleCount() > 0 {
				for _, b := range h.GetBucket() {
					if float64(b.GetCumulativeCount()) >= float64(h.GetSampleCount())/2 {
						out["upload_p50"] = b.GetUpperBound()
						break
					}
				}
			}
		}
	}
	return out
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/landing:", err)
		os.Exit(1)
	}
}
