package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
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
// one Parquet object per UTC day it touches, named by layout.RawKey, and its offsets
// are committed only once the objects are stored. On assignment a partition
// resumes after the last offset already in the raw zone when that is past the
// committed one, so no record lands twice. A failing upload is retried until
// ctx ends, never skipped. Returns nil on shutdown, and an error only when the
// options are unusable. Registering its metrics twice on one Registry panics.
func RunLanding(ctx context.Context, o LandingOptions) error {
	return runLanding(ctx, o, nil)
}

// runLanding is RunLanding with a hook around the handler, through which tests
// crash the landing between an upload and its commit.
func runLanding(ctx context.Context, o LandingOptions, wrap func(consume.Handler) consume.Handler) error {
	if o.Lake == nil {
		return errors.New("landing: no object store (LandingOptions.Lake is nil)")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	l := &lander{lake: o.Lake, log: o.Log.With(slog.String("lane", "landing")), m: newLandingMetrics(o.Registry)}
	var h consume.Handler = l
	if wrap != nil {
		h = wrap(h)
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
	lag                     *prometheus.GaugeVec
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
		upload: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pinpipe_batch_landing_upload_seconds",
			Help:    "Time to store one raw-zone object.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
}

// lander stores batches in the raw zone.
type lander struct {
	lake *lake.Store
	log  *slog.Logger
	m    landingMetrics

	// listing shares one listing of the raw zone between the partitions
	// assigned together: their StartOffset calls start at the same moment,
	// so they overlap and all join the first.
	listing singleflight.Group
}

// Handle stores b as one object per run of consecutive records on the same
// UTC day, in offset order, so the raw zone's last offset of a partition is
// always a prefix boundary even when a crash stops the batch half-way. A
// retried batch overwrites the objects it already stored with the same bytes.
func (l *lander) Handle(ctx context.Context, b consume.Batch) error {
	for _, run := range dayRuns(b.Messages) {
		if err := l.store(ctx, b.Topic, b.Partition, run); err != nil {
			return err
		}
	}
	return nil
}

// store writes msgs, all of one partition and one day, as one object.
func (l *lander) store(ctx context.Context, topic string, partition int, msgs []kafka.Message) error {
	first, last := msgs[0], msgs[len(msgs)-1]
	key := layout.RawKey(pin.DT(first.Time), partition, first.Offset, last.Offset)
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

// startOffset returns where partition resumes: committed, or the offset after
// the partition's last record in the raw zone when that is larger. With
// nothing of the partition in the raw zone it returns committed unchanged
// (kafka.FirstOffset when the group has none, so the reader starts at the
// oldest record Kafka still keeps).
func (l *lander) startOffset(ctx context.Context, partition int, committed int64) (int64, error) {
	v, err, _ := l.listing.Do("raw", func() (any, error) { return l.lastLanded(ctx) })
	if err != nil {
		return 0, fmt.Errorf("landing: resume partition %d: %w", partition, err)
	}
	last, ok := v.(map[int]int64)[partition]
	if !ok || last < committed {
		return committed, nil
	}
	// Only a stop between an upload and its commit, or a new group over an
	// old raw zone, gets here: say so, once per partition.
	l.log.Info("resuming after the raw zone's last record of the partition, past the committed offset",
		slog.Int("partition", partition), slog.Int64("committed", committed), slog.Int64("from", last+1))
	return last + 1, nil
}

// lastLanded lists the whole raw zone once and returns each partition's
// largest landed offset. Partitions with no object are absent.
func (l *lander) lastLanded(ctx context.Context) (map[int]int64, error) {
	objs, err := RawObjects(ctx, l.lake, "")
	if err != nil {
		return nil, err
	}
	last := make(map[int]int64)
	for _, o := range objs {
		if prev, ok := last[o.Partition]; !ok || o.Last > prev {
			last[o.Partition] = o.Last
		}
	}
	l.log.Debug("listed the raw zone to resume", slog.Int("objects", len(objs)), slog.Int("partitions", len(last)))
	return last, nil
}

func (l *lander) onLag(partition int, lag, _ int64) {
	l.m.lag.WithLabelValues(strconv.Itoa(partition)).Set(float64(lag))
}
