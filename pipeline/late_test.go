package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
)

// queryTitles returns unique_id → title of view's rows of day dt through
// POST /query, failing on a unique_id seen twice.
func queryTitles(t *testing.T, base, view, dt string) (map[string]string, error) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sql": fmt.Sprintf("SELECT unique_id, title FROM %s WHERE dt = DATE '%s'", view, dt), "limit": 10000})
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Rows [][]any `json:"rows"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /query: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, r := range out.Rows {
		id, _ := r[0].(string)
		title, _ := r[1].(string)
		if _, dup := got[id]; dup {
			t.Fatalf("%s holds %s twice", view, id)
		}
		got[id] = title
	}
	return got, nil
}

// TestLatePinsReachTheirDayInEveryStoreAndPinsLive produces pins stamped
// yesterday, runs the day, then produces more pins stamped yesterday (new
// ones and a new version of one) after that run: pins_live shows them as
// soon as they land, one late-data check runs the day again, and then the
// curated zone, the serving store and pins_live hold every pin once, the
// new version winning, pins_live equal to pins.
func TestLatePinsReachTheirDayInEveryStoreAndPinsLive(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	p, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(ctx)
	base := "http://" + p.Addr
	svc := p.Server.Batch.(*batch.Service)

	noon := time.Now().UTC().AddDate(0, 0, -1).Truncate(24 * time.Hour).Add(12 * time.Hour)
	dt := noon.Format(time.DateOnly)
	want := map[string]string{}
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = uuid.NewString()
		want[ids[i]] = "first"
	}
	testenv.ProduceStamped(t, cfg.KafkaBrokers, cfg.Topic, noon, "first", ids...)
	awaitDay := func(n int) {
		testenv.Eventually(t, time.Minute, func() (bool, string) {
			got := 0
			for _, r := range readRawZone(t, p.Lake) {
				if pin.DT(r.Timestamp) == dt {
					got++
				}
			}
			return got == n, fmt.Sprintf("the raw zone of %s holds %d of %d records", dt, got, n)
		})
	}
	awaitDay(len(ids))
	first := waitRun(t, base, startRun(t, base, dt, http.StatusAccepted)["id"].(string))
	if first.Status != batch.StatusSucceeded || first.RowsOut != int64(len(ids)) {
		t.Fatalf("the day's first run: %+v, want %d pins", first, len(ids))
	}

	late := []string{ids[3]}
	for range 6 {
		late = append(late, uuid.NewString())
	}
	for _, id := range late {
		want[id] = "late"
	}
	testenv.ProduceStamped(t, cfg.KafkaBrokers, cfg.Topic, noon.Add(time.Hour), "late", late...)
	awaitDay(len(ids) + len(late))
	// pins_live reads the stale day from its cleaned raw records at once.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		got, err := queryTitles(t, base, "pins_live", dt)
		return err == nil && fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("pins_live of %s: %v, %v", dt, got, err)
	})

	check, err := svc.CheckLate(ctx)
	testenv.Must(t, err)
	if len(check.Started) != 1 || check.Started[0].Trigger != batch.TriggerLateData || check.Started[0].Date != dt {
		t.Fatalf("the check after late pins landed: %+v, want one late-data run of %s", check, dt)
	}
	run := waitRun(t, base, check.Started[0].ID)
	if run.Status != batch.StatusSucceeded || run.RowsIn != int64(len(ids)+len(late)) || run.RowsOut != int64(len(want)) {
		t.Fatalf("the late-data run: %+v, want %d records in, %d pins out", run, len(ids)+len(late), len(want))
	}

	curated := map[string]string{}
	for id, row := range curatedRows(t, p.Lake) {
		var c pin.Cleaned
		testenv.Must(t, json.Unmarshal([]byte(row), &c))
		curated[id] = *c.Title
	}
	if fmt.Sprint(curated) != fmt.Sprint(want) {
		t.Errorf("the curated zone: %v\nwant %v", curated, want)
	}
	for id, title := range want {
		var c pin.Cleaned
		getJSON(t, base+"/pins/"+id, http.StatusOK, &c)
		if c.Title == nil || *c.Title != title {
			t.Errorf("GET /pins/%s: title %v, want %q", id, c.Title, title)
		}
	}
	var top []pin.Cleaned
	getJSON(t, base+"/categories/late/top?n=1000&date="+dt, http.StatusOK, &top)
	if len(top) != len(want) {
		t.Errorf("the serving store's top list of %s holds %d pins, want %d", dt, len(top), len(want))
	}
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		live, err := queryTitles(t, base, "pins_live", dt)
		if err != nil {
			return false, err.Error()
		}
		pins, err := queryTitles(t, base, "pins", dt)
		return err == nil && fmt.Sprint(live) == fmt.Sprint(want) && fmt.Sprint(pins) == fmt.Sprint(want),
			fmt.Sprintf("pins_live %v\npins %v (%v)\nwant %v", live, pins, err, want)
	})
	if again, err := svc.CheckLate(ctx); err != nil || len(again.Started) != 0 || len(again.Stale) != 0 {
		t.Fatalf("the next check: %+v, %v; want nothing stale or started", again, err)
	}
}
