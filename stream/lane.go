// Package stream is the real-time half of the lambda architecture: it reads
// the topic in micro-batches, cleans them and upserts them with live
// aggregates into Postgres within a second of their acceptance.
package stream

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"pinpipe/consume"
	"pinpipe/internal/retry"
	"pinpipe/pin"
)

// maxCategoryBytes bounds a category: it keys the per-category counts, and
// a Postgres index entry must fit in a page. A longer one is rejected
// rather than left to fail the micro-batch forever.
const maxCategoryBytes = 1000

// Options configure a Lane.
type Options struct {
	Brokers    []string
	Topic      string
	Group      string        // the lane's consumer group
	MaxRecords int           // a micro-batch closes at this many records …
	MaxWait    time.Duration // … or this long after its first …
	Linger     time.Duration // … or once no record came for this long (0: never)
	Sink       Sink
	Registry   prometheus.Registerer
	Log        *slog.Logger
}

// Lane consumes the topic in micro-batches, cleans them and writes them to
// its Sink; it also answers the real-time view (server.StreamService).
type Lane struct {
	o     Options
	m     metrics
	fresh *ring
	lag   *consume.Lag
}

type metrics struct {
	freshness prometheus.Histogram
	batchSize prometheus.Histogram
	tx        prometheus.Histogram
	pins      prometheus.Counter
	rejected  prometheus.Counter
}

// New returns a Lane, registering its metrics with o.Registry.
func New(o Options) *Lane {
	f := promauto.With(o.Registry)
	l := &Lane{
		o:     o,
		fresh: newRing(freshnessSamples),
		m: metrics{
			freshness: f.NewHistogram(prometheus.HistogramOpts{
				Name:    "pinpipe_stream_freshness_seconds",
				Help:    "Time from a pin's acceptance (its Kafka record timestamp) to the commit of its row in Postgres.",
				Buckets: []float64{.01, .025, .05, .075, .1, .15, .2, .25, .3, .4, .5, .75, 1, 1.5, 2, 3, 5, 10, 30, 60},
			}),
			batchSize: f.NewHistogram(prometheus.HistogramOpts{
				Name:    "pinpipe_stream_batch_size",
				Help:    "Records per stored micro-batch.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 14),
			}),
			tx: f.NewHistogram(prometheus.HistogramOpts{
				Name:    "pinpipe_stream_tx_seconds",
				Help:    "Duration of a micro-batch's write transaction (successful ones).",
				Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
			}),
			pins: f.NewCounter(prometheus.CounterOpts{
				Name: "pinpipe_stream_pins_total",
				Help: "Pin records written to Postgres (re-deliveries included; a pin has one row).",
			}),
			rejected: f.NewCounter(prometheus.CounterOpts{
				Name: "pinpipe_stream_rejected_total",
				Help: "Records of the topic that are not valid pins, written to pinterest.rejected.",
			}),
		},
	}
	// By partition, as the landing's lag: a chart can then name the
	// partition that falls behind. Every stream instance reports every
	// partition (it reads the group's commits), so across instances take
	// the max by partition, not the sum.
	gauge := f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pinpipe_stream_lag_messages",
		Help: "Records of the partition not yet in Postgres. Each stream instance reports every partition: aggregate with max by (partition).",
	}, []string{"partition"})
	l.lag = consume.NewLag(func(partition int, lag, _ int64) {
		gauge.WithLabelValues(strconv.Itoa(partition)).Set(float64(lag))
	})
	return l
}

// Run consumes until ctx ends, then returns nil once the in-flight batches
// were stored or abandoned. It returns an error only when the options are
// unusable. A failing Sink pauses the lane (retried with backoff); it never
// skips a record.
func (l *Lane) Run(ctx context.Context) error {
	return consume.Run(ctx, consume.Options{
		Brokers:    l.o.Brokers,
		Topic:      l.o.Topic,
		Group:      l.o.Group,
		MaxRecords: l.o.MaxRecords,
		MaxWait:    l.o.MaxWait,
		Linger:     l.o.Linger,
		Lag:        l.lag,
		Store:      retry.Forever,
		Log:        l.o.Log,
	}, l)
}

// Handle implements consume.Handler: it cleans the batch, keeps the latest
// version of each unique_id (pin.Newer), and writes the pins and the rejected records in
// one transaction. Returns the Sink's error; the batch is then retried whole.
func (l *Lane) Handle(ctx context.Context, b consume.Batch) error {
	pins := make([]pin.Cleaned, 0, len(b.Messages))
	var rejected []Rejected
	at := make(map[string]int, len(b.Messages))         // unique_id → index in pins
	acceptedAt := make([]time.Time, 0, len(b.Messages)) // Kafka timestamps of the pins
	for _, m := range b.Messages {
		lin := pin.Lineage{IngestedAt: m.Time, Partition: int32(m.Partition), Offset: m.Offset}
		c, err := pin.CleanRaw(m.Value, lin)
		if err == nil && len(c.Category) > maxCategoryBytes {
			err = pin.Errorf(pin.EINVALID, "category is %d bytes long; the stream lane keeps categories up to %d bytes", len(c.Category), maxCategoryBytes)
		}
		if err != nil {
			rejected = append(rejected, Rejected{
				Topic: b.Topic, Partition: lin.Partition, Offset: lin.Offset, IngestedAt: m.Time.UTC(),
				Reason: pin.ErrorMessage(err), Raw: m.Value,
			})
			continue
		}
		acceptedAt = append(acceptedAt, m.Time)
		if i, ok := at[c.UniqueID]; ok {
			if pin.Newer(c.Lineage(), pins[i].Lineage()) {
				pins[i] = c
			}
			continue
		}
		at[c.UniqueID] = len(pins)
		pins = append(pins, c)
	}

	start := time.Now()
	if err := l.o.Sink.Write(ctx, pins, rejected); err != nil {
		return fmt.Errorf("stream: partition %d offsets %d-%d: %w", b.Partition, b.Messages[0].Offset, b.Last(), err)
	}
	committed := time.Now()

	l.m.tx.Observe(committed.Sub(start).Seconds())
	l.m.batchSize.Observe(float64(len(b.Messages)))
	l.m.pins.Add(float64(len(acceptedAt)))
	l.m.rejected.Add(float64(len(rejected)))
	fresh := make([]float64, len(acceptedAt))
	for i, t := range acceptedAt {
		fresh[i] = committed.Sub(t).Seconds()
		l.m.freshness.Observe(fresh[i])
	}
	l.fresh.add(fresh)
	if len(rejected) > 0 {
		l.o.Log.Warn("stream: records that are not valid pins went to pinterest.rejected",
			slog.Int("partition", b.Partition), slog.Int("records", len(rejected)), slog.String("first_reason", rejected[0].Reason))
	}
	return nil
}

// Recent returns the n newest pins, newest first (server.StreamService).
func (l *Lane) Recent(ctx context.Context, n int) ([]pin.Cleaned, error) {
	return l.o.Sink.Recent(ctx, n)
}

// Stats returns the Sink's counts with the lane's lag and the freshness of
// the last freshnessSamples pins (zeros before the first)
// (server.StreamService).
func (l *Lane) Stats(ctx context.Context) (pin.Stats, error) {
	st, err := l.o.Sink.Stats(ctx)
	if err != nil {
		return pin.Stats{}, err
	}
	st.Lag = l.lag.Total()
	st.Freshness = l.fresh.percentiles()
	return st, nil
}
