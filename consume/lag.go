package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
)

// lagPollInterval is how often the topic's end offsets and the group's
// committed offsets are read from Kafka.
const lagPollInterval = 500 * time.Millisecond

// Lag keeps, per partition, the end of the topic and the offset up to which
// the lane stored it; the lag is their difference. The end comes from a
// poller (every lagPollInterval) and from each stored batch's high water
// mark; the stored offset from each stored batch and from the group's
// committed offsets (another pinpipe of the group may own a partition). Both
// only move forward, so a stale report cannot hide a backlog, and the lag
// grows while a lane is paused (its store down), when no batch completes.
// A batch's own high water mark alone would not do: it was read when the
// batch was fetched ahead, and reads 0 while records wait.
type Lag struct {
	mu     sync.Mutex
	parts  map[int]*partitionLag
	report func(partition int, lag, total int64)
}

type partitionLag struct{ end, stored int64 }

// NewLag returns a Lag that calls report with a partition's lag and the
// total over partitions whenever the partition is observed (report may be
// nil; it runs under Lag's lock, so it must not call Lag's methods).
func NewLag(report func(partition int, lag, total int64)) *Lag {
	if report == nil {
		report = func(int, int64, int64) {}
	}
	return &Lag{parts: map[int]*partitionLag{}, report: report}
}

// Observe moves partition's end and stored offset forward (a value smaller
// than the known one is ignored).
func (t *Lag) Observe(partition int, end, stored int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observeLocked(partition, end, stored)
}

func (t *Lag) observeLocked(partition int, end, stored int64) {
	p := t.parts[partition]
	if p == nil {
		p = &partitionLag{}
		t.parts[partition] = p
	}
	p.end, p.stored = max(p.end, end), max(p.stored, stored)
	t.report(partition, max(p.end-p.stored, 0), t.sumLocked())
}

func (t *Lag) sumLocked() int64 {
	var sum int64
	for _, p := range t.parts {
		sum += max(p.end-p.stored, 0)
	}
	return sum
}

// Total returns the lag summed over partitions: 0 until Kafka's offsets
// were read or a batch was stored.
func (t *Lag) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sumLocked()
}

// poll reads the offsets every lagPollInterval until ctx ends. A failed
// read is tried again at the next tick; the known values stay.
func (t *Lag) poll(ctx context.Context, brokers []string, topic, group string) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	tick := time.NewTicker(lagPollInterval)
	defer tick.Stop()
	for {
		if offs, err := readOffsets(ctx, client, brokers, topic, group); err == nil {
			t.mu.Lock()
			for p, o := range offs {
				t.observeLocked(p, o.end, o.stored)
			}
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
