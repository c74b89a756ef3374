package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// Checkpoint is how far the landing stored one partition, kept in the lake
// at layout.CheckpointKey. The landing writes it after the raw objects of
// each batch and before committing the batch's offsets, so it is never
// behind the group's committed offset; and, before uploading a batch, it
// writes the same checkpoint with the batch's objects listed as Pending, so
// a crash between an upload and the next checkpoint leaves a record of
// exactly which objects may already be stored. Readers other than the
// landing (the flush barrier, completeness) use Next and Newest and ignore
// Pending, which only ever makes them wait longer.
type Checkpoint struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// Next is one past the offset of the last record stored; every record
	// of the partition below it that Kafka kept is in the raw zone. 0 when
	// the landing stored none.
	Next int64 `json:"next_offset"`
	// Newest is the latest Kafka timestamp among the records stored; zero
	// when none was stored (or, for a checkpoint made from an older raw
	// zone, unknown).
	Newest time.Time `json:"newest_record_at,omitzero"`
	// WrittenAt is when the landing wrote the checkpoint.
	WrittenAt time.Time `json:"written_at"`
	// Pending are the objects of the batch being stored, in offset order.
	Pending []PendingObject `json:"pending,omitempty"`
}

// PendingObject is one raw object of a batch being stored.
type PendingObject struct {
	Key    string    `json:"key"`
	Next   int64     `json:"next_offset"` // one past the object's last record
	Newest time.Time `json:"newest_record_at"`
}

// ErrNoCheckpoint is returned by ReadCheckpoint when the partition has none:
// nothing was landed, or an older pinpipe landed it.
var ErrNoCheckpoint = errors.New("landing: no checkpoint")

// ReadCheckpoint returns the landing's checkpoint of partition of topic.
// Returns ErrNoCheckpoint (wrapped) when there is none, and an error naming
// the key when it cannot be read or parsed.
func ReadCheckpoint(ctx context.Context, s *lake.Store, topic string, partition int) (Checkpoint, error) {
	key := layout.CheckpointKey(topic, partition)
	body, err := s.Get(ctx, key)
	if errors.Is(err, lake.ErrNotFound) {
		return Checkpoint{}, fmt.Errorf("%w of partition %d (%s)", ErrNoCheckpoint, partition, key)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("landing: read checkpoint: %w", err)
	}
	defer body.Close()
	// Only the landing writes it; its size is bounded by the objects of
	// one batch (a few, unless records alternate between days).
	b, err := io.ReadAll(body)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("landing: read checkpoint %s: %w", key, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("landing: checkpoint %s: %w", key, err)
	}
	cp.Newest, cp.WrittenAt = cp.Newest.UTC(), cp.WrittenAt.UTC()
	return cp, nil
}

// ReadCheckpoints returns the checkpoints of partitions of topic, read in
// parallel. A partition without one is absent from the map. Returns the
// first error other than ErrNoCheckpoint.
func ReadCheckpoints(ctx context.Context, s *lake.Store, topic string, partitions []int) (map[int]Checkpoint, error) {
	cps := make([]Checkpoint, len(partitions))
	found := make([]bool, len(partitions))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, p := range partitions {
		g.Go(func() error {
			cp, err := ReadCheckpoint(gctx, s, topic, p)
			if errors.Is(err, ErrNoCheckpoint) {
				return nil
			}
			cps[i], found[i] = cp, err == nil
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[int]Checkpoint, len(partitions))
	for i, p := range partitions {
		if found[i] {
			out[p] = cps[i]
		}
	}
	return out, nil
}

// writeCheckpoint stores cp at its key, stamped now.
func writeCheckpoint(ctx context.Context, s *lake.Store, cp Checkpoint) error {
	cp.WrittenAt = time.Now().UTC()
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("landing: encode checkpoint: %w", err)
	}
	if err := s.Put(ctx, layout.CheckpointKey(cp.Topic, cp.Partition), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("landing: write checkpoint: %w", err)
	}
	return nil
}

// settle returns cp with its Pending objects that are in the lake taken in:
// they were stored in offset order, so the stored ones are a prefix, and
// Next and Newest move past each. Returns cp without Pending; an error only
// when the lake cannot be listed.
func settle(ctx context.Context, s *lake.Store, cp Checkpoint) (Checkpoint, error) {
	for _, o := range cp.Pending {
		objs, err := s.List(ctx, o.Key)
		if err != nil {
			return cp, fmt.Errorf("landing: look for pending object: %w", err)
		}
		if len(objs) == 0 || objs[0].Key != o.Key {
			break
		}
		cp.Next = max(cp.Next, o.Next)
		if o.Newest.After(cp.Newest) {
			cp.Newest = o.Newest
		}
	}
	cp.Pending = nil
	return cp, nil
}
