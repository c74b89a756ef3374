package batch_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
)

// awaitRaw waits until the raw zone of dt holds n records.
func awaitRaw(t *testing.T, lk *lake.Store, dt string, n int64) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		objs, err := batch.RawObjects(context.Background(), lk, dt)
		if err != nil {
			return false, err.Error()
		}
		var got int64
		for _, o := range objs {
			got += o.Last - o.First + 1
		}
		return got == n, fmt.Sprintf("the raw zone of %s holds %d of %d records", dt, got, n)
	})
}

// TestLatePinsProducedAfterTheirDaysRunReachItWithinOneCheck produces
// pins stamped yesterday through Kafka and the landing, runs the day, then
// produces more pins stamped yesterday (new ones and a new version of one):
// one late-data check re-runs the day, and the curated zone and the
// serving store hold every pin once, the new version winning.
func TestLatePinsProducedAfterTheirDaysRunReachItWithinOneCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	brokers, topic := testenv.Kafka(t)
	lk := openLake(t)
	store := teststores.Serving(t)
	landed := make(chan error, 1)
	go func() {
		landed <- batch.RunLanding(ctx, batch.LandingOptions{Brokers: brokers, Topic: topic, Group: testenv.Name("landing-"), Lake: lk,
			MaxRecords: 1000, Interval: 200 * time.Millisecond, Log: testenv.Log(t), Registry: prometheus.NewRegistry()})
	}()
	defer func() {
		cancel()
		testenv.Must(t, <-landed)
	}()
	svc := batch.NewService(batch.ServiceOptions{Job: newJob(t, lk, store), Log: testenv.Log(t), Metrics: batch.NewJobMetrics(prometheus.NewRegistry())})
	defer svc.Close()

	yesterday := time.Now().UTC().AddDate(0, 0, -1).Truncate(24 * time.Hour).Add(15 * time.Hour)
	dt := yesterday.Format(time.DateOnly)
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	testenv.ProduceStamped(t, brokers, topic, yesterday, "first", ids...)
	awaitRaw(t, lk, dt, 20)
	first, err := svc.RunNow(ctx, dt, batch.TriggerAPI, nil)
	testenv.Must(t, err)
	if first.RowsOut != 20 {
		t.Fatalf("the day's first run: %+v, want 20 pins", first)
	}

	late := make([]string, 6)
	for i := range late {
		late[i] = uuid.NewString()
	}
	testenv.ProduceStamped(t, brokers, topic, yesterday.Add(time.Hour), "late", append(slices.Clone(late), ids[3])...)
	awaitRaw(t, lk, dt, 27)
	got, err := svc.CheckLate(ctx)
	testenv.Must(t, err)
	if len(got.Started) != 1 || got.Started[0].Trigger != batch.TriggerLateData || !slices.Equal(got.Stale, []string{dt}) {
		t.Fatalf("the check after late pins landed: %+v, want one late-data run of %s", got, dt)
	}
	run := waitForRun(t, svc, got.Started[0].ID)
	if run.Status != batch.StatusSucceeded || run.RowsIn != 27 || run.RowsOut != 26 {
		t.Fatalf("the late-data run: %+v, want 27 records in, 26 pins out", run)
	}
	counts := curatedIDs(t, lk)
	all := append(slices.Clone(ids), late...)
	if len(counts) != len(all) {
		t.Errorf("the curated zone holds %d pins, want %d", len(counts), len(all))
	}
	for _, id := range all {
		p, err := store.Pin(ctx, id)
		want := "first"
		if id == ids[3] || slices.Contains(late, id) {
			want = "late"
		}
		switch {
		case counts[id] != 1:
			t.Errorf("the curated zone holds %s %d times, want once", id, counts[id])
		case err != nil:
			t.Errorf("the serving store lacks %s: %v", id, err)
		case p.Title == nil || *p.Title != want:
			t.Errorf("the serving store holds %s titled %v, want %q", id, p.Title, want)
		}
	}
	top, err := store.TopByCategory(ctx, "late", dt, 100)
	testenv.Must(t, err)
	if len(top) != len(all) {
		t.Errorf("pins_by_category holds %d pins of %s, want %d", len(top), dt, len(all))
	}
	if again, err := svc.CheckLate(ctx); err != nil || len(again.Started) != 0 || len(again.Stale) != 0 {
		t.Fatalf("the next check: %+v, %v; want nothing stale or started", again, err)
	}
}
