package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/config"
	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// perDay is how many objects a partition gets a day at the default
// PINPIPE_LANDING_INTERVAL (one a minute while pins arrive).
const perDay = 1440

// benchResume fills a fresh bucket's raw zone with objects small raw
// objects over partitions, one a minute per partition going back as many
// days as that takes, then measures the landing's resume of every
// partition: the listing the landing did before checkpoints (and still does
// once for a raw zone without them), the first resume of such a zone, which
// makes the checkpoints, and the resume from checkpoints.
func benchResume(ctx context.Context, cfg *config.Config, dir string, objects, partitions, rounds int) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s3 := lake.Options{Endpoint: cfg.S3Endpoint, Region: cfg.AWSRegion, AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey}
	where := "the S3 server at " + s3.Endpoint
	bucket := "bench-resume-" + suffix()
	var put func(key string, body []byte) error // nil: through S3
	if s3.Endpoint == "" {
		e, err := lake.StartEmbedded(dir+"/s3", "127.0.0.1:0", quiet)
		check(err)
		defer e.Close(ctx)
		s3 = lake.Options{Endpoint: e.Endpoint, Region: "us-east-1", AccessKey: lake.EmbeddedKey, SecretKey: lake.EmbeddedSecret}
		where = "the embedded S3 server (files under " + dir + ")"
		// The embedded server takes one PUT at a time over HTTP; its
		// storage backend, opened on the same directory and called
		// directly, fills the zone many times faster.
		backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir+"/s3"))
		check(err)
		put = func(key string, body []byte) error {
			_, err := backend.PutObject(bucket, key, nil, bytes.NewReader(body), int64(len(body)), nil)
			return err
		}
	}
	s3.Bucket = bucket
	store, err := lake.Open(ctx, s3)
	check(err)
	if put == nil {
		put = func(key string, body []byte) error { return store.Put(ctx, key, bytes.NewReader(body)) }
	}
	topic := "bench-resume"

	fmt.Fprintf(os.Stderr, "storing %d raw objects over %d partitions in %s…\n", objects, partitions, where)
	began := time.Now()
	days, committed := fillRawZone(put, objects, partitions)
	fmt.Fprintf(os.Stderr, "stored in %.1fs (%d days)\n", time.Since(began).Seconds(), days)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "raw objects\tpartitions\tdays\tresume\tmedian ms\tmin ms\tmax ms\t\n")
	row := func(name string, took []time.Duration) {
		slices.Sort(took)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%.1f\t%.1f\t%.1f\t\n", objects, partitions, days, name,
			ms(took[len(took)/2]), ms(took[0]), ms(took[len(took)-1]))
	}
	measure := func(f func()) []time.Duration {
		var took []time.Duration
		for range rounds {
			t := time.Now()
			f()
			took = append(took, time.Since(t))
		}
		return took
	}

	// Before: every assignment listed the whole raw zone.
	row("list the raw zone (before)", measure(func() {
		last, err := batch.LastLanded(ctx, store)
		check(err)
		if len(last) != partitions {
			check(fmt.Errorf("the listing found %d partitions, want %d", len(last), partitions))
		}
	}))
	// A raw zone without checkpoints: listed once, then checkpointed.
	row("no checkpoints yet (once)", measure(func() {
		cps, err := store.List(ctx, layout.CheckpointPrefix(topic))
		check(err)
		for _, o := range cps {
			check(store.Delete(ctx, o.Key))
		}
		resume(ctx, store, topic, committed, quiet)
	}))
	// After: one checkpoint per partition.
	row("from checkpoints (after)", measure(func() { resume(ctx, store, topic, committed, quiet) }))
	check(tw.Flush())

	if cfg.S3Endpoint != "" { // the embedded server's files go with dir
		objs, err := store.List(ctx, "")
		check(err)
		keys := make([]string, len(objs))
		for i, o := range objs {
			keys[i] = o.Key
		}
		check(store.Delete(ctx, keys...))
	}
}

// resume runs the landing's resume and checks it lands on the offset after
// each partition's last object.
func resume(ctx context.Context, store *lake.Store, topic string, want map[int]int64, log *slog.Logger) {
	committed := make(map[int]int64, len(want))
	for p := range want {
		committed[p] = -2 // a new group: only the lake knows where each partition is
	}
	got, err := batch.Resume(ctx, store, topic, committed, log)
	check(err)
	for p, next := range want {
		if got[p] != next {
			check(fmt.Errorf("partition %d resumes at %d, want %d", p, got[p], next))
		}
	}
}

// fillRawZone stores objects raw objects round-robin over partitions, each
// naming 10 offsets after the previous one of its partition, perDay a day
// per partition back from yesterday. They all hold one copy of the same
// one-record Parquet: the resume reads names, and the body of only each
// partition's last object. Returns the days used and each partition's
// offset after its last object.
func fillRawZone(put func(key string, body []byte) error, objects, partitions int) (int, map[int]int64) {
	var body bytes.Buffer
	now := time.Now().UTC()
	check(batch.WriteRaw(&body, []batch.RawRecord{{Topic: "bench-resume", Offset: 0, Timestamp: now.AddDate(0, 0, -1),
		Key: "k", Value: `{"index":1}`}}))
	perPartition := (objects + partitions - 1) / partitions
	days := (perPartition + perDay - 1) / perDay
	first := now.Truncate(24*time.Hour).AddDate(0, 0, -days)
	next := map[int]int64{}
	var g errgroup.Group
	g.SetLimit(16)
	for i := range objects {
		p, n := i%partitions, i/partitions
		off := int64(n) * 10
		next[p] = off + 10
		key := layout.RawKey(first.AddDate(0, 0, n/perDay).Format(time.DateOnly), p, off, off+9)
		g.Go(func() error { return put(key, body.Bytes()) })
		if (i+1)%10000 == 0 {
			fmt.Fprintf(os.Stderr, "  %d objects\n", i+1)
		}
	}
	check(g.Wait())
	return days, next
}
