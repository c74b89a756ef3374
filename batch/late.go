package batch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/robfig/cron/v3"

	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// scheduleCheck adds the late-data checker to sched: every LateCheck, at
// times that are multiples of it (so every instance's scheduler fires at
// the same minute and the distributed locker lets one of them run it).
func (s *Service) scheduleCheck(sched gocron.Scheduler) error {
	next := s.o.Clock.Now().Truncate(s.o.LateCheck).Add(s.o.LateCheck)
	_, err := sched.NewJob(gocron.DurationJob(s.o.LateCheck),
		gocron.NewTask(func() {
			if _, err := s.CheckLate(s.ctx); err != nil {
				s.o.Log.Warn("batch: the late-data check did not finish; the next one tries again", slog.Any("err", err))
			}
		}),
		gocron.WithName("late-data check"),
		gocron.WithStartAt(gocron.WithStartDateTime(next)),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
	)
	if err != nil {
		return fmt.Errorf("batch: schedule the late-data check every %s (PINPIPE_LATE_CHECK_INTERVAL): %w", s.o.LateCheck, err)
	}
	s.o.Log.Info("batch: late-data check scheduled", slog.Duration("every", s.o.LateCheck),
		slog.Int("lookback_days", s.o.LateLookback), slog.Duration("raw_retention", s.o.RawRetention))
	return nil
}

// LateCheck is what one late-data check found and did.
type LateCheck struct {
	Stale      []string // days in the lookback whose raw zone gained records after their committed run
	Incomplete []string // days in the lookback that are over but not complete
	Started    []Run    // runs it queued: late-data and completed
	Expired    []string // days whose raw and rejected objects retention removed
}

// CheckLate looks at the days from yesterday back LateLookback days (UTC,
// by the service's clock) and queues a run for each that is over and
// complete and either stale (trigger "late-data") or never curated though
// its scheduled run should have ended by now (trigger "completed"); then,
// with RawRetention set, removes the raw and rejected objects of curated
// days older than that (see expire). Days this process's schedule still
// waits for, or runs already, are left alone. The schedule runs it every
// LateCheck on one instance; tests call it directly. Returns what it did,
// and an error naming the step when S3 did not answer (a run refused for
// one day is logged, not returned).
func (s *Service) CheckLate(ctx context.Context) (LateCheck, error) {
	var out LateCheck
	now := s.now()
	today := now.Format(time.DateOnly)
	first := now.AddDate(0, 0, -s.o.LateLookback).Format(time.DateOnly)
	days, err := zoneDays(ctx, s.o.Job.Lake, layout.Raw)
	if err != nil {
		return out, fmt.Errorf("batch: late-data check: %w", err)
	}
	for _, dt := range days {
		if dt < first || dt >= today {
			continue
		}
		d, err := readDay(ctx, s.o.Job.Lake, dt)
		if err != nil {
			return out, fmt.Errorf("batch: late-data check: %w", err)
		}
		if len(d.raw) == 0 || d.expired {
			continue
		}
		if d.stale {
			out.Stale = append(out.Stale, dt)
		}
		trigger := ""
		switch {
		case d.stale:
			trigger = TriggerLateData
		case d.committed == "" && s.scheduleMissed(dt, now):
			trigger = TriggerCompleted
		}
		c, err := s.dayComplete(ctx, dt, now)
		if err != nil {
			s.o.Log.Warn("batch: whether a day is complete could not be told; the next check asks again", slog.String("dt", dt), slog.Any("err", err))
			continue
		}
		if c.Over && !c.Complete {
			out.Incomplete = append(out.Incomplete, dt)
		}
		if trigger == "" || !c.Complete {
			continue
		}
		s.mu.Lock()
		waiting := s.waiting[dt]
		s.mu.Unlock()
		if waiting {
			continue
		}
		run, err := s.StartRun(ctx, dt, trigger)
		if err != nil {
			s.o.Log.Warn("batch: a run for a stale or uncurated day was not started", slog.String("dt", dt), slog.String("trigger", trigger),
				slog.String("why", pin.ErrorMessage(err)))
			continue
		}
		s.o.Log.Info("batch: a day's raw zone changed since it was curated; it runs again", slog.String("dt", dt),
			slog.String("trigger", trigger), slog.String("run", run.ID), slog.String("committed_run", d.committed))
		out.Started = append(out.Started, run)
	}
	if m := s.o.Metrics; m != nil {
		m.StaleDays.Set(float64(len(out.Stale)))
		m.IncompleteDays.Set(float64(len(out.Incomplete)))
	}
	if s.o.RawRetention > 0 {
		out.Expired, err = s.expire(ctx, now)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// scheduleMissed reports whether the daily schedule's run for day dt —
// its firing on the next day, plus the wait for completeness — should
// have ended by now. False without a schedule, or when the schedule does
// not fire on the next day.
func (s *Service) scheduleMissed(dt string, now time.Time) bool {
	if s.o.Cron == "" {
		return false
	}
	sched, err := cron.ParseStandard(s.o.Cron)
	if err != nil {
		return false
	}
	d, err := time.Parse(time.DateOnly, dt)
	if err != nil {
		return false
	}
	next := d.AddDate(0, 0, 1)
	firing := sched.Next(next.Add(-time.Second))
	if !firing.Before(next.AddDate(0, 0, 1)) {
		return false
	}
	return !now.Before(firing.Add(s.o.Wait))
}
