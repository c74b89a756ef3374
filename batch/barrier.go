package batch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"pinpipe/broker"
	"pinpipe/consume"
	"pinpipe/lake"
	"pinpipe/pin"
)

// Barrier makes an on-demand run include everything the topic held when
// the run was asked for: Wait reads the topic's end offsets from the
// partitions' leaders, then waits until every partition's landing
// checkpoint (see Checkpoint) is past its end. The checkpoints are in the
// lake, so the landing may run in this process or in another instance of
// the cluster.
type Barrier struct {
	Brokers []string
	Topic   string
	Lake    *lake.Store
	// Flush, when set, is the in-process landing's, asked to store its
	// open batches now rather than at PINPIPE_LANDING_INTERVAL; nil when
	// this process does not land (another instance's landing is waited for).
	Flush *consume.Flush
	// Timeout bounds how long the landing may store nothing more of what
	// the run waits for: past it with no partition behind advancing, Wait
	// fails (see Wait). A landing that keeps advancing is waited for.
	Timeout time.Duration
	// Max bounds the whole wait however the landing advances; 0: ten
	// times Timeout.
	Max time.Duration
	// Poll is how often the checkpoints are read; 0: 200 ms.
	Poll time.Duration
	// Offsets reads the end offsets; nil: a broker.Offsets of Brokers for
	// each Wait.
	Offsets *broker.Offsets
}

// Wait returns nil once the raw zone holds, for every partition of the
// topic, every record below the partition's end offset as read when Wait
// began (a partition whose records Kafka no longer keeps needs nothing).
// When the checkpoints of the partitions behind did not advance for
// Timeout, or past Max in all, it returns an EUNAVAILABLE error naming the
// partitions behind and by how many records; it returns ctx's error when
// ctx ends, and an EUNAVAILABLE error when Kafka cannot be asked for the
// offsets.
func (b *Barrier) Wait(parent context.Context) error {
	limit := b.Max
	if limit <= 0 {
		limit = 10 * b.Timeout
	}
	ctx, cancel := context.WithTimeout(parent, limit)
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
	stored, advanced := int64(-1), time.Now()
	for {
		if b.Flush != nil {
			b.Flush.Now()
		}
		behind, err = b.behind(ctx, ends)
		if err == nil && len(behind) == 0 {
			return nil
		}
		if err == nil {
			if n := storedOf(ends, behind); n > stored {
				stored, advanced = n, time.Now()
			}
		}
		if time.Since(advanced) >= b.Timeout {
			return b.timedOut(behind, err, fmt.Sprintf("stored nothing more of what was accepted before the run for %s", b.Timeout))
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			return b.timedOut(behind, err, fmt.Sprintf("did not store everything accepted before the run within %s", limit))
		case <-tick.C:
		}
	}
}

// storedOf is how many of the records below the ends the landing has
// stored, counted from offset 0 of each partition: it grows with every
// checkpoint that advances.
func storedOf(ends map[int]int64, behind map[int][2]int64) int64 {
	var n int64
	for p, end := range ends {
		if o, ok := behind[p]; ok {
			end = o[0]
		}
		n += end
	}
	return n
}

// timedOut describes a barrier that gave up; what says what the landing
// did not do in time ("stored nothing more … for 2m").
func (b *Barrier) timedOut(behind map[int][2]int64, err error, what string) error {
	if len(behind) == 0 && err != nil {
		return pin.Errorf(pin.EUNAVAILABLE, "The landing's checkpoints could not be read to see what it stored (the landing %s): %v. Check GET /readyz, then start the run again.", what, err)
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
	return pin.Errorf(pin.EUNAVAILABLE, "The landing %s: %s. Check that an instance with the landing role runs (PINPIPE_ROLES) and that S3 answers (GET /readyz), then start the run again.",
		what, strings.Join(s, "; "))
}

// endOffsets returns each partition's end offset, leaving out partitions
// whose records Kafka no longer keeps (first offset = end offset).
func (b *Barrier) endOffsets(ctx context.Context) (map[int]int64, error) {
	o := b.Offsets
	if o == nil {
		o = broker.NewOffsets(b.Brokers)
		defer o.Close()
	}
	offs, err := o.Read(ctx, b.Topic)
	if err != nil {
		return nil, err
	}
	ends := map[int]int64{}
	for p, off := range offs {
		if off.End > off.First {
			ends[p] = off.End
		}
	}
	return ends, nil
}

// behind reads the checkpoints of the partitions in ends and returns those
// not stored up to their end, each with the offset stored up to (its
// checkpoint's Next, 0 without one) and its end.
func (b *Barrier) behind(ctx context.Context, ends map[int]int64) (map[int][2]int64, error) {
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	cps, err := ReadCheckpoints(ctx, b.Lake, b.Topic, parts)
	if err != nil {
		return nil, err
	}
	out := map[int][2]int64{}
	for p, end := range ends {
		if next := cps[p].Next; next < end {
			out[p] = [2]int64{next, end}
		}
	}
	return out, nil
}
