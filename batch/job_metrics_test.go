package batch_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/pin"
)

// TestLastRunGaugesShowTheLastRunAndAReRunReplacesIt: the last-run gauges
// hold one run's rows and duration, so a re-run of a day shows that day's
// rows again, not twice, while the counters keep adding.
func TestLastRunGaugesShowTheLastRunAndAReRunReplacesIt(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	m := batch.NewJobMetrics(prometheus.NewRegistry())
	svc := batch.NewService(batch.ServiceOptions{Job: newJob(t, s, teststores.Serving(t)), Log: testenv.Log(t), Metrics: m})
	t.Cleanup(svc.Close)

	if n := testutil.CollectAndCount(m.LastRunSeconds) + testutil.CollectAndCount(m.LastRunFinishedAt); n != 0 {
		t.Fatalf("%d last-run series before any run, want none", n)
	}
	for i := 1; i <= 2; i++ {
		// The service lets the day go a moment after the run's record says
		// it finished.
		var r batch.Run
		var err error
		testenv.Eventually(t, time.Minute, func() (bool, string) {
			r, err = svc.StartRun(ctx, d.dt, batch.TriggerAPI)
			return pin.ErrorCode(err) != pin.ECONFLICT, fmt.Sprint(err)
		})
		testenv.Must(t, err)
		run := waitForRun(t, svc, r.ID)
		if run.Status != batch.StatusSucceeded || run.RowsOut != int64(d.unique) {
			t.Fatalf("run %d: %+v", i, run)
		}
		for kind, want := range map[string]int64{"in": run.RowsIn, "out": run.RowsOut, "rejected": run.RowsRejected} {
			if got := testutil.ToFloat64(m.LastRunRows.WithLabelValues(kind)); got != float64(want) {
				t.Errorf("after run %d: pinpipe_batch_last_run_rows{kind=%q} = %v, want the run's %d", i, kind, got, want)
			}
			if got := testutil.ToFloat64(m.Rows.WithLabelValues(kind)); got != float64(int64(i)*want) {
				t.Errorf("after run %d: pinpipe_batch_rows_total{kind=%q} = %v, want %d", i, kind, got, int64(i)*want)
			}
		}
		// The stored run keeps microseconds; the gauges were set before.
		if got, want := testutil.ToFloat64(m.LastRunSeconds.WithLabelValues()), run.FinishedAt.Sub(*run.StartedAt).Seconds(); math.Abs(got-want) > 1e-3 {
			t.Errorf("after run %d: pinpipe_batch_last_run_seconds = %v, want %v", i, got, want)
		}
		if got, want := testutil.ToFloat64(m.LastRunFinishedAt.WithLabelValues()), float64(run.FinishedAt.UnixNano())/1e9; math.Abs(got-want) > 1e-3 {
			t.Errorf("after run %d: pinpipe_batch_last_run_timestamp_seconds = %v, want %v", i, got, want)
		}
	}
}
