package cassandra

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"pinpipe/batch"
	"pinpipe/pin"
)

// LockDay takes day dt for run owner across every pinpipe sharing the
// Cassandra keyspace (a lightweight transaction on batch_locks), so
// `pinpipe batch` and the schedules of several servers never run one day at
// once. The lock expires batch.DayLockTTL after its holder stops renewing it; the
// returned unlock releases it at once. Returns an ECONFLICT *pin.Error
// naming the holder when another run holds the day.
func (c *Store) LockDay(ctx context.Context, dt, owner string) (unlock func(), err error) {
	var heldDT, holder string
	applied, err := c.session.Query(`INSERT INTO `+c.ks+`.batch_locks (dt, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?`,
		dt, owner, int(batch.DayLockTTL.Seconds())).ScanCASContext(ctx, &heldDT, &holder)
	if err != nil {
		c.releaseUncertain(dt, owner)
		return nil, c.unavailable(ctx, "lock the day", err)
	}
	if !applied && c.unreleased(holder) {
		// A run of this process holds it: its release failed (Cassandra
		// was down as it ended). Take the day over from it.
		applied, err = c.session.Query(`UPDATE `+c.ks+`.batch_locks USING TTL ? SET owner = ? WHERE dt = ? IF owner = ?`,
			int(batch.DayLockTTL.Seconds()), owner, dt, holder).ScanCASContext(ctx, &holder)
		if err != nil {
			c.releaseUncertain(dt, owner)
			return nil, c.unavailable(ctx, "lock the day", err)
		}
		if applied {
			c.mu.Lock()
			delete(c.stale, holder)
			c.mu.Unlock()
		}
	}
	if !applied {
		return nil, pin.Errorf(pin.ECONFLICT,
			"A run for %s is already running in another pinpipe (run %s); wait for it to finish. If that pinpipe died, the day frees itself within %s.",
			dt, holder, batch.DayLockTTL)
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(batch.DayLockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				err := c.session.Query(`UPDATE `+c.ks+`.batch_locks USING TTL ? SET owner = ? WHERE dt = ? IF owner = ?`,
					int(batch.DayLockTTL.Seconds()), owner, dt, owner).ExecContext(ctx)
				if err != nil && ctx.Err() == nil {
					c.o.Log.Warn("batch: could not renew the day's lock", slog.String("dt", dt), slog.String("run", owner), slog.Any("err", err))
				}
			}
		}
	}()
	return func() {
		stop()
		<-done
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.session.Query(`DELETE FROM `+c.ks+`.batch_locks WHERE dt = ? IF owner = ?`, dt, owner).ExecContext(rctx); err != nil {
			c.mu.Lock()
			c.stale[owner] = true
			c.mu.Unlock()
			c.o.Log.Warn(fmt.Sprintf("batch: could not release the day's lock; it frees itself within %s", batch.DayLockTTL),
				slog.String("dt", dt), slog.String("run", owner), slog.Any("err", err))
		}
	}, nil
}

// releaseUncertain releases the day's lock if owner holds it, after a
// lightweight transaction taking it failed: one that timed out after it
// reached the replicas may still have been applied, leaving the day held
// by a run that never started, so that every run of the day, on any
// pinpipe, would be refused for DayLockTTL. When the release fails too,
// owner is marked unreleased, so this process's next run of the day takes
// the lock over at once.
func (c *Store) releaseUncertain(dt, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.session.Query(`DELETE FROM `+c.ks+`.batch_locks WHERE dt = ? IF owner = ?`, dt, owner).ExecContext(ctx); err != nil {
		c.mu.Lock()
		c.stale[owner] = true
		c.mu.Unlock()
	}
}

// unreleased reports whether owner is a run of this process whose lock
// could not be released.
func (c *Store) unreleased(owner string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stale[owner]
}

// ClaimSlot takes key in batch_locks for owner for ttl: a firing of the
// daily schedule (see batch.ScheduleLocker). Returns false when another
// owner holds it.
func (c *Store) ClaimSlot(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	var heldKey, holder string
	applied, err := c.session.Query(`INSERT INTO `+c.ks+`.batch_locks (dt, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?`,
		key, owner, int(ttl.Seconds())).ScanCASContext(ctx, &heldKey, &holder)
	if err != nil {
		return false, c.unavailable(ctx, "claim the scheduled run", err)
	}
	return applied, nil
}

var _ batch.SlotClaimer = (*Store)(nil)
