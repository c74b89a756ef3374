package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"pinpipe/batch"
	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
)

// landedOffsets returns, per partition, the offsets the raw zone holds.
func landedOffsets(t *testing.T, p *pipeline.Pipeline) map[int]map[int64]bool {
	t.Helper()
	out := map[int]map[int64]bool{}
	for _, r := range readRawZone(t, p.Lake) {
		if out[int(r.Partition)] == nil {
			out[int(r.Partition)] = map[int64]bool{}
		}
		out[int(r.Partition)][r.Offset] = true
	}
	return out
}

// batchDay returns day dt from GET /batch/days of base.
func batchDay(t *testing.T, base, dt string) (pin.BatchDay, bool) {
	t.Helper()
	var days []pin.BatchDay
	getJSON(t, base+"/batch/days", http.StatusOK, &days)
	for _, d := range days {
		if d.Day == dt {
			return d, true
		}
	}
	return pin.BatchDay{}, false
}

// TestScheduledRunWaitsForALandingHeldBackThenRunsTheDayByItself runs a
// cluster of two pinpipes on one topic and bucket: one accepts and lands
// pins, through a proxy in front of S3; the other runs the batch lane on a
// fake clock, with the real completeness. S3 is cut for the landing while
// pins are posted, the clock moves past the day's end to the daily run:
// the run waits PINPIPE_BATCH_WAIT, then records a failed run naming each
// partition behind and by how many records. Once S3 is back and the day
// complete, the waiting run starts the day by itself at its next poll
// (trigger "completed") and the curated zone holds every accepted pin.
func TestScheduledRunWaitsForALandingHeldBackThenRunsTheDayByItself(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	cfg.BatchWait, cfg.LateGrace = 2*time.Minute, 10*time.Minute
	u, err := url.Parse(cfg.S3Endpoint)
	testenv.Must(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	landCfg, batchCfg := *cfg, *cfg
	landCfg.Roles, landCfg.DataDir, landCfg.S3Endpoint = config.Roles{config.RoleAPI, config.RoleLanding}, t.TempDir(), "http://"+proxy.Addr
	landCfg.BatchCron = ""
	batchCfg.Roles, batchCfg.DataDir = config.Roles{config.RoleBatch}, t.TempDir()

	today := time.Now().UTC().Truncate(24 * time.Hour)
	dt := today.Format(time.DateOnly)
	clock := clockwork.NewFakeClockAt(today.Add(23*time.Hour + 59*time.Minute))
	if !time.Now().Before(clock.Now()) {
		t.Skip("too close to midnight UTC: run the test again")
	}
	land, err := pipeline.Start(ctx, &landCfg, testenv.Log(t))
	testenv.Must(t, err)
	defer land.Stop(ctx)
	bat, err := pipeline.Start(ctx, &batchCfg, testenv.Log(t), pipeline.WithClock(clock))
	testenv.Must(t, err)
	defer bat.Stop(ctx)
	landURL, batchURL := "http://"+land.Addr, "http://"+bat.Addr

	// Pins that land, then pins held back while S3 is cut.
	const landed, held = 40, 30
	body, ids := synthPins(11, landed)
	postPins(t, landURL, body)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		n := len(readRawZone(t, bat.Lake))
		return n == landed, fmt.Sprintf("the raw zone holds %d of %d records", n, landed)
	})
	proxy.Down()
	body, heldIDs := synthPins(12, held)
	postPins(t, landURL, body)
	for id := range heldIDs {
		ids[id] = true
	}
	behind := map[int]int{}
	have := landedOffsets(t, bat)
	for _, m := range testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic) {
		if pin.DT(m.Time) != dt {
			t.Skipf("a pin was stamped %s, not %s: run the test again", pin.DT(m.Time), dt)
		}
		if !have[m.Partition][m.Offset] {
			behind[m.Partition]++
		}
	}

	// The daily run fires for the day and waits for it, asking every 30s.
	bctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	testenv.Must(t, clock.BlockUntilContext(bctx, 1)) // the schedule
	clock.Advance(8*time.Hour + time.Minute)          // tomorrow 08:00
	for range 4 {
		testenv.Must(t, clock.BlockUntilContext(bctx, 2)) // the schedule and the waiting run
		clock.Advance(30 * time.Second)
	}
	var runs []batch.Run
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		getJSON(t, batchURL+"/batch/runs", http.StatusOK, &runs)
		return len(runs) == 1, fmt.Sprintf("runs %+v, want the failed scheduled run", runs)
	})
	failed := runs[0]
	if failed.Status != batch.StatusFailed || failed.Trigger != batch.TriggerSchedule || failed.Date != dt || failed.RowsOut != 0 {
		t.Fatalf("the scheduled run: %+v, want failed for %s with nothing written", failed, dt)
	}
	if !strings.Contains(failed.Error, "not complete after waiting 2m0s") {
		t.Errorf("the failed run's error %q does not say it waited PINPIPE_BATCH_WAIT", failed.Error)
	}
	for p := range 64 {
		mention := fmt.Sprintf("partition %d is ", p)
		want := fmt.Sprintf("partition %d is %d records and ", p, behind[p])
		switch {
		case behind[p] > 0 && !strings.Contains(failed.Error, want):
			t.Errorf("the failed run's error %q does not say %q", failed.Error, want)
		case behind[p] == 0 && strings.Contains(failed.Error, mention):
			t.Errorf("the failed run's error %q names partition %d, which held nothing back", failed.Error, p)
		}
	}
	if d, ok := batchDay(t, batchURL, dt); !ok || d.Complete || !d.Waiting || len(d.Behind) == 0 {
		t.Fatalf("GET /batch/days while S3 is cut: %+v, want %s incomplete, waiting, with partitions behind", d, dt)
	}

	// S3 returns: once the landing caught up the day is complete, and the
	// waiting run starts it at its next poll.
	proxy.Up()
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		d, _ := batchDay(t, batchURL, dt)
		return d.Complete, fmt.Sprintf("the day is %+v", d)
	})
	testenv.Must(t, clock.BlockUntilContext(bctx, 2))
	clock.Advance(30 * time.Second)
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		getJSON(t, batchURL+"/batch/runs", http.StatusOK, &runs)
		return len(runs) == 2 && runs[0].FinishedAt != nil, fmt.Sprintf("runs %+v, want the completed run finished", runs)
	})
	run := runs[0]
	if run.Status != batch.StatusSucceeded || run.Trigger != batch.TriggerCompleted || run.Date != dt ||
		run.RowsIn != landed+held || run.RowsOut != landed+held || !run.Complete {
		t.Fatalf("the run once the day was complete: %+v, want a complete, succeeded %q run of all %d pins",
			run, batch.TriggerCompleted, landed+held)
	}
	curated := curatedRows(t, bat.Lake)
	got := make([]string, 0, len(curated))
	for id := range curated {
		got = append(got, id)
	}
	want := make([]string, 0, len(ids))
	for id := range ids {
		want = append(want, id)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the curated zone holds %d pins, want the %d accepted", len(got), len(want))
	}
	if d, _ := batchDay(t, batchURL, dt); d.Waiting || d.Stale || d.CommittedRun != run.ID {
		t.Fatalf("GET /batch/days after the run: %+v, want %s committed by %s, nothing waiting", d, dt, run.ID)
	}
}
