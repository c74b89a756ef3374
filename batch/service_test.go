package batch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/pin"
)

func newService(t *testing.T, job *batch.Job) *batch.Service {
	t.Helper()
	svc := batch.NewService(batch.ServiceOptions{Job: job, Log: testenv.Log(t), Metrics: batch.NewJobMetrics(prometheus.NewRegistry())})
	t.Cleanup(svc.Close)
	return svc
}

// waitForRun waits until run id finished and returns it.
func waitForRun(t *testing.T, svc *batch.Service, id string) batch.Run {
	t.Helper()
	var run batch.Run
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		var err error
		run, err = svc.Run(context.Background(), id)
		return err == nil && (run.Status == batch.StatusSucceeded || run.Status == batch.StatusFailed), run.Status
	})
	return run
}

func TestServiceRefusesASecondRunOfADayWhileOneIsActive(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	job := newJob(t, s, teststores.Serving(t))
	entered, release := make(chan string, 2), make(chan struct{})
	job.AfterCurated = func(ctx context.Context) error {
		entered <- "curated"
		<-release
		return nil
	}
	svc := newService(t, job)

	first, err := svc.StartRun(ctx, d.dt, batch.TriggerAPI)
	testenv.Must(t, err)
	<-entered
	_, err = svc.StartRun(ctx, d.dt, batch.TriggerAPI)
	if pin.ErrorCode(err) != pin.ECONFLICT || !strings.Contains(pin.ErrorMessage(err), first.ID) {
		t.Fatalf("second run of %s while the first runs: got %v, want a conflict naming %s", d.dt, err, first.ID)
	}
	// Another day queues behind the running run.
	other, err := svc.StartRun(ctx, "2024-05-02", batch.TriggerAPI)
	testenv.Must(t, err)
	if got, err := svc.Run(ctx, other.ID); err != nil || got.Status != batch.StatusQueued {
		t.Fatalf("the other day's run: %+v, %v; want queued", got, err)
	}
	close(release)

	run := waitForRun(t, svc, first.ID)
	if run.Status != batch.StatusSucceeded || run.RowsIn != int64(len(d.records)) || run.RowsOut != int64(d.unique) ||
		run.RowsRejected != 1 || run.Trigger != batch.TriggerAPI || run.StartedAt == nil || run.FinishedAt == nil || run.Error != "" {
		t.Fatalf("first run: %+v", run)
	}
	if run := waitForRun(t, svc, other.ID); run.Status != batch.StatusSucceeded || run.RowsOut != 5 {
		t.Fatalf("other day's run: %+v", run)
	}
	// Once finished, the day can run again.
	again, err := svc.StartRun(ctx, d.dt, batch.TriggerCLI)
	testenv.Must(t, err)
	waitForRun(t, svc, again.ID)

	runs, err := svc.Runs(ctx, 10)
	testenv.Must(t, err)
	if len(runs) != 3 || runs[0].ID != again.ID || runs[1].ID != other.ID || runs[2].ID != first.ID {
		t.Fatalf("runs, newest first: got %+v", runs)
	}
}

func TestServiceRefusesAMalformedOrFutureDate(t *testing.T) {
	s := openLake(t)
	svc := newService(t, newJob(t, s, teststores.Serving(t)))
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	for _, date := range []string{"2024-5-1", "yesterday", "", tomorrow} {
		if _, err := svc.StartRun(context.Background(), date, batch.TriggerAPI); pin.ErrorCode(err) != pin.EINVALID {
			t.Errorf("StartRun(%q): got %v, want code %s", date, err, pin.EINVALID)
		}
	}
}

func TestServiceRecordsARunInterruptedByShutdownAsFailed(t *testing.T) {
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	store := teststores.Serving(t)
	job := newJob(t, s, store)
	entered := make(chan struct{})
	job.AfterCurated = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	svc := newService(t, job)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- svc.Serve(ctx) }()

	run, err := svc.StartRun(ctx, d.dt, batch.TriggerSchedule)
	testenv.Must(t, err)
	<-entered
	stop()
	testenv.Must(t, <-served)

	got, err := store.Run(context.Background(), run.ID)
	testenv.Must(t, err)
	if got.Status != batch.StatusFailed || !strings.Contains(got.Error, "interrupted by shutdown") || got.FinishedAt == nil {
		t.Fatalf("the interrupted run as stored: %+v", got)
	}
	if _, err := svc.StartRun(context.Background(), d.dt, batch.TriggerAPI); pin.ErrorCode(err) != pin.EUNAVAILABLE {
		t.Fatalf("StartRun after shutdown: got %v, want code %s", err, pin.EUNAVAILABLE)
	}
}

func TestServiceRunFailsNamingCassandraWhenItGoesDownAndTheNextRunSucceeds(t *testing.T) {
	hosts, ks := testenv.Cassandra(t)
	if hosts == nil {
		t.Skip("the embedded stand-in cannot go down; set PINPIPE_CASSANDRA_HOSTS (scripts/stack env) to run this against Cassandra")
	}
	ctx := context.Background()
	proxy := testenv.NewProxy(t, hosts[0])
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	store, err := cassandra.Open(cctx, cassandra.Options{
		Hosts: []string{proxy.Addr}, Keyspace: ks, Log: testenv.Log(t),
		// Shorter than retry.Bounded, so the test does not wait half a
		// minute for each give-up.
		Retry: retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, MaxElapsed: 3 * time.Second},
	})
	testenv.Must(t, err)
	t.Cleanup(func() { _ = store.Close() })
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	job := newJob(t, s, store)
	down := true
	job.AfterCurated = func(ctx context.Context) error {
		if down {
			proxy.Down()
		}
		return nil
	}
	svc := newService(t, job)

	failed, err := svc.RunNow(ctx, d.dt, batch.TriggerCLI, nil)
	if err == nil || failed.Status != batch.StatusFailed {
		t.Fatalf("the run during the outage: %+v, %v; want failed", failed, err)
	}
	for _, want := range []string{"cassandra at " + proxy.Addr, "check that Cassandra is up"} {
		if !strings.Contains(failed.Error, want) {
			t.Fatalf("the failed run's error %q does not say %q", failed.Error, want)
		}
	}

	proxy.Up()
	down = false
	run, err := svc.RunNow(ctx, d.dt, batch.TriggerCLI, nil)
	testenv.Must(t, err)
	if run.Status != batch.StatusSucceeded || run.RowsOut != int64(d.unique) {
		t.Fatalf("the run after the outage: %+v", run)
	}
	servingDump(t, store, d)
	// The failed run's record, kept in memory during the outage, reached the store.
	got, err := store.Run(ctx, failed.ID)
	testenv.Must(t, err)
	if got.Status != batch.StatusFailed || got.Error != failed.Error {
		t.Fatalf("the failed run as stored: %+v", got)
	}
}

func TestServiceMarksRunsAStoppedProcessLeftUnfinishedAsFailed(t *testing.T) {
	ctx := context.Background()
	store := teststores.Serving(t)
	started := time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)
	left := batch.Run{ID: "20240502T080000.000000Z-aaaaaa", Date: "2024-05-01", Trigger: batch.TriggerSchedule,
		Status: batch.StatusRunning, StartedAt: &started}
	done := batch.Run{ID: "20240502T070000.000000Z-bbbbbb", Date: "2024-04-30", Trigger: batch.TriggerAPI,
		Status: batch.StatusSucceeded, StartedAt: &started, FinishedAt: &started}
	testenv.Must(t, store.SaveRun(ctx, left))
	testenv.Must(t, store.SaveRun(ctx, done))
	svc := newService(t, newJob(t, openLake(t), store))
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error)
	go func() { served <- svc.Serve(sctx) }()
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		r, err := store.Run(ctx, left.ID)
		return err == nil && r.Status == batch.StatusFailed, "the unfinished run is " + r.Status
	})
	stop()
	testenv.Must(t, <-served)
	r, err := store.Run(ctx, left.ID)
	testenv.Must(t, err)
	if !strings.Contains(r.Error, "pinpipe stopped before the run finished") || r.FinishedAt == nil {
		t.Fatalf("the unfinished run after a restart: %+v", r)
	}
	if r, _ := store.Run(ctx, done.ID); r.Status != batch.StatusSucceeded {
		t.Fatalf("a finished run was changed: %+v", r)
	}
}

func TestServiceRefusesADayTheRawZoneDoesNotHold(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	writeDayOfRaw(t, s)
	svc := newService(t, newJob(t, s, teststores.Serving(t)))
	for _, start := range []func() error{
		func() error { _, err := svc.StartRun(ctx, "2024-04-30", batch.TriggerAPI); return err },
		func() error { _, err := svc.RunNow(ctx, "2024-04-30", batch.TriggerCLI, nil); return err },
	} {
		err := start()
		if pin.ErrorCode(err) != pin.ENOTFOUND || !strings.Contains(pin.ErrorMessage(err), "raw zone holds no pins for 2024-04-30") {
			t.Errorf("a run for a day without raw objects: got %v, want ENOTFOUND saying the raw zone holds none", err)
		}
	}
	if runs, err := svc.Runs(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("runs after refused starts: %+v, %v; want none", runs, err)
	}
}

func TestServiceHoldsAtMostMaxActiveRunsQueuedOrRunning(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	t0 := time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC)
	var days []string
	for i := range batch.MaxActiveRuns + 1 {
		day := t0.AddDate(0, 0, i)
		days = append(days, day.Format(time.DateOnly))
		putRaw(t, s, days[i], synthRecords(1, 0, int64(i), day))
	}
	job := newJob(t, s, teststores.Serving(t))
	entered, release := make(chan struct{}, 1), make(chan struct{})
	job.AfterCurated = func(ctx context.Context) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	svc := newService(t, job)
	defer close(release)

	first, err := svc.StartRun(ctx, days[0], batch.TriggerAPI)
	testenv.Must(t, err)
	<-entered // one run running, held
	for _, day := range days[1:batch.MaxActiveRuns] {
		_, err := svc.StartRun(ctx, day, batch.TriggerAPI)
		testenv.Must(t, err)
	}
	_, err = svc.StartRun(ctx, days[batch.MaxActiveRuns], batch.TriggerAPI)
	if pin.ErrorCode(err) != pin.ETOOMANY || !strings.Contains(pin.ErrorMessage(err), "GET /batch/runs") {
		t.Fatalf("run %d while %d are queued or running: got %v, want ETOOMANY", batch.MaxActiveRuns+1, batch.MaxActiveRuns, err)
	}
	runs, err := svc.Runs(ctx, 100)
	testenv.Must(t, err)
	if len(runs) != batch.MaxActiveRuns {
		t.Fatalf("%d runs recorded, want %d", len(runs), batch.MaxActiveRuns)
	}
	if got, err := svc.Run(ctx, first.ID); err != nil || got.Status != batch.StatusRunning {
		t.Fatalf("first run: %+v %v, want running", got, err)
	}
}

// heldDays is a serving store in which some days are held by a live run
// of another process: LockDay refuses them with ECONFLICT, as Cassandra
// does (where hold takes the day for real). It counts the locks it handed
// out that are not released yet.
type heldDays struct {
	batch.ServingStore
	mu          sync.Mutex
	held        map[string]func()
	outstanding int
}

func (h *heldDays) hold(t *testing.T, dt string) {
	unlock, err := h.ServingStore.LockDay(context.Background(), dt, "live-run-"+dt)
	testenv.Must(t, err)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held[dt] = unlock
}

// release frees dt as a process that died holding it would, after its
// lock's time: without recording anything.
func (h *heldDays) release(dt string) {
	h.mu.Lock()
	unlock := h.held[dt]
	delete(h.held, dt)
	h.mu.Unlock()
	unlock()
}

func (h *heldDays) LockDay(ctx context.Context, dt, owner string) (func(), error) {
	unlock, err := h.ServingStore.LockDay(ctx, dt, owner)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, held := h.held[dt]; held {
		// The embedded stand-in admits one process, so it never refuses.
		unlock()
		return nil, pin.Errorf(pin.ECONFLICT, "A run for %s is already running in another pinpipe (run live-run-%s).", dt, dt)
	}
	h.outstanding++
	var once sync.Once
	return func() {
		once.Do(func() {
			unlock()
			h.mu.Lock()
			h.outstanding--
			h.mu.Unlock()
		})
	}, nil
}

func (h *heldDays) locked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outstanding
}

func TestServiceLeavesAnUnfinishedRunWhoseDayALiveRunHolds(t *testing.T) {
	ctx := context.Background()
	store := &heldDays{ServingStore: teststores.Serving(t), held: map[string]func(){}}
	started := time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)
	// live is running in another pinpipe (say, `pinpipe batch`), which
	// holds its day; left was running in a pinpipe that stopped.
	live := batch.Run{ID: "20240502T080000.000000Z-aaaaaa", Date: "2024-05-01", Trigger: batch.TriggerCLI,
		Status: batch.StatusRunning, StartedAt: &started}
	left := batch.Run{ID: "20240430T080000.000000Z-bbbbbb", Date: "2024-04-29", Trigger: batch.TriggerSchedule,
		Status: batch.StatusRunning, StartedAt: &started}
	testenv.Must(t, store.SaveRun(ctx, live))
	testenv.Must(t, store.SaveRun(ctx, left))
	store.hold(t, live.Date)

	svc := newService(t, newJob(t, openLake(t), store))
	batch.SetStaleRecheck(svc, 50*time.Millisecond)
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error)
	go func() { served <- svc.Serve(sctx) }()
	defer func() {
		stop()
		testenv.Must(t, <-served)
	}()

	// The history is read newest first, so live was looked at before left.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		r, err := store.Run(ctx, left.ID)
		return err == nil && r.Status == batch.StatusFailed, "the stopped pinpipe's run is " + r.Status
	})
	if r, err := store.Run(ctx, live.ID); err != nil || r.Status != batch.StatusRunning || r.FinishedAt != nil {
		t.Fatalf("the live run was changed: %+v, %v", r, err)
	}
	// A run is saved as failed before its day lock is released: await it.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		n := store.locked()
		return n == 0, fmt.Sprintf("%d day locks taken to check for stale runs are still held", n)
	})

	// Once the day is free (its holder died, its lock ran out), the run
	// is marked failed on a later look.
	store.release(live.Date)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		r, err := store.Run(ctx, live.ID)
		return err == nil && r.Status == batch.StatusFailed, "the run whose day was freed is " + r.Status
	})
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		n := store.locked()
		return n == 0, fmt.Sprintf("%d day locks left held", n)
	})
}

func TestServiceFailsARunWhoseJobPanicsAndFreesItsDayAndSlot(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	store := &heldDays{ServingStore: teststores.Serving(t), held: map[string]func(){}}
	job := newJob(t, s, store)
	panicking := true
	job.AfterCurated = func(context.Context) error {
		if panicking {
			panic("a bad day")
		}
		return nil
	}
	svc := newService(t, job)

	failed, err := svc.RunNow(ctx, d.dt, batch.TriggerCLI, nil)
	if err == nil || failed.Status != batch.StatusFailed || !strings.Contains(failed.Error, "a bad day") {
		t.Fatalf("the run whose job panicked: %+v, %v; want failed naming the panic", failed, err)
	}
	if got, err := store.Run(ctx, failed.ID); err != nil || got.Status != batch.StatusFailed {
		t.Fatalf("the panicked run as stored: %+v, %v", got, err)
	}
	if n := store.locked(); n != 0 {
		t.Fatalf("the panicked run left %d day locks held", n)
	}
	// The slot and the day are free: the next run of the day runs.
	panicking = false
	run, err := svc.RunNow(ctx, d.dt, batch.TriggerCLI, nil)
	testenv.Must(t, err)
	if run.Status != batch.StatusSucceeded || run.RowsOut != int64(d.unique) {
		t.Fatalf("the run after the panic: %+v", run)
	}
}

// losingStore acknowledges the first record of a finished run it is asked
// to save and drops it, as a single Cassandra node killed right after the
// write can.
type losingStore struct {
	batch.ServingStore
	lost bool
}

func (s *losingStore) SaveRun(ctx context.Context, r batch.Run) error {
	if !s.lost && r.Status == batch.StatusSucceeded {
		s.lost = true
		return nil
	}
	return s.ServingStore.SaveRun(ctx, r)
}

// A finished run whose record the store lost is still answered as
// finished by the process that ran it, which saves the record again.
func TestServiceAnswersAFinishedRunWhoseRecordTheStoreLost(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	store := &losingStore{ServingStore: teststores.Serving(t)}
	svc := newService(t, newJob(t, s, store))
	run, err := svc.RunNow(ctx, d.dt, batch.TriggerCLI, nil)
	testenv.Must(t, err)
	if run.Status != batch.StatusSucceeded || !store.lost {
		t.Fatalf("the run: %+v, its record lost: %v", run, store.lost)
	}
	if r, err := store.ServingStore.Run(ctx, run.ID); err != nil || r.Status != batch.StatusRunning {
		t.Fatalf("the stored record: %+v %v, want the lost write's predecessor, running", r, err)
	}
	runs, err := svc.Runs(ctx, 10)
	testenv.Must(t, err)
	if len(runs) != 1 || runs[0].Status != batch.StatusSucceeded {
		t.Errorf("Runs: %+v, want the one run, succeeded", runs)
	}
	got, err := svc.Run(ctx, run.ID)
	testenv.Must(t, err)
	if got.Status != batch.StatusSucceeded || got.RowsOut != run.RowsOut {
		t.Errorf("Run: %+v, want %+v", got, run)
	}
	if r, err := store.ServingStore.Run(ctx, run.ID); err != nil || r.Status != batch.StatusSucceeded {
		t.Errorf("the stored record after Run: %+v %v, want it saved again, succeeded", r, err)
	}
}
