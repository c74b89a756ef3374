package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/broker"
	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// CompletenessOptions configure NewCompleteness.
type CompletenessOptions struct {
	Brokers []string
	Topic   string
	Lake    *lake.Store
	// Grace is how long after a day's end records stamped that day may
	// still arrive (PINPIPE_LATE_GRACE).
	Grace time.Duration
	// Offsets reads the topic's end offsets; nil: one of Brokers, closed
	// by Close.
	Offsets *broker.Offsets
	// Registry, when set, gets pinpipe_batch_complete_until_seconds,
	// computed at each scrape; Log says why a scrape had none.
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Watermark computes completeness from the landing's checkpoints and the
// topic's end offsets, both read at each call, so every instance answers
// the same whichever lands. It implements Completeness.
type Watermark struct {
	o       CompletenessOptions
	offsets *broker.Offsets
	owned   bool
}

var _ Completeness = (*Watermark)(nil)

// NewCompleteness returns the completeness of o.Topic's raw zone in o.Lake.
// Registering its metric twice on one Registry panics.
func NewCompleteness(o CompletenessOptions) *Watermark {
	w := &Watermark{o: o, offsets: o.Offsets}
	if w.offsets == nil {
		w.offsets, w.owned = broker.NewOffsets(o.Brokers), true
	}
	if w.o.Log == nil {
		w.o.Log = slog.Default()
	}
	if o.Registry != nil {
		o.Registry.MustRegister(watermarkCollector{w})
	}
	return w
}

// Close closes the connections of the offsets reader it made.
func (w *Watermark) Close() {
	if w.owned {
		w.offsets.Close()
	}
}

// partitionState is one partition's landing progress against its end.
type partitionState struct {
	partition int
	next      int64     // the checkpoint's Next, raised to the first offset Kafka keeps
	end       int64     // the end offset read now
	landed    time.Time // the checkpoint's Newest
}

func (s partitionState) caughtUp() bool { return s.next >= s.end }

// states reads every partition's checkpoint and end offset.
func (w *Watermark) states(ctx context.Context) ([]partitionState, error) {
	offs, err := w.offsets.Read(ctx, w.o.Topic)
	if err != nil {
		return nil, fmt.Errorf("completeness: %w", err)
	}
	parts := make([]int, 0, len(offs))
	for p := range offs {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	cps, err := ReadCheckpoints(ctx, w.o.Lake, w.o.Topic, parts)
	if err != nil {
		return nil, fmt.Errorf("completeness: %w", err)
	}
	out := make([]partitionState, len(parts))
	for i, p := range parts {
		cp := cps[p]
		// Records Kafka no longer keeps can never land: the landing
		// starts at the first one it keeps.
		out[i] = partitionState{partition: p, next: max(cp.Next, offs[p].First), end: offs[p].End, landed: cp.Newest}
	}
	return out, nil
}

// until returns the time up to which the raw zone is complete at now: the
// earliest, over partitions, of now for one caught up with its end offset
// and of its newest landed record's timestamp for one behind (the zero time
// for one behind with nothing landed). A topic without partitions is
// complete up to now.
func until(states []partitionState, now time.Time) time.Time {
	w := now
	for _, s := range states {
		if !s.caughtUp() && s.landed.Before(w) {
			w = s.landed
		}
	}
	return w
}

// DayComplete implements Completeness. Day is complete when its end plus
// the grace has passed (Over) and every partition either stored a record
// stamped after that point or has stored everything up to its end offset
// read now; a partition Kafka holds no record of counts as caught up.
// Behind lists, in partition order, the partitions that are neither, with
// the records between their checkpoint and their end and how far their
// newest landed record is from the point the day needs (or from now while
// that point is ahead; 0 when they landed nothing). Returns an error for a
// day that is not YYYY-MM-DD, and one naming the step when Kafka or the
// lake cannot be read.
func (w *Watermark) DayComplete(ctx context.Context, day string, now time.Time) (DayCompleteness, error) {
	start, err := time.Parse(time.DateOnly, day)
	if !layout.ValidDay(day) || err != nil {
		return DayCompleteness{}, fmt.Errorf("completeness: %q is not a day (YYYY-MM-DD)", day)
	}
	states, err := w.states(ctx)
	if err != nil {
		return DayCompleteness{}, err
	}
	need := start.Add(24*time.Hour + w.o.Grace)
	d := DayCompleteness{Day: day, Over: !now.Before(need)}
	ref := need
	if now.Before(need) {
		ref = now
	}
	for _, s := range states {
		if s.landed.After(need) || s.caughtUp() {
			continue
		}
		b := PartitionBehind{Partition: s.partition, Records: max(s.end-s.next, 0), Landed: s.landed}
		if !s.landed.IsZero() {
			b.Behind = max(ref.Sub(s.landed), 0)
		}
		d.Behind = append(d.Behind, b)
	}
	d.Complete = d.Over && len(d.Behind) == 0
	return d, nil
}

// watermarkCollector exports the watermark at each scrape.
type watermarkCollector struct{ w *Watermark }

var completeUntilDesc = prometheus.NewDesc("pinpipe_batch_complete_until_seconds",
	"Unix time up to which the raw zone holds every record (the completeness watermark): a day is complete once "+
		"this is past its end plus PINPIPE_LATE_GRACE. 0 while a partition behind has landed nothing; absent when "+
		"Kafka or the lake could not be read.", nil, nil)

func (c watermarkCollector) Describe(ch chan<- *prometheus.Desc) { ch <- completeUntilDesc }

func (c watermarkCollector) Collect(ch chan<- prometheus.Metric) {
	// A scrape must not hang on a dependency that is down.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := time.Now()
	states, err := c.w.states(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.w.o.Log.Warn("completeness watermark not exported", slog.Any("err", err))
		}
		return
	}
	v := 0.0 // a partition behind that landed nothing: complete up to no time
	if u := until(states, now); !u.IsZero() {
		v = float64(u.UnixMilli()) / 1e3
	}
	ch <- prometheus.MustNewConstMetric(completeUntilDesc, prometheus.GaugeValue, v)
}
