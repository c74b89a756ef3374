package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"pinpipe/lake/layout"
)

// Commit is what a day's committed run says about the raw objects it read:
// the one input of LateRaw, the single definition of a stale day that the
// batch lane's late-data check and the query mirror's pins_live share.
type Commit struct {
	Run string // the run's ID
	// Read maps each partition to the last offset of the day's raw objects
	// the run read; nil for a marker written before runs kept it.
	Read map[int]int64
	// Began is when the run began, for a marker without Read: the time in
	// its ID (newRunID), else the marker's LastModified.
	Began time.Time
}

// LateRaw reports whether a raw object of the day — of partition, holding
// offsets up to last, stored at modified — holds records c's run did not
// read: offsets past what the run read of the partition, or any offset of
// a partition it read nothing of. For a marker without offsets it falls
// back to time: an object stored at or after the run began ("at", as S3
// times are often whole seconds; a clock of pinpipe against S3's, so skew
// can at worst cost one needless re-run). A day is stale when a committed
// run leaves one of its raw objects late.
func LateRaw(c Commit, partition int, last int64, modified time.Time) bool {
	if c.Read == nil {
		return !modified.Before(c.Began)
	}
	read, ok := c.Read[partition]
	return !ok || last > read
}

// Getter opens one object of the lake (lake.Store, the query mirror's
// store).
type Getter interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// ReadCommit reads run's commit marker of day dt (layout.CommitKey);
// modified is the marker's LastModified, the fallback for Commit.Began.
// Returns an error naming the step when the marker cannot be read or is
// not a marker.
func ReadCommit(ctx context.Context, lk Getter, dt, run string, modified time.Time) (Commit, error) {
	c := Commit{Run: run, Began: modified}
	if t, ok := runTime(run); ok {
		c.Began = t
	}
	body, err := lk.Get(ctx, layout.CommitKey(dt, run))
	if err != nil {
		return c, fmt.Errorf("read the commit marker of %s: %w", dt, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return c, fmt.Errorf("read the commit marker of %s: %w", dt, err)
	}
	var m commitMarker
	if err := json.Unmarshal(b, &m); err != nil {
		return c, fmt.Errorf("decode the commit marker of %s: %w", dt, err)
	}
	c.Read = m.Raw
	return c, nil
}
