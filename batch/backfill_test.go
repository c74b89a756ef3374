package batch_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

func TestBackfillRunsEachDayOfTheRangeInOrderAsItsOwnRun(t *testing.T) {
	ctx := context.Background()
	e := newLateEnv(t, time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC), batch.ServiceOptions{Concurrency: 2})
	want := map[string]int{"2026-03-01": 4, "2026-03-02": 7, "2026-03-04": 2}
	for dt, n := range want {
		at, _ := time.Parse(time.DateOnly, dt)
		recs, _ := pinRecords(0, 0, n, at.Add(time.Hour))
		putRaw(t, e.lake, dt, recs)
	}
	var seen []int
	b, err := e.svc.Backfill(ctx, "2026-03-01", "2026-03-04", batch.TriggerCLI, func(done, total int) {
		if total != 3 {
			t.Errorf("progress: %d days to run, want 3", total)
		}
		seen = append(seen, done)
	})
	testenv.Must(t, err)
	if len(b.Runs) != 3 || !slices.Equal(seen, []int{0, 1, 2, 3}) {
		t.Fatalf("backfill: %+v (progress saw %v), want 3 runs", b, seen)
	}
	for i, r := range b.Runs {
		if r.Status != batch.StatusSucceeded || r.Trigger != batch.TriggerCLI || r.RowsOut != int64(want[r.Date]) {
			t.Errorf("run %d: %+v, want succeeded with %d pins", i, r, want[r.Date])
		}
		if i > 0 && (r.Date <= b.Runs[i-1].Date || r.ID <= b.Runs[i-1].ID) {
			t.Errorf("runs out of date order: %s (%s) after %s (%s)", r.Date, r.ID, b.Runs[i-1].Date, b.Runs[i-1].ID)
		}
	}
	if len(b.Skipped) != 1 || b.Skipped[0].Date != "2026-03-03" || !strings.Contains(b.Skipped[0].Reason, "holds no pins") {
		t.Fatalf("skipped: %+v, want 2026-03-03 for holding no pins", b.Skipped)
	}
	// Each day is its own record in the history, and the curated zone
	// holds each day's pins.
	runs, err := e.store.Runs(ctx, 10)
	testenv.Must(t, err)
	if len(runs) != 3 {
		t.Fatalf("the history holds %d runs, want 3", len(runs))
	}
	for dt, n := range want {
		objs, err := e.lake.List(ctx, layout.Curated.DayPrefix(dt))
		testenv.Must(t, err)
		if len(objs) != 2 { // one part and its commit marker
			t.Errorf("curated %s: %d objects, want 2", dt, len(objs))
		}
		top, err := e.store.TopByCategory(ctx, "late", dt, 100)
		testenv.Must(t, err)
		if len(top) != n {
			t.Errorf("serving %s: %d pins, want %d", dt, len(top), n)
		}
	}
}

func TestBackfillRefusesABadRangeWithAReason(t *testing.T) {
	e := newLateEnv(t, time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC), batch.ServiceOptions{})
	for _, c := range []struct{ from, to, code, says string }{
		{"2026-03-02", "2026-03-01", pin.EINVALID, "after"},
		{"2025-01-01", "2026-03-01", pin.EINVALID, "at most 366"},
		{"2026-03-01", "2026-03-21", pin.EINVALID, "future"},
		{"2026-3-1", "2026-03-02", pin.EINVALID, "YYYY-MM-DD"},
		{"2026-03-01", "2026-03-02", pin.ENOTFOUND, "No day"},
	} {
		_, err := e.svc.StartBackfill(context.Background(), c.from, c.to, batch.TriggerAPI)
		if pin.ErrorCode(err) != c.code || !strings.Contains(pin.ErrorMessage(err), c.says) {
			t.Errorf("backfill %s..%s: got %v, want %s saying %q", c.from, c.to, err, c.code, c.says)
		}
	}
}

func TestRetentionRemovesOnlyCuratedDaysOlderThanTheSetting(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 20, 9, 0, 0, 0, time.UTC)
	e := newLateEnv(t, now, batch.ServiceOptions{RawRetention: 10 * 24 * time.Hour, LateLookback: 3})
	put := func(dt string, p int32, first int64, bad bool) {
		at, _ := time.Parse(time.DateOnly, dt)
		recs, _ := pinRecords(p, first, 3, at.Add(time.Hour))
		if bad { // one record that fails cleaning: the day gets a rejected object
			recs = append(recs, rawRecord(p, first+3, at.Add(time.Hour), `{"index":-1,"unique_id":"x","category":"art"}`))
		}
		putRaw(t, e.lake, dt, recs)
	}
	const (
		oldCurated   = "2026-03-01" // curated, older than 10 days: removed
		oldUncurated = "2026-03-02" // never curated: kept
		oldStale     = "2026-03-03" // curated, then late records: kept
		recent       = "2026-03-15" // curated, within 10 days: kept
	)
	for _, dt := range []string{oldCurated, oldUncurated, oldStale, recent} {
		put(dt, 0, 0, true)
	}
	for _, dt := range []string{oldCurated, oldStale, recent} {
		_, err := e.svc.RunNow(ctx, dt, batch.TriggerCLI, nil)
		testenv.Must(t, err)
	}
	put(oldStale, 1, 0, false)

	got, err := e.svc.CheckLate(ctx)
	testenv.Must(t, err)
	if !slices.Equal(got.Expired, []string{oldCurated}) || len(got.Started) != 0 {
		t.Fatalf("the check: %+v, want only %s expired and nothing run (the stale day is past the lookback)", got, oldCurated)
	}
	count := func(prefix string) int {
		objs, err := e.lake.List(ctx, prefix)
		testenv.Must(t, err)
		return len(objs)
	}
	if n := count(layout.Raw.DayPrefix(oldCurated)); n != 1 {
		t.Errorf("raw %s holds %d objects, want only the expiry marker", oldCurated, n)
	}
	if n := count(layout.Rejected.DayPrefix(oldCurated)); n != 0 {
		t.Errorf("rejected %s holds %d objects, want none", oldCurated, n)
	}
	if n := count(layout.Curated.DayPrefix(oldCurated)); n != 2 {
		t.Errorf("curated %s holds %d objects, want its part and marker", oldCurated, n)
	}
	for dt, want := range map[string]int{oldUncurated: 1, oldStale: 2, recent: 1} {
		if n := count(layout.Raw.DayPrefix(dt)); n != want {
			t.Errorf("raw %s holds %d objects, want %d", dt, n, want)
		}
	}
	for _, dt := range []string{oldStale, recent} {
		if n := count(layout.Rejected.DayPrefix(dt)); n != 1 {
			t.Errorf("rejected %s holds %d objects, want 1", dt, n)
		}
	}
	if n := gathered(t, e.reg, "pinpipe_batch_retention_deleted_objects_total"); n != 2 {
		t.Errorf("pinpipe_batch_retention_deleted_objects_total = %v, want 2 (one raw, one rejected)", n)
	}
	// An expired day cannot run again over what is left of its raw zone.
	if _, err := e.svc.StartRun(ctx, oldCurated, batch.TriggerAPI); pin.ErrorCode(err) != pin.ECONFLICT || !strings.Contains(pin.ErrorMessage(err), "PINPIPE_RAW_RETENTION") {
		t.Fatalf("a run of the expired day: %v, want a conflict naming PINPIPE_RAW_RETENTION", err)
	}
	d := e.day(t, oldCurated)
	if !d.Expired || d.Stale || d.RawObjects != 0 {
		t.Fatalf("the expired day: %+v", d)
	}
	// A second check removes nothing more.
	if got, err := e.svc.CheckLate(ctx); err != nil || len(got.Expired) != 0 {
		t.Fatalf("the second check: %+v, %v; want nothing expired", got, err)
	}
}
