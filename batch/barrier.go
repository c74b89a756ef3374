package batch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/consume"
	"pinpipe/lake"
	"pinpipe/pin"
)

// Barrier makes an on-demand run include everything the topic held when
// the run was asked for: Wait reads the topic's end offsets, then waits
// until the raw zone holds every partition up to its end. The landing's
// progress is read from the raw objects' names (layout.RawKey), so the
// landing may run in this process or in another instance of the cluster.
type Barrier struct {
	Brokers []string
	Topic   string
	Lake    *lake.Store
	// Flush, when set, is the in-process landing's, asked to store its
	// open batches now rather than at PINPIPE_LANDING_INTERVAL; nil when
	// this process does not land (another instance's landing is waited for).
	Flush *consume.Flush
	// Timeout bounds the wait; past it Wait fails (see Wait).
	Timeout time.Duration
	// Poll is how often the raw zone is listed; 0: 200 ms.
	Poll time.Duration
}

// Wait returns nil once the raw zone holds, for every partition of the
// topic, every record below the partition's end offset as read when Wait
// began (a partition whose records Kafka no longer keeps needs nothing).
// Past Timeout it returns an EUNAVAILABLE error naming the partitions
// behind and by how many records; it returns ctx's error when ctx ends,
// and an EUNAVAILABLE error when Kafka cannot be asked for the offsets.
func (b *Barrier) Wait(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, b.Timeout)
	defer cancel()
	ends, err := b.endOffsets(ctx)
	if err != nil {
		return pin.Errorf(pin.EUNAVAILABLE, "Could not read the end offsets of topic %s to wait for the landing: %v. Check GET /readyz, then start the run again.", b.Topic, err)
	}
	poll := b.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var behind map[int][2]int64
	for {
		if b.Flush != nil {
			b.Flush.Now()
		}
		behind, err = b.behind(ctx, ends)
		if err == nil && len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			return b.timedOut(behind, err)
		case <-tick.C:
		}
	}
}

// timedOut describes a barrier that ran out of time.
func (b *Barrier) timedOut(behind map[int][2]int64, err error) error {
	if len(behind) == 0 && err != nil {
		return pin.Errorf(pin.EUNAVAILABLE, "The raw zone could not be listed within %s to see what the landing stored: %v. Check GET /readyz, then start the run again.", b.Timeout, err)
	}
	parts := slices.Sorted(func(yield func(int) bool) {
		for p := range behind {
			if !yield(p) {
				return
			}
		}
	})
	var s []string
	for _, p := range parts {
		o := behind[p]
		s = append(s, fmt.Sprintf("partition %d stored up to offset %d of %d (%d records behind)", p, o[0], o[1], o[1]-o[0]))
	}
	return pin.Errorf(pin.EUNAVAILABLE, "The landing did not store everything accepted before the run within %s: %s. Check that an instance with the landing role runs (PINPIPE_ROLES) and that S3 answers (GET /readyz), then start the run again.",
		b.Timeout, strings.Join(s, "; "))
}

// endOffsets returns each partition's end offset, leaving out partitions
// whose records Kafka no longer keeps (first offset = end offset).
func (b *Barrier) endOffsets(ctx context.Context) (map[int]int64, error) {
	parts, err := broker.TopicPartitions(ctx, b.Brokers, b.Topic)
	if err != nil {
		return nil, err
	}
	var reqs []kafka.OffsetRequest
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	client := &kafka.Client{Addr: kafka.TCP(b.Brokers...), Timeout: 10 * time.Second}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{b.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	ends := map[int]int64{}
	for _, o := range offs.Topics[b.Topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("offsets of partition %d: %w", o.Partition, o.Error)
		}
		if o.LastOffset > max(o.FirstOffset, 0) {
			ends[o.Partition] = o.LastOffset
		}
	}
	return ends, nil
}

// behind lists the raw zone and returns the partitions not stored up to
// their end, each with the offset stored up to (one past its last landed
// record) and its end.
func (b *Barrier) behind(ctx context.Context, ends map[int]int64) (map[int][2]int64, error) {
	objs, err := RawObjects(ctx, b.Lake, "")
	if err != nil {
		return nil, err
	}
	stored := map[int]int64{}
	for _, o := range objs {
		stored[o.Partition] = max(stored[o.Partition], o.Last+1)
	}
	out := map[int][2]int64{}
	for p, end := range ends {
		if stored[p] < end {
			out[p] = [2]int64{stored[p], end}
		}
	}
	return out, nil
}
