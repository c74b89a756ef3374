package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// MaxDays bounds the days GET /batch/days answers at once.
const MaxDays = 90

// lakeDay is what the lake says about one day: its raw objects, whether
// retention removed them, and the run the curated zone holds it from.
type lakeDay struct {
	dt        string
	raw       []RawObject
	expired   bool   // retention left its marker (layout.ExpiredKey)
	committed string // newest run with a commit marker; "" for none
	// late are the raw objects the committed run did not read (all of
	// them when no run committed the day).
	late []RawObject
	// stale: a run committed the day and late is not empty. Never true
	// for an expired day, which can no longer be run again.
	stale bool
}

// readDay lists day dt's raw and curated partitions and, when a run
// committed the day, reads its marker. A day is stale when a raw object
// holds offsets past what the committed run read of its partition; for a
// marker from before runs kept that, when a raw object was stored after
// the run began (by the run ID's time, a clock of pinpipe against S3's:
// skew can at worst cost one needless re-run). Returns an error naming
// the step when S3 does not answer.
func readDay(ctx context.Context, lk *lake.Store, dt string) (lakeDay, error) {
	d := lakeDay{dt: dt}
	objs, err := lk.List(ctx, layout.Raw.DayPrefix(dt))
	if err != nil {
		return d, fmt.Errorf("list the raw zone of %s: %w", dt, err)
	}
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		switch {
		case ok && k.Kind == layout.RawPart:
			d.raw = append(d.raw, RawObject{Object: o, DT: k.DT, Partition: k.Partition, First: k.First, Last: k.Last})
		case ok && k.Name == layout.ExpiredName:
			d.expired = true
		}
	}
	curated, err := lk.List(ctx, layout.Curated.DayPrefix(dt))
	if err != nil {
		return d, fmt.Errorf("list the curated zone of %s: %w", dt, err)
	}
	for _, o := range curated {
		// Readers take a day from its newest committed run; run IDs sort
		// by start time.
		if k, ok := layout.Parse(o.Key); ok && k.Kind == layout.Commit && k.Run > d.committed {
			d.committed = k.Run
		}
	}
	if d.committed == "" {
		d.late = d.raw
		return d, nil
	}
	m, err := readCommit(ctx, lk, dt, d.committed)
	if err != nil {
		return d, err
	}
	for _, o := range d.raw {
		late := false
		if m.Raw == nil {
			began, ok := runTime(d.committed)
			late = ok && o.LastModified.After(began)
		} else if last, ok := m.Raw[o.Partition]; !ok || o.Last > last {
			late = true
		}
		if late {
			d.late = append(d.late, o)
		}
	}
	d.stale = len(d.late) > 0 && !d.expired
	return d, nil
}

// readCommit reads run's commit marker of day dt.
func readCommit(ctx context.Context, lk *lake.Store, dt, run string) (commitMarker, error) {
	var m commitMarker
	body, err := lk.Get(ctx, layout.CommitKey(dt, run))
	if err != nil {
		return m, fmt.Errorf("read the commit marker of %s: %w", dt, err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return m, fmt.Errorf("read the commit marker of %s: %w", dt, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode the commit marker of %s: %w", dt, err)
	}
	return m, nil
}

// runTime returns the time a run ID (newRunID) was made; false for an ID
// of another form.
func runTime(id string) (time.Time, bool) {
	stamp, _, _ := strings.Cut(id, "-")
	t, err := time.Parse("20060102T150405.000000Z", stamp)
	return t, err == nil
}

// zoneDays returns the days zone's partitions, oldest first, that hold
// objects or once did (see lake.Store.Prefixes).
func zoneDays(ctx context.Context, lk *lake.Store, zone layout.Zone) ([]string, error) {
	prefixes, err := lk.Prefixes(ctx, zone.Prefix())
	if err != nil {
		return nil, err
	}
	days := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		dt, ok := strings.CutPrefix(strings.TrimSuffix(p, "/"), zone.Prefix()+"dt=")
		if ok && layout.ValidDay(dt) {
			days = append(days, dt)
		}
	}
	return days, nil
}

// dayComplete asks the Completeness whether day is complete at now; with
// none, a day is complete once it is over (its end has passed).
func (s *Service) dayComplete(ctx context.Context, day string, now time.Time) (DayCompleteness, error) {
	if s.o.Completeness != nil {
		return s.o.Completeness.DayComplete(ctx, day, now)
	}
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return DayCompleteness{Day: day}, err
	}
	over := !now.Before(d.AddDate(0, 0, 1))
	return DayCompleteness{Day: day, Complete: over, Over: over}, nil
}

// Days implements server.BatchService: the newest n days (at most
// MaxDays) that hold raw records, or held them before retention, newest
// first, each with its completeness, whether it is stale, and its newest
// run. Returns an EUNAVAILABLE error when S3 or the run history does not
// answer; a day whose completeness cannot be told says why in
// CompletenessError.
func (s *Service) Days(ctx context.Context, n int) ([]pin.BatchDay, error) {
	n = min(max(n, 1), MaxDays)
	lk := s.o.Job.Lake
	days, err := zoneDays(ctx, lk, layout.Raw)
	if err != nil {
		return nil, lakeError(err)
	}
	runs, err := s.Runs(ctx, 1000)
	if err != nil {
		return nil, err
	}
	newest := map[string]*pin.Run{}
	for i := range runs {
		if _, ok := newest[runs[i].Date]; !ok {
			newest[runs[i].Date] = &runs[i]
		}
	}
	now := s.now()
	out := []pin.BatchDay{}
	for i := len(days) - 1; i >= 0 && len(out) < n; i-- {
		d, err := readDay(ctx, lk, days[i])
		if err != nil {
			return nil, lakeError(err)
		}
		if len(d.raw) == 0 && !d.expired {
			continue // emptied by hand; the embedded server keeps the prefix
		}
		day := pin.BatchDay{
			Day: d.dt, Stale: d.stale, Expired: d.expired, RawObjects: len(d.raw), CommittedRun: d.committed,
			Run: newest[d.dt], Behind: []pin.PartitionBehind{},
		}
		s.mu.Lock()
		day.Waiting = s.waiting[d.dt]
		s.mu.Unlock()
		c, err := s.dayComplete(ctx, d.dt, now)
		if err != nil {
			day.CompletenessError = err.Error()
		}
		day.Over, day.Complete = c.Over, c.Complete
		for _, b := range c.Behind {
			pb := pin.PartitionBehind{Partition: b.Partition, Records: b.Records, BehindSeconds: b.Behind.Seconds()}
			if !b.Landed.IsZero() {
				landed := b.Landed.UTC()
				pb.Landed = &landed
			}
			day.Behind = append(day.Behind, pb)
		}
		out = append(out, day)
	}
	return out, nil
}

// lakeError makes an S3 error one a user can act on.
func lakeError(err error) error {
	return pin.Errorf(pin.EUNAVAILABLE, "The lake (S3) did not answer: %v. Check GET /readyz, then retry.", err)
}
