package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"pinpipe/consume"
	"pinpipe/internal/retry"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// LandingOptions configure the landing.
type LandingOptions struct {
	Brokers    []string
	Topic      string
	Group      string // consumer group, "<prefix>-landing"
	Lake       *lake.Store
	MaxRecords int           // PINPIPE_LANDING_MAX_RECORDS
	Interval   time.Duration // PINPIPE_LANDING_INTERVAL
	// Flush, when set, stores the open batches at once when asked
	// (see Barrier); nil: they close at MaxRecords or Interval only.
	Flush    *consume.Flush
	Log      *slog.Logger // nil: slog.Default()
	Registry prometheus.Registerer
}

// RunLanding lands the topic in the raw zone until ctx ends: each batch of a
// partition (closed at MaxRecords records or Interval after its first) becomes
// one Parquet object per UTC day it touches, named by layout.RawKey, then the
// partition's checkpoint (layout.CheckpointKey) is written, and only then are
// its offsets committed. On assignment a partition resumes from its
// checkpoint when that is past the committed offset, so no record lands
// twice; a partition without a checkpoint (a raw zone landed by an older
// pinpipe) is found once by listing the raw zone, then checkpointed. A
// failing upload is retried until ctx ends, never skipped. Returns nil on
// shutdown, and an error only when the options are unusable. Registering its
// metrics twice on one Registry panics.
func RunLanding(ctx context.Context, o LandingOptions) error {
	return runLanding(ctx, o, landingHooks{})
}

// landingHooks are the seams through which tests crash the landing.
type landingHooks struct {
	// wrap wraps the handler: a crash between a batch's checkpoint and
	// its commit.
	wrap func(consume.Handler) consume.Handler
	// afterUpload, when set, runs after each object is stored; an error
	// stands for a crash before the checkpoint that follows.
	afterUpload func(key string) error
}

func runLanding(ctx context.Context, o LandingOptions, hooks landingHooks) error {
	if o.Lake == nil {
		return errors.New("landing: no object store (LandingOptions.Lake is nil)")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	l := &lander{lake: o.Lake, topic: o.Topic, log: o.Log.With(slog.String("lane", "landing")),
		m: newLandingMetrics(o.Registry), progress: map[int]Checkpoint{}, afterUpload: hooks.afterUpload}
	var h consume.Handler = l
	if hooks.wrap != nil {
		h = hooks.wrap(h)
	}
	err := consume.Run(ctx, consume.Options{
		Brokers:     o.Brokers,
		Topic:       o.Topic,
		Group:       o.Group,
		MaxRecords:  o.MaxRecords,
		MaxWait:     o.Interval,
		Flush:       o.Flush,
		StartOffset: l.startOffset,
		Lag:         consume.NewLag(l.onLag),
		Store:       retry.Forever,
		Log:         l.log,
	}, h)
	if err != nil {
		return fmt.Errorf("landing: %w", err)
	}
	return nil
}

type landingMetrics struct {
	objects, bytes, records prometheus.Counter
	lag, landed             *prometheus.GaugeVec
	upload                  prometheus.Histogram
}

func newLandingMetrics(reg prometheus.Registerer) landingMetrics {
	f := promauto.With(reg)
	return landingMetrics{
		objects: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_batch_landing_objects_total",
			Help: "Raw-zone objects the landing stored.",
		}),
		bytes: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_batch_landing_bytes_total",
			Help: "Bytes of Parquet the landing stored in the raw zone.",
		}),
		records: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_batch_landing_records_total",
			Help: "Kafka records the landing stored in the raw zone.",
		}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pinpipe_batch_landing_lag_messages",
			Help: "Records of the partition not yet in the raw zone.",
		}, []string{"partition"}),
		landed: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pinpipe_batch_landed_timestamp_seconds",
			Help: "Kafka timestamp (Unix seconds) of the newest record of the partition in the raw zone, as its checkpoint says.",
		}, []string{"partition"}),
		upload: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pinpipe_batch_landing_upload_seconds",
			Help:    "Time to store one raw-zone object.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
}

// lander stores batches in the raw zone.
type lander struct {
	lake  *lake.Store
	topic string
	log   *slog.Logger
	m     landingMetrics

	// listing shares one listing of the raw zone between the partitions
	// assigned together that have no checkpoint: their StartOffset calls
	// start at the same moment, so they overlap and all join the first.
	listing singleflight.Group

	mu sync.Mutex
	// progress is each owned partition's checkpoint as last written.
	progress map[int]Checkpoint

	afterUpload func(key string) error
}

// Handle stores b as one object per run of consecutive records on the same
// UTC day, in offset order, between two checkpoints: the first lists the
// objects as pending, the second moves the partition's Next past b. A
// retried batch overwrites the objects it already stored with the same
// bytes.
func (l *lander) Handle(ctx context.Context, b consume.Batch) error {
	cp, err := l.checkpoint(ctx, b.Partition)
	if err != nil {
		return err
	}
	runs := dayRuns(b.Messages)
	cp.Pending = make([]PendingObject, len(runs))
	done := cp
	done.Pending = nil
	for i, run := range runs {
		newest := run[0].Time
		for _, m := range run[1:] {
			if m.Time.After(newest) {
				newest = m.Time
			}
		}
		newest = newest.UTC()
		cp.Pending[i] = PendingObject{Key: rawKey(b.Partition, run), Next: run[len(run)-1].Offset + 1, Newest: newest}
		if newest.After(done.Newest) {
			done.Newest = newest
		}
	}
	done.Next = max(done.Next, b.Last()+1)
	if err := writeCheckpoint(ctx, l.lake, cp); err != nil {
		return err
	}
	for _, run := range runs {
		if err := l.store(ctx, b.Topic, b.Partition, run); err != nil {
			return err
		}
	}
	if err := writeCheckpoint(ctx, l.lake, done); err != nil {
		return err
	}
	l.advance(done)
	return nil
}

// checkpoint returns the partition's checkpoint as this landing last wrote
// it, or as the lake holds it when this landing wrote none (a batch always
// follows its partition's startOffset, so that is a fallback only).
func (l *lander) checkpoint(ctx context.Context, partition int) (Checkpoint, error) {
	l.mu.Lock()
	cp, ok := l.progress[partition]
	l.mu.Unlock()
	if ok {
		return cp, nil
	}
	cp, err := ReadCheckpoint(ctx, l.lake, l.topic, partition)
	if errors.Is(err, ErrNoCheckpoint) {
		return Checkpoint{Topic: l.topic, Partition: partition}, nil
	}
	return cp, err
}

// advance records cp as the partition's progress.
func (l *lander) advance(cp Checkpoint) {
	l.mu.Lock()
	l.progress[cp.Partition] = cp
	l.mu.Unlock()
	if !cp.Newest.IsZero() {
		l.m.landed.WithLabelValues(strconv.Itoa(cp.Partition)).Set(float64(cp.Newest.UnixMilli()) / 1e3)
	}
}

func rawKey(partition int, run []kafka.Message) string {
	return layout.RawKey(pin.DT(run[0].Time), partition, run[0].Offset, run[len(run)-1].Offset)
}

// store writes msgs, all of one partition and one day, as one object.
func (l *lander) store(ctx context.Context, topic string, partition int, msgs []kafka.Message) error {
	key := rawKey(partition, msgs)
	recs := make([]RawRecord, len(msgs))
	for i, m := range msgs {
		recs[i] = RawRecord{
			Topic:     topic,
			Partition: int32(partition),
			Offset:    m.Offset,
			Timestamp: m.Time.UTC(),
			Key:       string(m.Key),
			Value:     string(m.Value),
		}
	}
	// The object is encoded into memory rather than streamed through a pipe:
	// the batch's messages are in memory already and the compressed object is
	// smaller than them, its size is known for the metrics before the upload,
	// and a seekable body lets the SDK retry a part without re-encoding.
	// Bodies past the uploader's part size still go up as multipart.
	var buf bytes.Buffer
	if err := WriteRaw(&buf, recs); err != nil {
		return fmt.Errorf("landing: %s: %w", key, err)
	}
	size := buf.Len()
	began := time.Now()
	if err := l.lake.Put(ctx, key, bytes.NewReader(buf.Bytes())); err != nil {
		return fmt.Errorf("landing: upload: %w", err)
	}
	took := time.Since(began)
	l.m.upload.Observe(took.Seconds())
	l.m.objects.Inc()
	l.m.bytes.Add(float64(size))
	l.m.records.Add(float64(len(recs)))
	l.log.Info("raw object stored", slog.String("key", key), slog.Int("records", len(recs)),
		slog.Int("bytes", size), slog.Duration("took", took))
	if l.afterUpload != nil {
		return l.afterUpload(key)
	}
	return nil
}

// dayRuns splits msgs into maximal runs of consecutive records whose
// timestamps fall on the same UTC day. Records in timestamp order give one
// run per day; a record stamped earlier than its predecessor's day (producer
// clocks differ) starts a run of its own rather than joining an earlier run,
// which would leave a gap below that run's last offset.
func dayRuns(msgs []kafka.Message) [][]kafka.Message {
	var runs [][]kafka.Message
	start := 0
	for i := 1; i <= len(msgs); i++ {
		if i == len(msgs) || pin.DT(msgs[i].Time) != pin.DT(msgs[start].Time) {
			runs = append(runs, msgs[start:i])
			start = i
		}
	}
	return runs
}

// startOffset returns where partition resumes: committed, or the
// checkpoint's Next when that is larger. It reads one checkpoint; a pending
// batch costs one listing of each of its objects' keys; only a partition
// without a checkpoint, or one a landing that writes none has moved past it
// (its committed offset is ahead), lists the raw zone (see LastLanded) and
// is checkpointed from it. With nothing of the partition stored it returns
// committed unchanged (kafka.FirstOffset when the group has none, so the
// reader starts at the oldest record Kafka still keeps).
func (l *lander) startOffset(ctx context.Context, partition int, committed int64) (int64, error) {
	cp, err := ReadCheckpoint(ctx, l.lake, l.topic, partition)
	write := true
	switch {
	case errors.Is(err, ErrNoCheckpoint) || err == nil && committed > cp.Next:
		cp, err = l.fromListing(ctx, partition, committed)
	case err == nil && len(cp.Pending) > 0:
		cp, err = settle(ctx, l.lake, cp)
	default:
		write = false
	}
	if err == nil && write {
		err = writeCheckpoint(ctx, l.lake, cp)
	}
	if err != nil {
		return 0, fmt.Errorf("landing: resume partition %d: %w", partition, err)
	}
	l.advance(cp)
	if cp.Next <= committed || cp.Next == 0 {
		return committed, nil
	}
	// Only a stop between an upload and its commit, or a new group over an
	// old raw zone, gets here: say so, once per partition.
	l.log.Info("resuming after the partition's checkpoint, past the committed offset",
		slog.Int("partition", partition), slog.Int64("committed", committed), slog.Int64("from", cp.Next))
	return cp.Next, nil
}

// Resume finds, for each partition in committed (the group's committed
// offsets, kafka.FirstOffset for none), where a landing of topic in s
// resumes it, exactly as on assignment and at the same moment for all:
// from the checkpoints, settling pending objects and writing the
// checkpoints it settled or made from a listing. It is the landing's whole
// resume cost, for measuring it (bench/landing). Returns the first error.
func Resume(ctx context.Context, s *lake.Store, topic string, committed map[int]int64, log *slog.Logger) (map[int]int64, error) {
	if log == nil {
		log = slog.Default()
	}
	l := &lander{lake: s, topic: topic, log: log, m: newLandingMetrics(nil), progress: map[int]Checkpoint{}}
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	out := make(map[int]int64, len(committed))
	for p, c := range committed {
		g.Go(func() error {
			from, err := l.startOffset(gctx, p, c)
			mu.Lock()
			out[p] = from
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// fromListing makes partition's checkpoint from a listing of the whole raw
// zone, shared with the partitions that need one at the same moment: Next
// is past the larger of the partition's last landed offset and committed,
// Newest the latest timestamp in its last object.
func (l *lander) fromListing(ctx context.Context, partition int, committed int64) (Checkpoint, error) {
	v, err, _ := l.listing.Do("raw", func() (any, error) {
		last, err := LastLanded(ctx, l.lake)
		if err == nil {
			l.log.Info("no checkpoint: listed the raw zone to resume", slog.Int("partitions", len(last)))
		}
		return last, err
	})
	if err != nil {
		return Checkpoint{}, err
	}
	cp := Checkpoint{Topic: l.topic, Partition: partition, Next: max(committed, 0)}
	last, ok := v.(map[int]RawObject)[partition]
	if !ok || last.Last < cp.Next {
		return cp, nil
	}
	recs, err := LoadRaw(ctx, l.lake, last.Key)
	if err != nil {
		return Checkpoint{}, err
	}
	cp.Next = last.Last + 1
	for _, r := range recs {
		if r.Timestamp.After(cp.Newest) {
			cp.Newest = r.Timestamp
		}
	}
	return cp, nil
}

// LastLanded lists the whole raw zone and returns each partition's object
// with the largest last offset: what resuming cost before checkpoints, and
// still costs once for a raw zone without them. Partitions with no object
// are absent.
func LastLanded(ctx context.Context, s *lake.Store) (map[int]RawObject, error) {
	objs, err := RawObjects(ctx, s, "")
	if err != nil {
		return nil, err
	}
	last := make(map[int]RawObject)
	for _, o := range objs {
		if prev, ok := last[o.Partition]; !ok || o.Last > prev.Last {
			last[o.Partition] = o
		}
	}
	return last, nil
}

func (l *lander) onLag(partition int, lag, _ int64) {
	l.m.lag.WithLabelValues(strconv.Itoa(partition)).Set(float64(lag))
}
