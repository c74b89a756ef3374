package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// PartitionOffsets is the span of a partition Kafka still keeps: First is
// the offset of its oldest record, End one past its newest (the high water
// mark). First == End when it keeps no record.
type PartitionOffsets struct {
	First, End int64
}

// Offsets reads partition offsets from each partition's leader, which is
// the only broker that answers them. kafka.Client routes a ListOffsets
// request by its transport's cached metadata; a cache that predates the
// topic or a leader change sends it to another broker, which answers Not
// Leader For Partition. Offsets keeps a transport of its own and, on such an
// answer, drops it for a fresh one and asks again. Safe for concurrent use.
type Offsets struct {
	brokers []string

	mu sync.Mutex
	tr *kafka.Transport
}

// NewOffsets returns an Offsets for the cluster at brokers; Close it when
// done.
func NewOffsets(brokers []string) *Offsets {
	return &Offsets{brokers: brokers}
}

// offsetsAttempts bounds the fresh-metadata retries of one Read.
const offsetsAttempts = 5

// Read returns every partition of topic with its first and end offsets.
// A leader that moved is followed (up to offsetsAttempts fresh reads of the
// metadata); past that, or when ctx ends, it returns an error naming the
// partition whose leader did not answer. Returns an error naming the topic
// when it does not exist.
func (o *Offsets) Read(ctx context.Context, topic string) (map[int]PartitionOffsets, error) {
	parts, err := TopicPartitions(ctx, o.brokers, topic)
	if err != nil {
		return nil, err
	}
	var reqs []kafka.OffsetRequest
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := o.read(ctx, topic, parts, reqs)
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() || attempt == offsetsAttempts {
			return out, err
		}
		// A stale route: read the metadata afresh and ask again.
		o.reset()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (o *Offsets) read(ctx context.Context, topic string, parts []int, reqs []kafka.OffsetRequest) (map[int]PartitionOffsets, error) {
	client := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 10 * time.Second, Transport: o.transport()}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %q: %w", topic, err)
	}
	out := make(map[int]PartitionOffsets, len(parts))
	for _, r := range res.Topics[topic] {
		if r.Error != nil {
			return nil, fmt.Errorf("kafka: offsets of %q partition %d: %w", topic, r.Partition, r.Error)
		}
		out[r.Partition] = PartitionOffsets{First: max(r.FirstOffset, 0), End: max(r.LastOffset, 0)}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("kafka: offsets of %q partition %d: %w", topic, p, kafka.LeaderNotAvailable)
		}
	}
	return out, nil
}

func (o *Offsets) transport() *kafka.Transport {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tr == nil {
		o.tr = &kafka.Transport{}
	}
	return o.tr
}

// reset drops the transport, and with it the cached metadata.
func (o *Offsets) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tr != nil {
		o.tr.CloseIdleConnections()
		o.tr = nil
	}
}

// Close closes the connections to the brokers.
func (o *Offsets) Close() { o.reset() }
