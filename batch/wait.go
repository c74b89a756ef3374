package batch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"pinpipe/pin"
)

// scheduled is the daily schedule's task, run by the one instance that won
// the firing (see ScheduleLocker): it starts waiting for yesterday (UTC)
// to be complete, in the background so the scheduler is never held. A
// firing for a day this process already waits for does nothing.
func (s *Service) scheduled() {
	firing := s.now()
	day := firing.AddDate(0, 0, -1).Format(time.DateOnly)
	s.mu.Lock()
	if s.closed || s.waiting[day] {
		s.mu.Unlock()
		return
	}
	s.waiting[day] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.waiting, day)
			s.mu.Unlock()
		}()
		s.awaitComplete(s.ctx, day, firing)
	}()
}

// awaitComplete asks every Poll whether day is complete and starts its
// run (trigger "schedule") once it is. Past Wait after firing it records
// a failed run naming the partitions behind instead, and leaves the day to
// the late-data checker, which runs it (trigger "completed") once it is
// complete. It returns when ctx ends, recording nothing.
func (s *Service) awaitComplete(ctx context.Context, day string, firing time.Time) {
	log := s.o.Log.With(slog.String("dt", day), slog.String("trigger", TriggerSchedule))
	deadline := firing.Add(s.o.Wait)
	if m := s.o.Metrics; m != nil {
		m.Waiting.Inc()
		defer m.Waiting.Dec()
	}
	logged := false
	for {
		c, err := s.dayComplete(ctx, day, s.now())
		if err == nil && c.Complete {
			if _, err := s.StartRun(ctx, day, TriggerSchedule); err != nil {
				log.Warn("batch: scheduled run not started", slog.String("why", pin.ErrorMessage(err)))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !s.now().Before(deadline) {
			s.recordIncomplete(ctx, day, c, err)
			return
		}
		if !logged {
			logged = true
			log.Info("batch: the scheduled run waits for its day to be complete", slog.String("behind", describeBehind(c, err)),
				slog.Time("until", deadline))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.o.Clock.After(min(s.o.Poll, deadline.Sub(s.now()))):
		}
	}
}

// recordIncomplete records the scheduled run of day as failed because the
// day was not complete by the end of the wait.
func (s *Service) recordIncomplete(ctx context.Context, day string, c DayCompleteness, err error) {
	now := time.Now().UTC()
	run := Run{
		ID: newRunID(now), Date: day, Trigger: TriggerSchedule, Status: StatusFailed, FinishedAt: &now,
		Error: fmt.Sprintf("The raw zone of %s was not complete after waiting %s (PINPIPE_BATCH_WAIT), so the day was not run: %s. "+
			"Check that the landing is running and S3 is up (GET /readyz); the day runs by itself (trigger %q) once it is complete.",
			day, s.o.Wait, describeBehind(c, err), TriggerCompleted),
	}
	if m := s.o.Metrics; m != nil {
		m.Started.WithLabelValues(TriggerSchedule).Inc()
		m.Runs.WithLabelValues(StatusFailed).Inc()
	}
	if s.save(ctx, run) {
		s.mu.Lock()
		delete(s.pending, run.ID)
		s.mu.Unlock()
	}
	s.o.Log.Error("batch: run failed", slog.String("run", run.ID), slog.String("dt", day), slog.String("trigger", run.Trigger),
		slog.String("error", run.Error))
}

// describeBehind says which partitions keep a day from being complete, and
// by how much: "partition 0 is 120 records and 35m0s behind".
func describeBehind(c DayCompleteness, err error) string {
	if err != nil {
		return "whether it is complete could not be told: " + err.Error()
	}
	if len(c.Behind) == 0 {
		if !c.Over {
			return "the day is not over yet"
		}
		return "the landing has not stored all of it"
	}
	parts := make([]string, 0, len(c.Behind))
	for _, b := range c.Behind {
		records := "an unknown number of records"
		if b.Records > 0 {
			records = fmt.Sprintf("%d records", b.Records)
		}
		landed := "has landed nothing yet"
		if !b.Landed.IsZero() {
			landed = "last landed a record stamped " + b.Landed.UTC().Format(time.RFC3339)
		}
		parts = append(parts, fmt.Sprintf("partition %d is %s and %s behind (it %s)", b.Partition, records, b.Behind.Round(time.Second), landed))
	}
	return strings.Join(parts, "; ")
}
