// Package consume is the Kafka consumer loop both lanes share: a consumer
// group whose partitions are read in batches closed by size or time, each
// batch handed to the lane and its offsets committed only after the lane
// stored it. A failing store is retried with backoff, never skipped.
package consume

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/internal/retry"
)

// Batch is consecutive records of one partition.
type Batch struct {
	Topic     string
	Partition int
	Messages  []kafka.Message
	// HighWaterMark is the partition's end offset when the last message was
	// fetched; HighWaterMark - (last offset + 1) is the lag behind it.
	HighWaterMark int64
}

// Last returns the offset of the batch's last record.
func (b Batch) Last() int64 { return b.Messages[len(b.Messages)-1].Offset }

// Handler stores batches. Handle is called from one goroutine per partition
// and must return nil only once the batch is durably stored; the loop then
// commits its offsets. An error is retried with the Store policy; when the
// policy gives up, nothing is committed and the partition is read again
// from its committed offset, so the batch comes back. Handle's ctx outlives
// shutdown and rebalances by a grace period (10 s), so a batch being stored
// then is still stored and committed; after it ctx ends, the batch is
// abandoned uncommitted, and the partition's next owner reads it again.
type Handler interface {
	Handle(ctx context.Context, b Batch) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, b Batch) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, b Batch) error { return f(ctx, b) }

// Options configure a consumer.
type Options struct {
	Brokers []string
	Topic   string
	Group   string

	MaxRecords int           // a batch closes at this many records …
	MaxWait    time.Duration // … or this long after its first record …
	// … or, when Linger is positive, once no record came for Linger: a
	// batch then holds what arrived together, not MaxWait's worth, and
	// grows by itself while the previous one is being stored, since the
	// reader keeps fetching meanwhile.
	Linger time.Duration

	// Flush, when set, closes open batches early: a batch being collected
	// when Flush.Now is called closes with what it holds.
	Flush *Flush

	// StartOffset, when set, decides where a newly assigned partition is
	// read from, given the group's committed offset (kafka.FirstOffset when
	// there is none). The landing uses it to resume from the raw zone.
	StartOffset func(ctx context.Context, partition int, committed int64) (int64, error)

	// Lag, when set, tracks each partition's lag: Run feeds it every stored
	// batch and polls the topic's end and the group's committed offsets.
	Lag *Lag

	Store retry.Policy // retry policy for Handle; zero value: retry.Forever
	Log   *slog.Logger
}

// Run consumes until ctx ends, then returns nil once every in-flight batch
// was handled or abandoned and the group was left. It returns an error only
// when the options are unusable.
func Run(ctx context.Context, o Options, h Handler) error {
	if o.MaxRecords <= 0 || o.MaxWait <= 0 {
		return fmt.Errorf("consume %s: MaxRecords and MaxWait must be positive", o.Group)
	}
	log := o.Log.With(slog.String("group", o.Group))
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                o.Group,
		Brokers:           o.Brokers,
		Topics:            []string{o.Topic},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  time.Second,
		// Offsets stay committed for a week even while pinpipe is stopped.
		RetentionTime:         7 * 24 * time.Hour,
		WatchPartitionChanges: true,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka group", slog.String("msg", fmt.Sprintf(msg, args...)))
		}),
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.Group, err)
	}
	defer group.Close()
	if o.Lag != nil {
		done := make(chan struct{})
		go func() { defer close(done); o.Lag.poll(ctx, o.Brokers, o.Topic, o.Group) }()
		defer func() { <-done }()
	}

	var joinErr error
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// The group retries joining on its own; say so once per kind of
			// failure rather than on every attempt.
			if joinErr == nil || joinErr.Error() != err.Error() {
				log.Warn("cannot join the consumer group yet; retrying", slog.Any("err", err))
			}
			joinErr = err
			continue
		}
		joinErr = nil
		assigned := gen.Assignments[o.Topic]
		log.Info("partitions assigned", slog.Int("generation", int(gen.ID)), slog.Int("partitions", len(assigned)))
		for _, a := range assigned {
			gen.Start(func(gctx context.Context) {
				// gctx ends at a rebalance; ctx at shutdown.
				pctx, cancel := mergeCancel(gctx, ctx)
				defer cancel()
				if err := consumePartition(pctx, o, log, gen, a.ID, a.Offset, h); err != nil && pctx.Err() == nil {
					log.Error("partition consumer stopped", slog.Int("partition", a.ID), slog.Any("err", err))
				}
			})
		}
	}
}

func consumePartition(ctx context.Context, o Options, log *slog.Logger, gen *kafka.Generation, partition int, committed int64, h Handler) error {
	start := committed
	if o.StartOffset != nil {
		err := retry.Do(ctx, o.Store, log, fmt.Sprintf("find start offset of partition %d", partition), func() error {
			var err error
			start, err = o.StartOffset(ctx, partition, committed)
			return err
		})
		if err != nil {
			return err
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        o.Brokers,
		Topic:          o.Topic,
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       32 << 20,
		MaxWait:        50 * time.Millisecond,
		QueueCapacity:  max(o.MaxRecords, 100),
		ReadBackoffMin: 20 * time.Millisecond,
		ReadBackoffMax: time.Second,
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("partition %d: set offset %d: %w", partition, start, err)
	}
	log.Debug("reading partition", slog.Int("partition", partition), slog.Int64("from", start), slog.Int64("committed", committed))

	for {
		b, err := fetchBatch(ctx, r, o, partition)
		if err != nil {
			return err
		}
		// A batch being fetched or stored when shutdown or a rebalance
		// begins is still stored and committed, within a grace period, so
		// a stop does not make work for the next start.
		sctx, cancel := withGrace(ctx, grace)
		err = retry.Do(sctx, o.Store, log, fmt.Sprintf("store partition %d offsets %d-%d", partition, b.Messages[0].Offset, b.Last()), func() error {
			return h.Handle(sctx, b)
		})
		cancel()
		if err != nil {
			return err
		}
		next := b.Last() + 1
		// A failed commit is harmless: the batch is replayed after the next
		// rebalance and every sink keeps one row per unique_id.
		if err := gen.CommitOffsets(map[string]map[int]int64{o.Topic: {partition: next}}); err != nil {
			log.Warn("offset commit failed; the batch will be replayed", slog.Int("partition", partition), slog.Int64("offset", next), slog.Any("err", err))
		}
		if o.Lag != nil {
			o.Lag.Observe(partition, b.HighWaterMark, next)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// fetchBatch blocks for a first record, then collects more until
// MaxRecords, MaxWait after the first, or (Linger > 0) a pause of Linger.
// Returns ctx's error when ctx ends before the first record; records
// already buffered by the reader are not lost, since a timed-out fetch
// leaves them queued.
func fetchBatch(ctx context.Context, r *kafka.Reader, o Options, partition int) (Batch, error) {
	b := Batch{Topic: o.Topic, Partition: partition}
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return b, err
	}
	// A small start, grown by append: a kafka.Message is about 150 bytes,
	// and room for thousands on every batch was most of the lane's
	// garbage once micro-batches close on a pause (Linger) with a few
	// records each.
	b.Messages = append(make([]kafka.Message, 0, min(o.MaxRecords, 64)), first)
	b.HighWaterMark = first.HighWaterMark
	wctx, cancel := context.WithTimeout(ctx, o.MaxWait)
	defer cancel()
	if o.Flush != nil {
		stop := context.AfterFunc(o.Flush.ctx(), cancel)
		defer stop()
	}
	var pause *time.Timer
	if o.Linger > 0 {
		// One timer, pushed back at every record: a record racing the
		// timer stays queued in the reader for the next batch.
		var pauseCancel context.CancelFunc
		wctx, pauseCancel = context.WithCancel(wctx)
		defer pauseCancel()
		pause = time.AfterFunc(o.Linger, pauseCancel)
		defer pause.Stop()
	}
	for len(b.Messages) < o.MaxRecords {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			if wctx.Err() != nil {
				break
			}
			return b, err
		}
		b.Messages = append(b.Messages, m)
		b.HighWaterMark = m.HighWaterMark
		if pause != nil {
			pause.Reset(o.Linger)
		}
	}
	return b, nil
}

// Flush asks the batches being collected to close now rather than at
// MaxWait. The zero value is ready to use; it is safe for concurrent use.
type Flush struct {
	mu     sync.Mutex
	c      context.Context
	cancel context.CancelFunc
}

// Now closes every batch collected at this moment with the records it
// holds; batches begun later wait for MaxWait as usual. A partition with no
// batch open is not affected: its next record starts a new batch.
func (f *Flush) Now() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
	f.c, f.cancel = nil, nil
}

// ctx returns a context that ends at the next call to Now.
func (f *Flush) ctx() context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.c == nil {
		f.c, f.cancel = context.WithCancel(context.Background())
	}
	return f.c
}

// grace is how long a batch may still take to be stored once its
// partition's context ended.
const grace = 10 * time.Second

// withGrace returns a context that ends d after ctx ends (or when the
// returned cancel is called), keeping ctx's values.
func withGrace(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d, cancel)
		context.AfterFunc(sctx, func() { t.Stop() })
	})
	return sctx, func() { stop(); cancel() }
}

// mergeCancel returns a context that ends when either a or b ends.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stopA := context.AfterFunc(a, cancel)
	stopB := context.AfterFunc(b, cancel)
	return ctx, func() { stopA(); stopB(); cancel() }
}
