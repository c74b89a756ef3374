package batch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"

	"pinpipe/pin"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	Job *Job
	// Cron is the schedule, in UTC, of the daily run for yesterday
	// (trigger "schedule"); "" schedules nothing.
	Cron    string
	Log     *slog.Logger
	Metrics *JobMetrics
	// Locker keeps each firing of the schedule to one instance of the
	// cluster (see ScheduleLocker); nil: ScheduleLocker(Job.Store, …).
	Locker gocron.Locker
	// Clock drives the schedule, the wait for completeness and the
	// late-data checker; nil: the real clock. Tests pass a fake.
	Clock clockwork.Clock
	// Barrier, when set, runs before each on-demand run (trigger api or
	// cli), so the run includes every pin accepted before it was asked
	// for; a barrier that fails fails the run.
	Barrier *Barrier

	// Completeness tells when a day's raw zone is whole. nil: a day is
	// complete as soon as it is over (its end has passed).
	Completeness Completeness
	// Wait is how long the scheduled run waits for its day to be complete
	// before it records a failed run (PINPIPE_BATCH_WAIT); 0: 2h.
	Wait time.Duration
	// Poll is how often a waiting scheduled run asks again; 0: 30s.
	Poll time.Duration
	// LateCheck is how often the late-data checker runs
	// (PINPIPE_LATE_CHECK_INTERVAL); 0: never.
	LateCheck time.Duration
	// LateLookback is how many days back from yesterday the checker looks
	// (PINPIPE_LATE_LOOKBACK); 0: 7.
	LateLookback int
	// RawRetention is how long raw and rejected days are kept once they
	// are curated (PINPIPE_RAW_RETENTION); the checker removes older
	// ones. 0: forever.
	RawRetention time.Duration
	// Concurrency is how many runs one process runs at once, and a
	// backfill's days at a time (PINPIPE_BATCH_CONCURRENCY); 0: 1.
	Concurrency int
}

// Defaults of ServiceOptions' zero values.
const (
	DefaultWait         = 2 * time.Hour
	DefaultPoll         = 30 * time.Second
	DefaultLateLookback = 7
)

// Service is run control for the daily job, like Airflow's: it starts runs
// on a schedule or on request, one per day at a time and one at a time in
// all (others wait as "queued"), records every run in the serving store's
// history, and answers the serving reads. It implements server.BatchService
// and server.Serving.
type Service struct {
	o      ServiceOptions
	store  ServingStore
	ctx    context.Context // ends at shutdown, interrupting the running run
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slot   chan struct{} // held by the running run
	// staleRecheck is how often Serve looks again at unfinished runs a
	// live run's day lock kept it from marking failed.
	staleRecheck time.Duration

	// scheduleStopped keeps this instance from bidding for further
	// firings of the schedule (StopSchedule).
	scheduleStopped atomic.Bool

	mu     sync.Mutex
	closed bool
	active map[string]string // dt → id of its queued or running run
	// pending holds this process's runs whose latest state the store may
	// not have: active ones, and finished ones whose record could not be
	// saved (say, Cassandra was down); they are saved again before each
	// run and overlay the store's history in Runs and Run.
	pending map[string]Run
	// finished holds the last finishedKept runs this process finished, in
	// finishedOrder, for a store that lost a record it had acknowledged
	// (a single Cassandra node killed right after the write): Run and Runs
	// answer with them over a record still queued or running, and Run
	// saves them again.
	finished      map[string]Run
	finishedOrder []string
	// waiting holds the days whose scheduled run waits for completeness.
	waiting map[string]bool
	// backfilling is true while a backfill of this process runs.
	backfilling bool
}

// NewService returns a Service for o.Job; call Serve to start its schedule,
// or RunNow to run once in the foreground.
func NewService(o ServiceOptions) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	o.Wait = cmp.Or(o.Wait, DefaultWait)
	o.Poll = cmp.Or(o.Poll, DefaultPoll)
	o.LateLookback = cmp.Or(o.LateLookback, DefaultLateLookback)
	o.Concurrency = max(o.Concurrency, 1)
	return &Service{
		o: o, store: o.Job.Store, ctx: ctx, cancel: cancel, slot: make(chan struct{}, o.Concurrency), staleRecheck: DayLockTTL,
		active: map[string]string{}, pending: map[string]Run{}, finished: map[string]Run{}, waiting: map[string]bool{},
	}
}

// finishedKept is how many finished runs a Service remembers.
const finishedKept = 100

// now returns the time by the service's clock.
func (s *Service) now() time.Time { return s.o.Clock.Now().UTC() }

// Job returns the job the service runs. Set its hooks before starting
// runs.
func (s *Service) Job() *Job { return s.o.Job }

// Serve marks runs a stopped process left queued or running as failed
// (see recoverStale), then runs the schedule until ctx ends. Unfinished
// runs whose day a live run holds are looked at again every DayLockTTL
// while there are any, as a process that died holding a day frees it
// within that time. Once ctx ends, Serve stops the schedule, interrupts
// the running run (recorded as failed, "interrupted by shutdown"), waits
// for it and returns nil. Returns an error only when the
// schedule cannot be set up.
func (s *Service) Serve(ctx context.Context) error {
	defer s.Close()
	held := s.recoverStale(ctx)
	if s.o.Cron != "" || s.o.LateCheck > 0 {
		locker := s.o.Locker
		if locker == nil {
			locker = ScheduleLocker(s.store, s.o.Clock.Now)
		}
		locker = stoppableLocker{Locker: locker, stopped: &s.scheduleStopped}
		sched, err := gocron.NewScheduler(gocron.WithLocation(time.UTC), gocron.WithClock(s.o.Clock), gocron.WithDistributedLocker(locker))
		if err != nil {
			return fmt.Errorf("batch: scheduler: %w", err)
		}
		defer func() { _ = sched.Shutdown() }()
		if s.o.Cron != "" {
			_, err = sched.NewJob(gocron.CronJob(s.o.Cron, false), gocron.NewTask(s.scheduled), gocron.WithName("daily batch run"))
			if err != nil {
				return fmt.Errorf("batch: schedule %q (PINPIPE_BATCH_CRON): %w", s.o.Cron, err)
			}
			s.o.Log.Info("batch: daily run scheduled", slog.String("cron", s.o.Cron), slog.String("tz", "UTC"),
				slog.Duration("wait_for_complete", s.o.Wait))
		}
		if s.o.LateCheck > 0 {
			if err := s.scheduleCheck(sched); err != nil {
				return err
			}
		}
		sched.Start()
	}
	recheck := time.NewTimer(s.staleRecheck)
	defer recheck.Stop()
	if held == 0 {
		recheck.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recheck.C:
			if s.recoverStale(ctx) > 0 {
				recheck.Reset(s.staleRecheck)
			}
		}
	}
}

// StopSchedule makes this instance bid for no further firing of the
// schedule, so another instance of the cluster wins them; runs already
// started go on. A stopping pinpipe calls it as its drain begins: a firing
// it won then would be interrupted by its own shutdown moments later,
// which leaves the day without its scheduled run. It cannot be undone.
func (s *Service) StopSchedule() { s.scheduleStopped.Store(true) }

// stoppableLocker loses every firing once stopped, without asking the
// cluster, so that the firing stays free for the other instances.
type stoppableLocker struct {
	gocron.Locker
	stopped *atomic.Bool
}

func (l stoppableLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	if l.stopped.Load() {
		return nil, errNotElected
	}
	return l.Locker.Lock(ctx, key)
}

// Close stops accepting runs, interrupts the running one and waits for it.
// It is safe to call more than once.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// MaxActiveRuns bounds the runs one process holds queued or running at
// once; past it StartRun refuses with ETOOMANY.
const MaxActiveRuns = 16

// StartRun queues a run for date (YYYY-MM-DD) and returns it at once; it
// runs in the background when no other run is running. Returns an
// ECONFLICT error when a run for date is queued or running, EINVALID for a
// malformed date or one in the future, ENOTFOUND when the raw zone holds
// nothing for date (a run would only empty the day), ETOOMANY when
// MaxActiveRuns runs are queued or running, EUNAVAILABLE after shutdown
// began or when the raw zone cannot be listed.
func (s *Service) StartRun(ctx context.Context, date, trigger string) (Run, error) {
	run, err := s.begin(ctx, date, trigger, true)
	if err != nil {
		return Run{}, err
	}
	go func() {
		defer s.wg.Done()
		s.execute(s.ctx, run, nil)
	}()
	return run, nil
}

// RunNow runs the job for date in the foreground and returns the finished
// run; progress, when not nil, follows it. Returns the same errors as
// StartRun, and an error holding the run's error when the run failed.
func (s *Service) RunNow(ctx context.Context, date, trigger string, progress func(Progress)) (Run, error) {
	run, err := s.begin(ctx, date, trigger, false)
	if err != nil {
		return Run{}, err
	}
	run = s.execute(ctx, run, progress)
	if run.Status != StatusSucceeded {
		return run, errors.New(run.Error)
	}
	return run, nil
}

// begin checks date and registers a queued run for it; background adds
// the goroutine that will run it to the ones Close waits for.
func (s *Service) begin(ctx context.Context, date, trigger string, background bool) (Run, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return Run{}, pin.Errorf(pin.EINVALID, "The date must be a day as YYYY-MM-DD, got %q.", date)
	}
	if today := s.now().Format(time.DateOnly); d.Format(time.DateOnly) > today {
		return Run{}, pin.Errorf(pin.EINVALID, "The date %s is in the future (today is %s UTC); there are no pins for it yet.", date, today)
	}
	// Today's pins may all still be in the landing's open batches; the
	// barrier brings them, and the run fails if it brings none.
	if err := s.checkRawDay(ctx, date); err != nil && !s.barrierMayLand(date, trigger, err) {
		return Run{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Run{}, pin.Errorf(pin.EUNAVAILABLE, "pinpipe is shutting down; start the run again once it is back.")
	}
	if id, ok := s.active[date]; ok {
		return Run{}, pin.Errorf(pin.ECONFLICT, "A run for %s is already queued or running (id %s); wait for it to finish (GET /batch/runs/%s).", date, id, id)
	}
	if len(s.active) >= MaxActiveRuns {
		return Run{}, pin.Errorf(pin.ETOOMANY, "%d batch runs are already queued or running, the most pinpipe holds at once; start this one when some have finished (GET /batch/runs).", len(s.active))
	}
	run := Run{ID: newRunID(time.Now()), Date: date, Trigger: trigger, Status: StatusQueued}
	s.active[date] = run.ID
	s.pending[run.ID] = run
	if m := s.o.Metrics; m != nil {
		m.Started.WithLabelValues(trigger).Inc()
	}
	if background {
		s.wg.Add(1)
	}
	return run, nil
}

// barrierMayLand reports whether a run for date that checkRawDay refused
// with err may still find raw pins after its barrier: an on-demand run for
// today with a barrier set.
func (s *Service) barrierMayLand(date, trigger string, err error) bool {
	return s.o.Barrier != nil && trigger != TriggerSchedule && pin.ErrorCode(err) == pin.ENOTFOUND &&
		date == time.Now().UTC().Format(time.DateOnly)
}

// checkRawDay returns ENOTFOUND when the raw zone holds no object for
// date: a run would find no pins and replace the day's curated and serving
// rows with nothing. Returns ECONFLICT when retention removed the day's
// raw objects (a run would replace the day with only what landed since),
// EUNAVAILABLE when the zone cannot be listed.
func (s *Service) checkRawDay(ctx context.Context, date string) error {
	if s.o.Job.Lake == nil {
		return nil
	}
	d, err := readDay(ctx, s.o.Job.Lake, date)
	if err != nil {
		return pin.Errorf(pin.EUNAVAILABLE, "The raw zone could not be read to find the pins of %s: %v. Check GET /readyz, then retry.", date, err)
	}
	if d.expired {
		return pin.Errorf(pin.ECONFLICT, "The raw zone of %s was removed by PINPIPE_RAW_RETENTION after the day was curated (run %s), so it cannot run again: a run would replace the day with only what landed since. The curated zone and the serving tables still hold it.", date, cmp.Or(d.committed, "unknown"))
	}
	if len(d.raw) == 0 {
		return pin.Errorf(pin.ENOTFOUND, "The raw zone holds no pins for %s, so there is nothing to run. Pins accepted within the last PINPIPE_LANDING_INTERVAL may not have landed yet; retry then.", date)
	}
	return nil
}

// execute waits for the run slot, runs the job, records the outcome and
// returns the finished run. The outcome is recorded before the day's lock
// and the slot are released, so whoever takes the day next sees the run
// finished; both are released on every path out, a panic included.
func (s *Service) execute(ctx context.Context, run Run, progress func(Progress)) Run {
	s.savePending(ctx)
	s.save(ctx, run)
	log := s.o.Log.With(slog.String("run", run.ID), slog.String("dt", run.Date), slog.String("trigger", run.Trigger))
	if s.o.Barrier != nil && run.Trigger != TriggerSchedule {
		began := time.Now()
		if err := s.o.Barrier.Wait(ctx); err != nil {
			return s.end(ctx, run, JobResult{}, err, log)
		}
		log.Info("batch: the raw zone holds everything accepted before the run", slog.Duration("waited", time.Since(began)))
		if err := s.checkRawDay(ctx, run.Date); err != nil {
			return s.end(ctx, run, JobResult{}, err, log)
		}
	}
	select {
	case s.slot <- struct{}{}:
		defer func() { <-s.slot }()
	case <-ctx.Done():
		return s.end(ctx, run, JobResult{}, ctx.Err(), log)
	}
	unlock, err := s.store.LockDay(ctx, run.Date, run.ID)
	if err != nil {
		return s.end(ctx, run, JobResult{}, err, log)
	}
	defer unlock()
	now := time.Now().UTC()
	run.Status, run.StartedAt = StatusRunning, &now
	run.Complete = s.completeAtStart(ctx, run.Date)
	s.save(ctx, run)
	log.Info("batch: run started")
	res, err := s.runJob(ctx, run, progress)
	return s.end(ctx, run, res, err, log)
}

// completeAtStart returns whether the raw zone held the whole of day as a
// run of it starts: false for a day not over yet (by the service's clock),
// as it can still gain pins; with a Completeness, false also for a day it
// does not call complete (its end plus the late grace not passed, or a
// partition behind), and for one whose completeness cannot be told.
func (s *Service) completeAtStart(ctx context.Context, day string) bool {
	now := s.now()
	if day >= now.Format(time.DateOnly) {
		return false
	}
	if s.o.Completeness == nil {
		return true
	}
	c, err := s.o.Completeness.DayComplete(ctx, day, now)
	if err != nil {
		s.o.Log.Warn("batch: whether the run's day is complete could not be told; the run records complete: false",
			slog.String("dt", day), slog.Any("err", err))
		return false
	}
	return c.Complete
}

// runJob runs the job for run. Returns the job's result and error, or an
// error naming the panic when the job panicked, so one bad day fails its
// run instead of the process.
func (s *Service) runJob(ctx context.Context, run Run, progress func(Progress)) (res JobResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.o.Log.Error("batch: the job panicked", slog.String("run", run.ID), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("batch: the job failed unexpectedly (%v); this is a bug in pinpipe, and the log has its trace", v)
		}
	}()
	return s.o.Job.Run(ctx, run.Date, run.ID, progress)
}

// end records run as finished with res and err (nil for success), logs
// it and returns it.
func (s *Service) end(ctx context.Context, run Run, res JobResult, err error, log *slog.Logger) Run {
	now := time.Now().UTC()
	run.FinishedAt = &now
	run.RowsIn, run.RowsOut, run.RowsRejected = res.RowsIn, res.RowsOut, res.RowsRejected
	if err == nil {
		run.Status = StatusSucceeded
	} else {
		run.Status, run.Error = StatusFailed, s.describe(ctx, err)
	}
	s.finish(ctx, run, res)
	if err == nil {
		log.Info("batch: run succeeded", slog.Int64("rows_in", run.RowsIn), slog.Int64("rows_out", run.RowsOut),
			slog.Int64("rows_rejected", run.RowsRejected), slog.Duration("curated", res.Curated), slog.Duration("serving", res.Serving))
	} else {
		log.Error("batch: run failed", slog.String("error", run.Error))
	}
	return run
}

// describe turns a run's error into the sentence its record keeps.
func (s *Service) describe(ctx context.Context, err error) string {
	switch {
	case s.ctx.Err() != nil:
		return "interrupted by shutdown; start the run again"
	case ctx.Err() != nil:
		return "interrupted: " + context.Cause(ctx).Error() + "; start the run again"
	}
	var e *pin.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// finish records a finished run: metrics, the store, the active set.
func (s *Service) finish(ctx context.Context, run Run, res JobResult) {
	if m := s.o.Metrics; m != nil {
		if run.StartedAt != nil {
			m.RunSeconds.Observe(run.FinishedAt.Sub(*run.StartedAt).Seconds())
		}
		m.Rows.WithLabelValues("in").Add(float64(run.RowsIn))
		m.Rows.WithLabelValues("out").Add(float64(run.RowsOut))
		m.Rows.WithLabelValues("rejected").Add(float64(run.RowsRejected))
		m.Runs.WithLabelValues(run.Status).Inc()
		m.lastRun(run)
		if run.Status == StatusSucceeded {
			m.LastSuccess.Set(float64(run.FinishedAt.UnixNano()) / 1e9)
		}
	}
	// The record must be written even when the run was interrupted.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	saved := s.save(sctx, run)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, run.Date)
	if saved {
		delete(s.pending, run.ID)
	}
	s.finished[run.ID] = run
	s.finishedOrder = append(s.finishedOrder, run.ID)
	if len(s.finishedOrder) > finishedKept {
		delete(s.finished, s.finishedOrder[0])
		s.finishedOrder = s.finishedOrder[1:]
	}
}

// unfinished reports whether a run in status is yet to end.
func unfinished(status string) bool { return status == StatusQueued || status == StatusRunning }

// save writes run to the store and keeps it in pending. Returns whether
// the store took it; when not, it is saved again before the next run.
func (s *Service) save(ctx context.Context, run Run) bool {
	s.mu.Lock()
	s.pending[run.ID] = run
	s.mu.Unlock()
	if err := s.store.SaveRun(ctx, run); err != nil {
		s.o.Log.Warn("batch: the run's record was not saved; it is kept in memory and saved again before the next run",
			slog.String("run", run.ID), slog.String("status", run.Status), slog.Any("err", err))
		return false
	}
	return true
}

// savePending saves the finished runs whose records the store did not take.
func (s *Service) savePending(ctx context.Context) {
	s.mu.Lock()
	var finished []Run
	for _, r := range s.pending {
		if s.active[r.Date] != r.ID {
			finished = append(finished, r)
		}
	}
	s.mu.Unlock()
	for _, r := range finished {
		if err := s.store.SaveRun(ctx, r); err == nil {
			s.mu.Lock()
			delete(s.pending, r.ID)
			s.mu.Unlock()
		}
	}
}

// recoverStale marks runs left queued or running by a process that
// stopped as failed, and returns how many unfinished runs it left as they
// are because a live run holds their day. A run is taken for stale only
// when its day's lock is free (LockDay succeeds): a run another process
// (say, `pinpipe batch`) is running holds that lock, so it is left alone,
// and a run that process finishes is recorded before its lock is freed.
// A run another process holds queued, not yet running, holds no lock and
// is marked failed too; that process records its real state again once
// the run starts.
func (s *Service) recoverStale(ctx context.Context) (held int) {
	runs, err := s.store.Runs(ctx, 100)
	if err != nil {
		s.o.Log.Warn("batch: could not read the run history to find runs a stopped pinpipe left unfinished", slog.Any("err", err))
		return 0
	}
	for _, r := range runs {
		if !unfinished(r.Status) {
			continue
		}
		s.mu.Lock()
		_, mine := s.pending[r.ID]
		s.mu.Unlock()
		if mine {
			continue
		}
		switch marked, err := s.failStale(ctx, r); {
		case pin.ErrorCode(err) == pin.ECONFLICT:
			held++
			s.o.Log.Info("batch: an unfinished run's day is held by a live run; it is left as it is", slog.String("run", r.ID), slog.String("dt", r.Date))
		case err != nil:
			s.o.Log.Warn("batch: could not mark an unfinished run as failed", slog.String("run", r.ID), slog.Any("err", err))
		case marked:
			s.o.Log.Warn("batch: marked a run a stopped pinpipe left unfinished as failed", slog.String("run", r.ID), slog.String("dt", r.Date))
		}
	}
	return held
}

// failStale records r as failed if no live run holds its day, holding the
// day while it does, and reports whether it did. Returns an ECONFLICT
// error, recording nothing, when a live run holds the day, and false when
// r turned out finished after all.
func (s *Service) failStale(ctx context.Context, r Run) (bool, error) {
	unlock, err := s.store.LockDay(ctx, r.Date, r.ID)
	if err != nil {
		return false, err
	}
	defer unlock()
	// The run may have finished, and freed its day, since the history
	// was read.
	if now, err := s.store.Run(ctx, r.ID); err == nil && !unfinished(now.Status) {
		return false, nil
	}
	now := time.Now().UTC()
	r.Status, r.FinishedAt, r.Error = StatusFailed, &now, "interrupted: pinpipe stopped before the run finished; start the run again"
	if err := s.store.SaveRun(ctx, r); err != nil {
		return false, err
	}
	return true, nil
}

// Runs implements server.BatchService: the store's history overlaid with
// this process's newer states, newest first.
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	runs, err := s.store.Runs(ctx, limit)
	if err != nil {
		return nil, servingError("read the run history", err)
	}
	s.mu.Lock()
	for _, p := range s.pending {
		if i := slices.IndexFunc(runs, func(r Run) bool { return r.ID == p.ID }); i >= 0 {
			runs[i] = p
		} else {
			runs = append(runs, p)
		}
	}
	for i, r := range runs {
		if f, ok := s.finished[r.ID]; ok && unfinished(r.Status) {
			runs[i] = f
		}
	}
	s.mu.Unlock()
	slices.SortFunc(runs, func(a, b Run) int { return strings.Compare(b.ID, a.ID) })
	return runs[:min(limit, len(runs))], nil
}

// Run implements server.BatchService. Returns ENOTFOUND when no run has id.
func (s *Service) Run(ctx context.Context, id string) (Run, error) {
	s.mu.Lock()
	r, ok := s.pending[id]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := s.store.Run(ctx, id)
	if err != nil {
		return Run{}, servingError("read run "+id, err)
	}
	s.mu.Lock()
	f, ok := s.finished[id]
	s.mu.Unlock()
	if ok && unfinished(r.Status) {
		if err := s.store.SaveRun(ctx, f); err == nil {
			s.o.Log.Warn("batch: the serving store had lost the record of a finished run (an unclean stop of a single node?); saved it again",
				slog.String("run", id), slog.String("status", f.Status))
		}
		return f, nil
	}
	return r, nil
}

// Pin implements server.Serving. Returns ENOTFOUND when absent.
func (s *Service) Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error) {
	p, err := s.store.Pin(ctx, uniqueID)
	if err != nil {
		return pin.Cleaned{}, servingError("read pin", err)
	}
	return p, nil
}

// TopByCategory implements server.Serving.
func (s *Service) TopByCategory(ctx context.Context, category, date string, n int) ([]pin.Cleaned, error) {
	pins, err := s.store.TopByCategory(ctx, category, date, n)
	if err != nil {
		return nil, servingError("read top pins", err)
	}
	return pins, nil
}

// servingError passes application errors and cancellations through and
// makes any other store error an EUNAVAILABLE one a user can act on.
func servingError(what string, err error) error {
	var e *pin.Error
	if errors.As(err, &e) || errors.Is(err, context.Canceled) {
		return err
	}
	return &pin.Error{Code: pin.EUNAVAILABLE, Message: fmt.Sprintf("The serving store did not answer (%s): %v. Check GET /readyz, then retry.", what, err)}
}

// newRunID returns a run ID that sorts by start time:
// 20240502T080000.123456Z-3fa2c1.
func newRunID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b)
}
