package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
)

// lagPollInterval is how often the lag is read from Kafka, on top of the
// consumer's report after each batch.
const lagPollInterval = time.Second

// lagTracker keeps each partition's lag: the records of the topic the lane
// has not committed. The consumer reports a partition's lag after each
// batch it stored; a poller reads the group's committed offsets and the
// topic's end offsets every second, so the lag also grows while the lane is
// paused (Postgres down), when no batch completes.
type lagTracker struct {
	mu    sync.Mutex
	parts map[int]int64
	known bool // the poller succeeded at least once
	gauge prometheus.Gauge
}

func newLagTracker(g prometheus.Gauge) *lagTracker {
	return &lagTracker{parts: map[int]int64{}, gauge: g}
}

// set records partition's lag (consume.Options.OnLag).
func (t *lagTracker) set(partition int, lag int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parts[partition] = lag
	t.gauge.Set(float64(t.sumLocked()))
}

func (t *lagTracker) sumLocked() int64 {
	var sum int64
	for _, l := range t.parts {
		sum += l
	}
	return sum
}

// total returns the summed lag, and whether it has been read from Kafka at
// least once (before that it is only what batches reported).
func (t *lagTracker) total() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sumLocked(), t.known
}

// poll reads the lag every lagPollInterval until ctx ends. A failed read
// is tried again at the next tick; the last values stay.
func (t *lagTracker) poll(ctx context.Context, brokers []string, topic, group string) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	tick := time.NewTicker(lagPollInterval)
	defer tick.Stop()
	for {
		if lags, err := readLag(ctx, client, brokers, topic, group); err == nil {
			t.mu.Lock()
			for p, l := range lags {
				t.parts[p] = l
			}
			t.known = true
			t.gauge.Set(float64(t.sumLocked()))
			t.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// readLag returns each partition's end offset minus the group's committed
// offset (minus the first offset when the group has committed none).
func readLag(ctx context.Context, client *kafka.Client, brokers []string, topic, group string) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	parts, err := broker.TopicPartitions(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	var reqs []kafka.OffsetRequest
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets: %w", err)
	}
	if committed.Error != nil {
		return nil, fmt.Errorf("fetch committed offsets: %w", committed.Error)
	}
	done := map[int]int64{}
	for _, c := range committed.Topics[topic] {
		if c.Error != nil {
			return nil, fmt.Errorf("committed offset of partition %d: %w", c.Partition, c.Error)
		}
		done[c.Partition] = c.CommittedOffset
	}
	lags := map[int]int64{}
	for _, o := range offs.Topics[topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("offsets of partition %d: %w", o.Partition, o.Error)
		}
		from, ok := done[o.Partition]
		if !ok || from < 0 {
			from = o.FirstOffset
		}
		lags[o.Partition] = max(o.LastOffset-from, 0)
	}
	return lags, nil
}
