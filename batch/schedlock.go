package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// slotTTL is how long a claimed firing of the schedule stays claimed:
// far longer than the clocks of a cluster's instances can disagree, and
// the key names the minute, so the next firing is never shut out.
const slotTTL = time.Hour

// errNotElected is what Lock returns to the instances that lose a firing;
// gocron then skips the job there, and nothing is recorded.
var errNotElected = errors.New("batch: another pinpipe runs this firing of the schedule")

// ScheduleLocker returns the gocron.Locker that lets one instance of a
// cluster run each firing of the daily schedule: with Cassandra, a
// lightweight transaction on batch_locks that every instance sharing the
// keyspace sees; with the embedded stand-in (one process), a claim in
// this locker, so Services meant to exclude each other must share it.
// now tells the firing's time (nil: time.Now); a firing is named by its
// job and its minute, which every instance's gocron fires at by its own
// clock.
//
// Lock returns an error for a firing already claimed (the job is then
// skipped), and also when the claim cannot be made (Cassandra down): a
// skipped firing is retried by no one, which beats two runs of one day;
// on-demand runs are guarded by the day lock instead. Its Unlock keeps the
// claim, which expires after slotTTL.
func ScheduleLocker(store ServingStore, now func() time.Time) gocron.Locker {
	if now == nil {
		now = time.Now
	}
	l := &scheduleLocker{now: now}
	if c, ok := store.(SlotClaimer); ok {
		l.claim = c.ClaimSlot
	} else {
		l.claim = (&memorySlots{taken: map[string]time.Time{}}).claim
	}
	return l
}

// SlotClaimer is a serving store that every instance of a cluster shares
// (Cassandra), which can claim a firing of the schedule for one of them.
type SlotClaimer interface {
	// ClaimSlot takes key for owner for ttl. Returns false when another
	// owner holds it, and an error when the claim cannot be made.
	ClaimSlot(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
}

type scheduleLocker struct {
	now   func() time.Time
	claim func(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
}

var _ gocron.Locker = (*scheduleLocker)(nil)

// Lock implements gocron.Locker for job (its name).
func (l *scheduleLocker) Lock(ctx context.Context, job string) (gocron.Lock, error) {
	at := l.now().UTC().Truncate(time.Minute)
	key := "schedule/" + job + "/" + at.Format(time.RFC3339)
	ok, err := l.claim(ctx, key, newRunID(l.now()), slotTTL)
	if err != nil {
		return nil, fmt.Errorf("batch: claim the scheduled firing %s: %w", key, err)
	}
	if !ok {
		return nil, errNotElected
	}
	return keptClaim{}, nil
}

// keptClaim leaves the firing claimed when the job returns, so an instance
// whose clock lags cannot run the same firing after it.
type keptClaim struct{}

func (keptClaim) Unlock(context.Context) error { return nil }

// memorySlots are claims within one process.
type memorySlots struct {
	mu    sync.Mutex
	taken map[string]time.Time // key → when its claim expires
}

func (m *memorySlots) claim(_ context.Context, key, _ string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for k, until := range m.taken {
		if now.After(until) {
			delete(m.taken, k)
		}
	}
	if _, held := m.taken[key]; held {
		return false, nil
	}
	m.taken[key] = now.Add(ttl)
	return true, nil
}
