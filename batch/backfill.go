package batch

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/pin"
)

// MaxBackfillDays bounds the days of one backfill.
const MaxBackfillDays = 366

// StartBackfill queues one run per day from..to (YYYY-MM-DD, inclusive)
// and returns them at once, in date order; they run in the background in
// that order, Concurrency at a time. Days that get no run (no raw
// records, a run already active, the raw zone expired) are listed in
// Skipped. Returns EINVALID for a malformed or future day, from after to,
// or a range past MaxBackfillDays; ENOTFOUND when no day of the range can
// run; ETOOMANY while another backfill of this process runs; EUNAVAILABLE
// after shutdown began or when the raw zone cannot be read.
func (s *Service) StartBackfill(ctx context.Context, from, to, trigger string) (pin.Backfill, error) {
	b, err := s.planBackfill(ctx, from, to, trigger)
	if err != nil {
		return b, err
	}
	go func() {
		defer s.wg.Done()
		s.runBackfill(s.ctx, b.Runs, nil)
	}()
	return b, nil
}

// Backfill runs from..to like StartBackfill, in the foreground, and
// returns once every day's run finished, with the finished runs; progress,
// when not nil, is called with the days done and the days to run, once
// before the first run and then as each run finishes, by one run at a
// time. Returns the same errors as StartBackfill; a failed day does not
// stop the others.
func (s *Service) Backfill(ctx context.Context, from, to, trigger string, progress func(done, total int)) (pin.Backfill, error) {
	b, err := s.planBackfill(ctx, from, to, trigger)
	if err != nil {
		return b, err
	}
	defer s.wg.Done()
	if progress != nil {
		progress(0, len(b.Runs))
	}
	b.Runs = s.runBackfill(ctx, b.Runs, progress)
	return b, nil
}

// planBackfill checks the range and registers a queued run per day that
// can run; on success the caller owns one count of s.wg.
func (s *Service) planBackfill(ctx context.Context, from, to, trigger string) (pin.Backfill, error) {
	b := pin.Backfill{From: from, To: to, Runs: []Run{}, Skipped: []pin.SkippedDay{}}
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return b, pin.Errorf(pin.EINVALID, `"from" and "to" must be days as YYYY-MM-DD, got %q and %q.`, from, to)
	}
	today := s.now().Format(time.DateOnly)
	switch n := int(t.Sub(f).Hours()/24) + 1; {
	case t.Before(f):
		return b, pin.Errorf(pin.EINVALID, `"from" (%s) is after "to" (%s); give the earlier day first.`, from, to)
	case to > today:
		return b, pin.Errorf(pin.EINVALID, `"to" (%s) is in the future (today is %s UTC); there are no pins for it yet.`, to, today)
	case n > MaxBackfillDays:
		return b, pin.Errorf(pin.EINVALID, "The range %s to %s is %d days; a backfill runs at most %d. Split it into several.", from, to, n, MaxBackfillDays)
	}
	s.mu.Lock()
	busy := s.backfilling
	if !busy {
		s.backfilling = true
	}
	s.mu.Unlock()
	if busy {
		return b, pin.Errorf(pin.ETOOMANY, "A backfill is already running in this pinpipe; start this one when it has finished (GET /batch/runs).")
	}
	done := false
	defer func() {
		if !done {
			s.mu.Lock()
			s.backfilling = false
			s.mu.Unlock()
		}
	}()
	var days []string
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		dt := d.Format(time.DateOnly)
		switch err := s.checkRawDay(ctx, dt); pin.ErrorCode(err) {
		case "":
			days = append(days, dt)
		case pin.ENOTFOUND, pin.ECONFLICT:
			b.Skipped = append(b.Skipped, pin.SkippedDay{Date: dt, Reason: pin.ErrorMessage(err)})
		default:
			return b, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return b, pin.Errorf(pin.EUNAVAILABLE, "pinpipe is shutting down; start the backfill again once it is back.")
	}
	// IDs one microsecond apart keep the runs in date order in the history.
	at := time.Now()
	for i, dt := range days {
		if id, ok := s.active[dt]; ok {
			b.Skipped = append(b.Skipped, pin.SkippedDay{Date: dt,
				Reason: "A run for " + dt + " is already queued or running (id " + id + ")."})
			continue
		}
		run := Run{ID: newRunID(at.Add(time.Duration(i) * time.Microsecond)), Date: dt, Trigger: trigger, Status: StatusQueued}
		s.active[dt] = run.ID
		s.pending[run.ID] = run
		if m := s.o.Metrics; m != nil {
			m.Started.WithLabelValues(trigger).Inc()
		}
		b.Runs = append(b.Runs, run)
	}
	if len(b.Runs) == 0 {
		return b, pin.Errorf(pin.ENOTFOUND, "No day from %s to %s can run: the raw zone holds no pins for them, or they are running already. Check GET /batch/days.", from, to)
	}
	done = true
	s.wg.Add(1)
	return b, nil
}

// runBackfill runs runs in order, Concurrency at a time, and returns them
// finished. Once ctx ends, the runs not started yet are dropped: they
// were never recorded, and the backfill can be started again.
func (s *Service) runBackfill(ctx context.Context, runs []Run, progress func(done, total int)) []Run {
	defer func() {
		s.mu.Lock()
		s.backfilling = false
		s.mu.Unlock()
	}()
	out := make([]Run, len(runs))
	var (
		mu   sync.Mutex // progress is called by one run at a time
		done int
	)
	var g errgroup.Group
	g.SetLimit(s.o.Concurrency)
	for i, run := range runs {
		if ctx.Err() != nil {
			s.mu.Lock()
			for _, r := range runs[i:] {
				delete(s.active, r.Date)
				delete(s.pending, r.ID)
			}
			s.mu.Unlock()
			out = out[:i]
			break
		}
		g.Go(func() error {
			out[i] = s.execute(ctx, run, nil)
			if progress != nil {
				mu.Lock()
				defer mu.Unlock()
				done++
				progress(done, len(runs))
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}
