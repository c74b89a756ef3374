package batch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"pinpipe/lake/layout"
)

// expire removes the raw and rejected objects of every day older than
// RawRetention before now that a run committed and that is not stale, and
// leaves the raw zone's marker (layout.ExpiredKey) first, so the day is
// never run again over a partial raw zone. A day without a committed run,
// or stale, keeps its objects, and the log says why. Returns the days it
// emptied, and an error naming the step when S3 did not answer; a day it
// began is finished by the next check.
func (s *Service) expire(ctx context.Context, now time.Time) ([]string, error) {
	cutoff := now.Add(-s.o.RawRetention).Format(time.DateOnly)
	lk := s.o.Job.Lake
	raw, err := zoneDays(ctx, lk, layout.Raw)
	if err != nil {
		return nil, fmt.Errorf("batch: retention: %w", err)
	}
	rejected, err := zoneDays(ctx, lk, layout.Rejected)
	if err != nil {
		return nil, fmt.Errorf("batch: retention: %w", err)
	}
	days := slices.Compact(slices.Sorted(slices.Values(append(raw, rejected...))))
	var emptied []string
	for _, dt := range days {
		if dt >= cutoff {
			break
		}
		d, err := readDay(ctx, lk, dt)
		if err != nil {
			return emptied, fmt.Errorf("batch: retention: %w", err)
		}
		rej, err := lk.List(ctx, layout.Rejected.DayPrefix(dt))
		if err != nil {
			return emptied, fmt.Errorf("batch: retention: list the rejected zone of %s: %w", dt, err)
		}
		if len(d.raw) == 0 && len(rej) == 0 {
			continue
		}
		log := s.o.Log.With(slog.String("dt", dt), slog.Duration("retention", s.o.RawRetention))
		switch {
		case d.committed == "":
			log.Warn("batch: retention keeps a day older than PINPIPE_RAW_RETENTION: no run committed it yet; run it (POST /batch/runs) and the next check removes it")
			continue
		case d.stale:
			log.Warn("batch: retention keeps a day older than PINPIPE_RAW_RETENTION: its raw zone gained records after its committed run; run it again (POST /batch/runs) and the next check removes it")
			continue
		}
		remove := d.raw
		if d.expired {
			// An earlier check began the day; what it left is removed,
			// while records that landed since stay: the day cannot run
			// again, so the raw zone is the only place that holds them.
			remove = slices.DeleteFunc(slices.Clone(d.raw), func(o RawObject) bool { return slices.Contains(d.late, o) })
			if len(d.late) > 0 {
				log.Warn("batch: retention keeps records that landed after it removed their day's raw zone; the day cannot run again, so only pins_raw holds them",
					slog.Int("raw_objects", len(d.late)))
			}
		} else if len(d.raw) > 0 {
			if err := lk.Put(ctx, layout.ExpiredKey(dt), bytes.NewReader([]byte(d.committed+"\n"))); err != nil {
				return emptied, fmt.Errorf("batch: retention: mark %s expired: %w", dt, err)
			}
		}
		if len(remove) == 0 && len(rej) == 0 {
			continue
		}
		keys := make([]string, 0, len(remove)+len(rej))
		for _, o := range remove {
			keys = append(keys, o.Key)
		}
		for _, o := range rej {
			keys = append(keys, o.Key)
		}
		if err := lk.Delete(ctx, keys...); err != nil {
			return emptied, fmt.Errorf("batch: retention: remove the raw and rejected objects of %s: %w", dt, err)
		}
		if m := s.o.Metrics; m != nil {
			m.Expired.WithLabelValues("raw").Add(float64(len(remove)))
			m.Expired.WithLabelValues("rejected").Add(float64(len(rej)))
			m.ExpiredDays.Inc()
		}
		log.Info("batch: retention removed a curated day's raw and rejected objects", slog.Int("raw_objects", len(remove)),
			slog.Int("rejected_objects", len(rej)), slog.String("committed_run", d.committed))
		emptied = append(emptied, dt)
	}
	return emptied, nil
}
