package batch_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
)

// countingLocker counts the firings a scheduler asked to run and those it
// won.
type countingLocker struct {
	gocron.Locker
	asked, won *atomic.Int32
}

func (c countingLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	l, err := c.Locker.Lock(ctx, key)
	c.asked.Add(1)
	if err == nil {
		c.won.Add(1)
	}
	return l, err
}

// TestTwoSchedulesFiringTogetherRecordOneRun runs two batch services over
// one serving store (two sessions on one keyspace with Cassandra; one
// shared stand-in and its in-process locker otherwise) whose schedules
// fire at the same minute of a fake clock: exactly one run is recorded,
// and the loser records nothing.
func TestTwoSchedulesFiringTogetherRecordOneRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openLake(t)
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	dt := yesterday.Format(time.DateOnly)
	putRaw(t, s, dt, []batch.RawRecord{rawRecord(0, 0, yesterday,
		fmt.Sprintf(`{"index":1,"unique_id":%q,"category":"art"}`, uuid.NewString()))})

	var stores [2]batch.ServingStore
	var lockers [2]gocron.Locker
	if hosts, ks := testenv.Cassandra(t); hosts != nil {
		for i := range stores {
			st, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
			testenv.Must(t, err)
			t.Cleanup(func() { _ = st.Close() })
			stores[i] = st
		}
	} else {
		st := teststores.Serving(t)
		stores[0], stores[1] = st, st
	}
	clock := clockwork.NewFakeClockAt(time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second))
	for i := range lockers {
		lockers[i] = batch.ScheduleLocker(stores[i], clock.Now)
	}
	if stores[0] == stores[1] {
		lockers[1] = lockers[0] // one process: one in-process locker
	}

	var asked, won atomic.Int32
	svcs := make([]*batch.Service, 2)
	done := make(chan error, 2)
	for i := range svcs {
		svcs[i] = batch.NewService(batch.ServiceOptions{
			Job: newJob(t, s, stores[i]), Cron: "* * * * *", Log: testenv.Log(t),
			Metrics: batch.NewJobMetrics(prometheus.NewRegistry()), Clock: clock,
			Locker: countingLocker{Locker: lockers[i], asked: &asked, won: &won},
		})
		go func() { done <- svcs[i].Serve(ctx) }()
	}
	defer func() {
		cancel()
		for range svcs {
			testenv.Must(t, <-done)
		}
	}()

	// Both schedulers wait for the next minute; then it comes.
	bctx, bcancel := context.WithTimeout(ctx, time.Minute)
	defer bcancel()
	testenv.Must(t, clock.BlockUntilContext(bctx, 2))
	clock.Advance(time.Minute)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		return asked.Load() == 2, fmt.Sprintf("%d of 2 schedulers asked for the firing", asked.Load())
	})
	if won.Load() != 1 {
		t.Fatalf("%d schedulers won the firing, want 1", won.Load())
	}
	// Every service sees the one run finish, and never a second one.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		for i, svc := range svcs {
			runs, err := svc.Runs(ctx, 10)
			testenv.Must(t, err)
			if len(runs) > 1 {
				t.Fatalf("service %d sees %d runs, want 1: %+v", i, len(runs), runs)
			}
			if len(runs) == 0 || runs[0].Status != batch.StatusSucceeded {
				return false, fmt.Sprintf("service %d sees runs %+v", i, runs)
			}
			if r := runs[0]; r.Trigger != batch.TriggerSchedule || r.Date != dt {
				t.Fatalf("service %d sees run %+v, want a scheduled run for %s", i, r, dt)
			}
		}
		return true, ""
	})
}

// TestAStoppingInstanceLeavesTheFiringToAnother runs two batch services on
// one serving store, as TestTwoSchedulesFiringTogetherRecordOneRun does,
// but the first has begun to stop (StopSchedule, as a draining pinpipe
// does): at the firing it does not bid, so the other runs it. Were it to
// win, its own shutdown would interrupt the day's scheduled run.
func TestAStoppingInstanceLeavesTheFiringToAnother(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openLake(t)
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	dt := yesterday.Format(time.DateOnly)
	putRaw(t, s, dt, []batch.RawRecord{rawRecord(0, 0, yesterday,
		fmt.Sprintf(`{"index":1,"unique_id":%q,"category":"art"}`, uuid.NewString()))})

	var stores [2]batch.ServingStore
	var lockers [2]gocron.Locker
	if hosts, ks := testenv.Cassandra(t); hosts != nil {
		for i := range stores {
			st, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
			testenv.Must(t, err)
			t.Cleanup(func() { _ = st.Close() })
			stores[i] = st
		}
	} else {
		st := teststores.Serving(t)
		stores[0], stores[1] = st, st
	}
	clock := clockwork.NewFakeClockAt(time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second))
	for i := range lockers {
		lockers[i] = batch.ScheduleLocker(stores[i], clock.Now)
	}
	if stores[0] == stores[1] {
		lockers[1] = lockers[0]
	}

	var asked, won [2]atomic.Int32
	svcs := make([]*batch.Service, 2)
	done := make(chan error, 2)
	for i := range svcs {
		svcs[i] = batch.NewService(batch.ServiceOptions{
			Job: newJob(t, s, stores[i]), Cron: "* * * * *", Log: testenv.Log(t),
			Metrics: batch.NewJobMetrics(prometheus.NewRegistry()), Clock: clock,
			Locker: countingLocker{Locker: lockers[i], asked: &asked[i], won: &won[i]},
		})
		go func() { done <- svcs[i].Serve(ctx) }()
	}
	defer func() {
		cancel()
		for range svcs {
			testenv.Must(t, <-done)
		}
	}()
	svcs[0].StopSchedule()

	bctx, bcancel := context.WithTimeout(ctx, time.Minute)
	defer bcancel()
	testenv.Must(t, clock.BlockUntilContext(bctx, 2))
	clock.Advance(time.Minute)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		runs, err := svcs[1].Runs(ctx, 10)
		testenv.Must(t, err)
		return len(runs) == 1 && runs[0].Status == batch.StatusSucceeded, fmt.Sprintf("runs %+v", runs)
	})
	if asked[0].Load() != 0 || won[1].Load() != 1 {
		t.Fatalf("the stopping service bid %d times; the other won %d firings, want 0 and 1", asked[0].Load(), won[1].Load())
	}
}
