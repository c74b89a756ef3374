package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
)

// lagPollInterval is how often the topic's end offsets and the group's
// committed offsets are read from Kafka.
const lagPollInterval = 500 * time.Millisecond

// lagTracker keeps, per partition, the end of the topic and the offset up
// to which the lane stored it; the lag is their difference, summed. The end
// comes from a poller (every lagPollInterval) and from each batch's high
// water mark; the stored offset from each stored batch and from the group's
// committed offsets (another pinpipe of the group may own a partition). Both
// only move forward, so a stale report cannot hide a backlog, and the lag
// grows while the lane is paused (Postgres down), when no batch completes.
//
// consume's OnLag is not used: it is computed from the high water mark of
// the batch's last record, which was fetched ahead and is stale by then, so
// it reads 0 while records wait.
type lagTracker struct {
	mu    sync.Mutex
	parts map[int]*partitionLag
	gauge prometheus.Gauge
}

type partitionLag struct{ end, stored int64 }

func newLagTracker(g prometheus.Gauge) *lagTracker {
	return &lagTracker{parts: map[int]*partitionLag{}, gauge: g}
}

// observe moves partition's end and stored offset forward (a value smaller
// than the known one is ignored) and updates the gauge.
func (t *lagTracker) observe(partition int, end, stored int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observeLocked(partition, end, stored)
	t.gauge.Set(float64(t.sumLocked()))
}

func (t *lagTracker) observeLocked(partition int, end, stored int64) {
	p := t.parts[partition]
	if p == nil {
		p = &partitionLag{}
		t.parts[partition] = p
	}
	p.end, p.stored = max(p.end, end), max(p.stored, stored)
}

func (t *lagTracker) sumLocked() int64 {
	var sum int64
	for _, p := range t.parts {
		sum += max(p.end-p.stored, 0)
	}
	return sum
}

// total returns the summed lag: 0 until Kafka's offsets were read or a
// batch was stored.
func (t *lagTracker) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sumLocked()
}

// poll reads the offsets every lagPollInterval until ctx ends. A failed
// read is tried again at the next tick; the known values stay.
func (t *lagTracker) poll(ctx context.Context, brokers []string, topic, group string) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	tick := time.NewTicker(lagPollInterval)
	defer tick.Stop()
	for {
		if offs, err := readOffsets(ctx, client, brokers, topic, group); err == nil {
			t.mu.Lock()
			for p, o := range offs {
				t.observeLocked(p, o.end, o.stored)
			}
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

// readOffsets returns each partition's end offset and the group's committed
// offset (the partition's first offset when the group committed none).
func readOffsets(ctx context.Context, client *kafka.Client, brokers []string, topic, group string) (map[int]partitionLag, error) {
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
	// A group that never committed may be unknown to the broker.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return nil, fmt.Errorf("fetch committed offsets: %w", committed.Error)
	}
	done := map[int]int64{}
	for _, c := range committed.Topics[topic] {
		if c.Error != nil {
			return nil, fmt.Errorf("committed offset of partition %d: %w", c.Partition, c.Error)
		}
		done[c.Partition] = c.CommittedOffset
	}
	out := map[int]partitionLag{}
	for _, o := range offs.Topics[topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("offsets of partition %d: %w", o.Partition, o.Error)
		}
		from, ok := done[o.Partition]
		if !ok || from < 0 {
			from = max(o.FirstOffset, 0)
		}
		out[o.Partition] = partitionLag{end: o.LastOffset, stored: from}
	}
	return out, nil
}
