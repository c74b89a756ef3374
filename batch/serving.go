package batch

import (
	"context"
	"time"

	"pinpipe/pin"
)

// DayLockTTL is how long a day's lock outlives a process that died holding
// it; a running run renews it every third of that.
const DayLockTTL = 90 * time.Second

// ServingStore holds what the daily job serves and remembers, one concern
// per interface below: the serving tables, the run history, the day locks
// and the store's health. Cassandra (package batch/cassandra) is the real
// one; the stand-in (package batch/standin) keeps them in an embedded
// database when no Cassandra is configured. The job and the serving reads
// are written once against these interfaces.
type ServingStore interface {
	ServingTables
	RunHistory
	DayLocker
	// Check returns nil when the store answers, else an error naming it.
	Check(ctx context.Context) error
	// Close releases the store's connections or files.
	Close() error
}

// ServingTables are the tables the API serves from: pins (the latest
// version of each pin) and pins_by_category (each day's pins by
// follower_count), with categories_by_dt in Cassandra.
//
// pins_by_category cannot hold a NULL follower_count, because Cassandra
// clustering columns are never null: a pin without a follower count is kept
// there as -1, so it sorts last, and every read turns -1 back into nil.
type ServingTables interface {
	// ReplaceDay makes pins the serving rows of day dt. pins must not hold
	// two pins with the same unique_id. Afterwards pins_by_category holds
	// exactly these pins for dt (the day's rows from an earlier run are
	// gone), and pins holds each of them unless it already holds a later
	// version of the same unique_id (pin.Newer decides). Calling it again
	// with the same pins changes nothing. progress, when not nil, is called
	// from time to time with the number of pins written so far. Readers
	// may see the day half-written while it runs. Returns an error naming
	// the store when a write failed after its retries; the day is then
	// partly written, and the next successful call makes it whole.
	ReplaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error
	// ReplaceDayFrom is ReplaceDay over a day too large to hold at once:
	// the pins come from next a chunk at a time (next fills the buffer it
	// is given, up to its capacity, and returns it; empty at the end; a
	// chunk is only read until the next call), and categories are the
	// day's distinct categories. Returns next's error, or ReplaceDay's.
	ReplaceDayFrom(ctx context.Context, dt string, categories []string, next PinChunks, progress func(done int)) error
	// Pin returns the latest version of the pin. Returns an ENOTFOUND
	// *pin.Error when there is none.
	Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error)
	// TopByCategory returns up to n pins of category on day dt by
	// follower_count descending (pins without one last), ties by
	// unique_id. Returns an empty slice when there are none.
	TopByCategory(ctx context.Context, category, dt string, n int) ([]pin.Cleaned, error)
}

// RunHistory is the record of the daily job's runs (batch_runs).
type RunHistory interface {
	// SaveRun records run, replacing the record with the same ID.
	SaveRun(ctx context.Context, run Run) error
	// Runs returns up to limit runs, newest first (IDs sort by start time).
	Runs(ctx context.Context, limit int) ([]Run, error)
	// Run returns one run. Returns an ENOTFOUND *pin.Error when there is
	// none with id.
	Run(ctx context.Context, id string) (Run, error)
}

// PinChunks yields pins a chunk at a time: see ReplaceDayFrom.
type PinChunks func(buf []pin.Cleaned) ([]pin.Cleaned, error)

// Chunks returns pins as PinChunks, chunk copies of up to cap(buf) pins.
func Chunks(pins []pin.Cleaned) PinChunks {
	return func(buf []pin.Cleaned) ([]pin.Cleaned, error) {
		n := min(len(pins), max(cap(buf), 1))
		buf = append(buf[:0], pins[:n]...)
		pins = pins[n:]
		return buf, nil
	}
}

// DayLocker keeps two runs of one day from running at once, across
// processes (batch_locks in Cassandra).
type DayLocker interface {
	// LockDay takes day dt for run owner against runs in other processes
	// and returns the function that releases it. Returns an ECONFLICT
	// *pin.Error naming the holder when another run holds the day.
	LockDay(ctx context.Context, dt, owner string) (unlock func(), err error)
}

// MissingFollowers stands for a NULL follower_count in pins_by_category,
// whose clustering columns cannot be null. It sorts after every real count
// in the descending order.
const MissingFollowers int64 = -1

// FollowersKey returns the pins_by_category clustering value of a count.
func FollowersKey(n *int64) int64 {
	if n == nil {
		return MissingFollowers
	}
	return *n
}

// FollowersFromKey turns a pins_by_category clustering value back into the
// pin's follower_count: nil for MissingFollowers.
func FollowersFromKey(k int64) *int64 {
	if k == MissingFollowers {
		return nil
	}
	return &k
}

// Categories returns the distinct categories of pins, in first-seen order.
func Categories(pins []pin.Cleaned) []string {
	seen := map[string]bool{}
	var out []string
	for i := range pins {
		if c := pins[i].Category; !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
