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

// scheduledPair is two batch services over one serving store (two
// sessions on one keyspace with Cassandra; one shared stand-in and its
// in-process locker otherwise) whose schedules fire every minute of one
// fake clock, over a lake holding one raw pin of day dt.
type scheduledPair struct {
	svcs       [2]*batch.Service
	asked, won [2]atomic.Int32 // firings each service bid for and won
	clock      *clockwork.FakeClock
	dt         string
}

// startScheduledPair starts a scheduledPair; the test's cleanup stops
// both services and fails the test if either Serve returns an error.
func startScheduledPair(t *testing.T) *scheduledPair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := openLake(t)
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	p := &scheduledPair{dt: yesterday.Format(time.DateOnly)}
	putRaw(t, s, p.dt, []batch.RawRecord{rawRecord(0, 0, yesterday,
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
	p.clock = clockwork.NewFakeClockAt(time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second))
	for i := range lockers {
		lockers[i] = batch.ScheduleLocker(stores[i], p.clock.Now)
	}
	if stores[0] == stores[1] {
		lockers[1] = lockers[0] // one process: one in-process locker
	}

	done := make(chan error, 2)
	for i := range p.svcs {
		p.svcs[i] = batch.NewService(batch.ServiceOptions{
			Job: newJob(t, s, stores[i]), Cron: "* * * * *", Log: testenv.Log(t),
			Metrics: batch.NewJobMetrics(prometheus.NewRegistry()), Clock: p.clock,
			Locker: countingLocker{Locker: lockers[i], asked: &p.asked[i], won: &p.won[i]},
		})
		go func() { done <- p.svcs[i].Serve(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range p.svcs {
			testenv.Must(t, <-done)
		}
	})
	return p
}

// fire waits until both schedulers wait for the next minute, then lets
// it come.
func (p *scheduledPair) fire(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testenv.Must(t, p.clock.BlockUntilContext(ctx, 2))
	p.clock.Advance(time.Minute)
}

// TestTwoSchedulesFiringTogetherRecordOneRun fires a scheduledPair's
// schedules at the same minute: exactly one run is recorded, and the
// loser records nothing.
func TestTwoSchedulesFiringTogetherRecordOneRun(t *testing.T) {
	ctx := context.Background()
	p := startScheduledPair(t)
	p.fire(t)
	asked := func() int32 { return p.asked[0].Load() + p.asked[1].Load() }
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		return asked() == 2, fmt.Sprintf("%d of 2 schedulers asked for the firing", asked())
	})
	if won := p.won[0].Load() + p.won[1].Load(); won != 1 {
		t.Fatalf("%d schedulers won the firing, want 1", won)
	}
	// Every service sees the one run finish, and never a second one.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		for i, svc := range p.svcs {
			runs, err := svc.Runs(ctx, 10)
			testenv.Must(t, err)
			if len(runs) > 1 {
				t.Fatalf("service %d sees %d runs, want 1: %+v", i, len(runs), runs)
			}
			if len(runs) == 0 || runs[0].Status != batch.StatusSucceeded {
				return false, fmt.Sprintf("service %d sees runs %+v", i, runs)
			}
			if r := runs[0]; r.Trigger != batch.TriggerSchedule || r.Date != p.dt {
				t.Fatalf("service %d sees run %+v, want a scheduled run for %s", i, r, p.dt)
			}
		}
		return true, ""
	})
}

// TestAStoppingInstanceLeavesTheFiringToAnother fires a scheduledPair
// whose first service has begun to stop (StopSchedule, as a draining
// pinpipe does): at the firing it does not bid, so the other runs it.
// Were it to win, its own shutdown would interrupt the day's scheduled
// run.
func TestAStoppingInstanceLeavesTheFiringToAnother(t *testing.T) {
	ctx := context.Background()
	p := startScheduledPair(t)
	p.svcs[0].StopSchedule()
	p.fire(t)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		runs, err := p.svcs[1].Runs(ctx, 10)
		testenv.Must(t, err)
		return len(runs) == 1 && runs[0].Status == batch.StatusSucceeded, fmt.Sprintf("runs %+v", runs)
	})
	if p.asked[0].Load() != 0 || p.won[1].Load() != 1 {
		t.Fatalf("the stopping service bid %d times; the other won %d firings, want 0 and 1", p.asked[0].Load(), p.won[1].Load())
	}
}
