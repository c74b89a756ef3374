package batch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
	"pinpipe/pin"
)

// fakeCompleteness says a day is complete once it is over and complete is
// set; until then Behind is behind.
type fakeCompleteness struct {
	mu       sync.Mutex
	complete bool
	behind   []batch.PartitionBehind
}

func (f *fakeCompleteness) set(complete bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.complete = complete
}

func (f *fakeCompleteness) DayComplete(_ context.Context, day string, now time.Time) (batch.DayCompleteness, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return batch.DayCompleteness{}, err
	}
	over := !now.Before(d.AddDate(0, 0, 1))
	c := batch.DayCompleteness{Day: day, Over: over, Complete: over && f.complete}
	if !c.Complete {
		c.Behind = f.behind
	}
	return c, nil
}

// pinRecords returns n raw records of new pins on partition p from offset
// first, stamped at.
func pinRecords(p int32, first int64, n int, at time.Time) ([]batch.RawRecord, []string) {
	recs := make([]batch.RawRecord, n)
	ids := make([]string, n)
	for i := range recs {
		ids[i] = uuid.NewString()
		recs[i] = rawRecord(p, first+int64(i), at.Add(time.Duration(i)*time.Second),
			fmt.Sprintf(`{"index":%d,"unique_id":%q,"category":"late"}`, i, ids[i]))
	}
	return recs, ids
}

// curatedIDs returns how many times each unique_id is in the curated zone.
func curatedIDs(t *testing.T, s *lake.Store) map[string]int {
	t.Helper()
	_, rows := curatedDump(t, s)
	n := map[string]int{}
	for _, r := range rows {
		var row struct {
			UniqueID string `json:"unique_id"`
		}
		testenv.Must(t, json.Unmarshal([]byte(r), &row))
		n[row.UniqueID]++
	}
	return n
}

type lateEnv struct {
	lake  *lake.Store
	store batch.ServingStore
	clock *clockwork.FakeClock
	comp  *fakeCompleteness
	svc   *batch.Service
	reg   *prometheus.Registry
}

// newLateEnv returns a service whose clock stands at now, with a fake
// completeness that says every day over is complete.
func newLateEnv(t *testing.T, now time.Time, o batch.ServiceOptions) *lateEnv {
	t.Helper()
	e := &lateEnv{lake: openLake(t), store: teststores.Serving(t), clock: clockwork.NewFakeClockAt(now),
		comp: &fakeCompleteness{complete: true}, reg: prometheus.NewRegistry()}
	o.Job, o.Log, o.Metrics, o.Clock, o.Completeness = newJob(t, e.lake, e.store), testenv.Log(t), batch.NewJobMetrics(e.reg), e.clock, e.comp
	e.svc = batch.NewService(o)
	t.Cleanup(e.svc.Close)
	return e
}

func (e *lateEnv) day(t *testing.T, dt string) pin.BatchDay {
	t.Helper()
	days, err := e.svc.Days(context.Background(), 30)
	testenv.Must(t, err)
	for _, d := range days {
		if d.Day == dt {
			return d
		}
	}
	t.Fatalf("GET /batch/days lacks %s: %+v", dt, days)
	return pin.BatchDay{}
}

func TestLateRecordsOfACuratedDayRunItAgainWithinOneCheck(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	e := newLateEnv(t, now, batch.ServiceOptions{})
	yesterday := now.AddDate(0, 0, -1)
	dt := yesterday.Format(time.DateOnly)
	noon := yesterday.Truncate(24 * time.Hour).Add(12 * time.Hour)

	onTime, ids := pinRecords(0, 0, 20, noon)
	putRaw(t, e.lake, dt, onTime)
	first, err := e.svc.RunNow(ctx, dt, batch.TriggerAPI, nil)
	testenv.Must(t, err)
	if d := e.day(t, dt); d.Stale || d.CommittedRun != first.ID || d.Run == nil || d.Run.ID != first.ID || !d.Complete {
		t.Fatalf("the day once curated: %+v, want complete, not stale, committed by %s", d, first.ID)
	}
	if got, err := e.svc.CheckLate(ctx); err != nil || len(got.Started) != 0 || len(got.Stale) != 0 {
		t.Fatalf("a check with nothing late: %+v, %v; want nothing started", got, err)
	}

	// Records stamped on the day land after its run: on another
	// partition, and later on the same one, with a new version of a pin.
	late, lateIDs := pinRecords(1, 0, 7, noon.Add(time.Hour))
	putRaw(t, e.lake, dt, late)
	newer := rawRecord(0, 20, noon.Add(2*time.Hour), fmt.Sprintf(`{"index":0,"unique_id":%q,"category":"late","title":"newer"}`, ids[0]))
	putRaw(t, e.lake, dt, []batch.RawRecord{newer})
	if d := e.day(t, dt); !d.Stale {
		t.Fatalf("the day after late records landed: %+v, want stale", d)
	}
	// Not complete yet: the checker waits.
	e.comp.set(false)
	if got, err := e.svc.CheckLate(ctx); err != nil || len(got.Started) != 0 || !slices.Equal(got.Stale, []string{dt}) || !slices.Equal(got.Incomplete, []string{dt}) {
		t.Fatalf("a check while the day is incomplete: %+v, %v; want it stale and incomplete, nothing started", got, err)
	}
	e.comp.set(true)
	got, err := e.svc.CheckLate(ctx)
	testenv.Must(t, err)
	if len(got.Started) != 1 || got.Started[0].Date != dt || got.Started[0].Trigger != batch.TriggerLateData {
		t.Fatalf("the check: %+v, want one late-data run for %s", got, dt)
	}
	run := waitForRun(t, e.svc, got.Started[0].ID)
	if run.Status != batch.StatusSucceeded || run.RowsIn != 28 || run.RowsOut != 27 {
		t.Fatalf("the late-data run: %+v, want succeeded with 28 rows in, 27 out", run)
	}

	counts := curatedIDs(t, e.lake)
	for _, id := range append(slices.Clone(ids), lateIDs...) {
		if counts[id] != 1 {
			t.Errorf("the curated zone holds %s %d times, want once", id, counts[id])
		}
		p, err := e.store.Pin(ctx, id)
		if err != nil {
			t.Errorf("the serving store lacks %s: %v", id, err)
		} else if id == ids[0] && (p.Title == nil || *p.Title != "newer") {
			t.Errorf("the serving store holds %s with title %v, want the newer version", id, p.Title)
		}
	}
	if len(counts) != 27 {
		t.Errorf("the curated zone holds %d pins, want 27", len(counts))
	}
	d := e.day(t, dt)
	if d.Stale || d.CommittedRun != run.ID || d.Run.Trigger != batch.TriggerLateData {
		t.Fatalf("the day after the late-data run: %+v", d)
	}
	if got, err := e.svc.CheckLate(ctx); err != nil || len(got.Started) != 0 {
		t.Fatalf("the next check: %+v, %v; want nothing started", got, err)
	}
	if n := gathered(t, e.reg, "pinpipe_batch_runs_started_total"); n != 2 {
		t.Errorf("pinpipe_batch_runs_started_total = %v, want 2", n)
	}
}

// TestScheduledRunWaitsForCompletenessFailsNamingThePartitionsThenRunsByItself
// runs two services over one serving store whose schedules fire together:
// the one that wins the firing waits for the day, records one failed run
// naming the partitions behind, and the day runs by itself once complete.
func TestScheduledRunWaitsForCompletenessFailsNamingThePartitionsThenRunsByItself(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openLake(t)
	store := teststores.Serving(t)
	firing := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	dt := "2026-03-09"
	recs, _ := pinRecords(0, 0, 5, time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC))
	putRaw(t, s, dt, recs)

	clock := clockwork.NewFakeClockAt(firing.Add(-30 * time.Second))
	comp := &fakeCompleteness{behind: []batch.PartitionBehind{{Partition: 1, Records: 42, Behind: 35 * time.Minute,
		Landed: time.Date(2026, 3, 9, 23, 35, 0, 0, time.UTC)}}}
	locker := batch.ScheduleLocker(store, clock.Now)
	svcs := make([]*batch.Service, 2)
	done := make(chan error, 2)
	for i := range svcs {
		svcs[i] = batch.NewService(batch.ServiceOptions{
			Job: newJob(t, s, store), Cron: "0 8 * * *", Log: testenv.Log(t), Metrics: batch.NewJobMetrics(prometheus.NewRegistry()),
			Clock: clock, Locker: locker, Completeness: comp, Wait: 2 * time.Minute, Poll: 30 * time.Second,
		})
		go func() { done <- svcs[i].Serve(ctx) }()
	}
	defer func() {
		cancel()
		for range svcs {
			testenv.Must(t, <-done)
		}
	}()
	bctx, bcancel := context.WithTimeout(ctx, time.Minute)
	defer bcancel()
	testenv.Must(t, clock.BlockUntilContext(bctx, 2)) // both schedulers
	clock.Advance(30 * time.Second)
	// The winner asks every 30s for 2 minutes: its poll and both
	// schedulers' next firings wait on the clock.
	for range 4 {
		testenv.Must(t, clock.BlockUntilContext(bctx, 3))
		clock.Advance(30 * time.Second)
	}
	var failed batch.Run
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		runs, err := store.Runs(ctx, 10)
		testenv.Must(t, err)
		if len(runs) > 1 {
			t.Fatalf("%d runs recorded, want 1: %+v", len(runs), runs)
		}
		if len(runs) == 1 {
			failed = runs[0]
		}
		return len(runs) == 1, "no run recorded yet"
	})
	if failed.Status != batch.StatusFailed || failed.Trigger != batch.TriggerSchedule || failed.Date != dt {
		t.Fatalf("the scheduled run: %+v, want a failed scheduled run for %s", failed, dt)
	}
	for _, want := range []string{"not complete after waiting 2m0s", "partition 1 is 42 records and 35m0s behind", "2026-03-09T23:35:00Z", `"completed"`} {
		if !strings.Contains(failed.Error, want) {
			t.Errorf("the failed run's error %q does not say %q", failed.Error, want)
		}
	}
	// A check while the day is still incomplete starts nothing.
	if got, err := svcs[1].CheckLate(ctx); err != nil || len(got.Started) != 0 {
		t.Fatalf("a check while the day is incomplete: %+v, %v", got, err)
	}
	comp.set(true)
	got, err := svcs[1].CheckLate(ctx)
	testenv.Must(t, err)
	if len(got.Started) != 1 || got.Started[0].Trigger != batch.TriggerCompleted || got.Started[0].Date != dt {
		t.Fatalf("the check once the day is complete: %+v, want one completed run for %s", got, dt)
	}
	if run := waitForRun(t, svcs[1], got.Started[0].ID); run.Status != batch.StatusSucceeded || run.RowsOut != 5 {
		t.Fatalf("the completed run: %+v, want succeeded with 5 pins", run)
	}
}

func TestScheduledRunStartsAtOnceWhenItsDayIsComplete(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	firing := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	e := newLateEnv(t, firing.Add(-30*time.Second), batch.ServiceOptions{Cron: "0 8 * * *"})
	recs, _ := pinRecords(0, 0, 3, time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC))
	putRaw(t, e.lake, "2026-03-09", recs)
	done := make(chan error, 1)
	go func() { done <- e.svc.Serve(ctx) }()
	defer func() { cancel(); testenv.Must(t, <-done) }()
	bctx, bcancel := context.WithTimeout(ctx, time.Minute)
	defer bcancel()
	testenv.Must(t, e.clock.BlockUntilContext(bctx, 1))
	e.clock.Advance(30 * time.Second)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		runs, err := e.svc.Runs(ctx, 10)
		testenv.Must(t, err)
		return len(runs) == 1 && runs[0].Status == batch.StatusSucceeded && runs[0].Trigger == batch.TriggerSchedule && runs[0].RowsOut == 3,
			fmt.Sprintf("runs %+v", runs)
	})
}

// gathered returns the sum of a gathered counter's or gauge's series.
func gathered(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}
