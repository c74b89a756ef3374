package pipeline_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// TestBatchLaneFromPostedPinsToTheServingReads posts pins with duplicates,
// waits for the landing, runs the day through the API and reads the
// result back from the curated zone (with DuckDB) and the serving reads.
func TestBatchLaneFromPostedPinsToTheServingReads(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	p, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(ctx)
	base := "http://" + p.Addr

	// 200 distinct pins, then 10 of them again with a new title: 210 records.
	const distinct, dups = 200, 10
	g := synth.New(42)
	pins := make([]synth.Pin, distinct)
	var body bytes.Buffer
	for i := range pins {
		pins[i] = g.Next()
		line, _ := json.Marshal(pins[i])
		body.Write(append(line, '\n'))
	}
	postPins(t, base, body.Bytes())
	body.Reset()
	for i := range dups {
		again := synth.Pin{}
		for k, v := range pins[i*7] {
			again[k] = v
		}
		again["title"] = fmt.Sprintf("posted again %d", i)
		line, _ := json.Marshal(again)
		body.Write(append(line, '\n'))
	}
	postPins(t, base, body.Bytes())

	// Wait for the landing; all records are of one day unless the test
	// straddles midnight UTC.
	var raw []batch.RawRecord
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		raw = readRawZone(t, p.Lake)
		return len(raw) == distinct+dups, fmt.Sprintf("the raw zone holds %d records, want %d", len(raw), distinct+dups)
	})
	dt := pin.DT(raw[0].Timestamp)
	if last := pin.DT(raw[len(raw)-1].Timestamp); last != dt {
		t.Skipf("the pins landed on two days (%s, %s): run the test again", dt, last)
	}
	// The ingest refuses invalid pins, so a record that fails cleaning can
	// only be put in the raw zone directly (partition 999 is not the topic's).
	var obj bytes.Buffer
	testenv.Must(t, batch.WriteRaw(&obj, []batch.RawRecord{{Topic: cfg.Topic, Partition: 999, Offset: 5,
		Timestamp: raw[0].Timestamp, Value: `{"index":"one","unique_id":"x","category":"art"}`}}))
	testenv.Must(t, p.Lake.Put(ctx, layout.RawKey(dt, 999, 5, 5), &obj))

	// The first run waits after the curated write, so a second request for
	// the day meets it running.
	svc := p.Server.Batch.(*batch.Service)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	svc.Job().AfterCurated = func(context.Context) error {
		once.Do(func() { close(entered); <-release })
		return nil
	}
	first := startRun(t, base, dt, http.StatusAccepted)
	<-entered
	conflict := startRun(t, base, dt, http.StatusConflict)
	if !strings.Contains(conflict["detail"].(string), first["id"].(string)) {
		t.Fatalf("the 409 does not name the active run %s: %v", first["id"], conflict)
	}
	close(release)
	run := waitRun(t, base, first["id"].(string))
	if run.Status != batch.StatusSucceeded || run.RowsIn != distinct+dups+1 || run.RowsOut != distinct || run.RowsRejected != 1 {
		t.Fatalf("run: %+v; want succeeded with %d in, %d out, 1 rejected", run, distinct+dups+1, distinct)
	}

	// Exact cleaned values, from the curated zone and the serving reads.
	want := map[string]pin.Cleaned{} // the last version of each pin
	for _, r := range raw {
		c, err := pin.CleanRaw([]byte(r.Value), pin.Lineage{IngestedAt: r.Timestamp, Partition: r.Partition, Offset: r.Offset})
		testenv.Must(t, err)
		if old, ok := want[c.UniqueID]; !ok || pin.Newer(c.Lineage(), old.Lineage()) {
			want[c.UniqueID] = c
		}
	}
	curated1 := curatedRows(t, p.Lake)
	if len(curated1) != distinct {
		t.Fatalf("the curated zone holds %d rows, want %d", len(curated1), distinct)
	}
	for _, i := range []int{0, 7, 8, 63, 199} {
		c := want[strings.ToLower(pins[i]["unique_id"].(string))]
		if i%7 == 0 && i/7 < dups && *c.Title != fmt.Sprintf("posted again %d", i/7) {
			t.Fatalf("pin %d: the later version was not kept: title %q", i, *c.Title)
		}
		wantJSON, _ := json.Marshal(c)
		var got pin.Cleaned
		getJSON(t, base+"/pins/"+c.UniqueID, http.StatusOK, &got)
		if gotJSON, _ := json.Marshal(got); !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("GET /pins/%s:\n got %s\nwant %s", c.UniqueID, gotJSON, wantJSON)
		}
		row := curated1[c.UniqueID]
		var fromParquet pin.Cleaned
		testenv.Must(t, json.Unmarshal([]byte(row), &fromParquet))
		if gotJSON, _ := json.Marshal(fromParquet); !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("curated row of %s:\n got %s\nwant %s", c.UniqueID, gotJSON, wantJSON)
		}
	}
	getJSON(t, base+"/pins/00000000-0000-4000-8000-000000000000", http.StatusNotFound, nil)
	serving1 := topLists(t, base, dt, want)

	// A second run changes nothing.
	second := startRun(t, base, dt, http.StatusAccepted)
	if run := waitRun(t, base, second["id"].(string)); run.Status != batch.StatusSucceeded || run.RowsOut != distinct {
		t.Fatalf("second run: %+v", run)
	}
	if curated2 := curatedRows(t, p.Lake); !reflect.DeepEqual(curated1, curated2) {
		t.Fatalf("the second run changed the curated zone")
	}
	if serving2 := topLists(t, base, dt, want); !reflect.DeepEqual(serving1, serving2) {
		t.Fatalf("the second run changed the serving rows")
	}

	var runs []batch.Run
	getJSON(t, base+"/batch/runs", http.StatusOK, &runs)
	if len(runs) != 2 || runs[0].ID != second["id"] || runs[1].ID != first["id"] {
		t.Fatalf("GET /batch/runs, newest first: %+v", runs)
	}

	metrics := getText(t, base+"/metrics")
	for _, want := range []string{
		`pinpipe_batch_runs_total{status="succeeded"} 2`,
		fmt.Sprintf(`pinpipe_batch_rows_total{kind="out"} %d`, 2*distinct),
		`pinpipe_batch_rows_total{kind="rejected"} 2`,
		"pinpipe_batch_run_seconds_count 2",
		"pinpipe_batch_cassandra_write_seconds_count",
		"pinpipe_batch_last_success_timestamp_seconds",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	var ready map[string]any
	getJSON(t, base+"/readyz", http.StatusOK, &ready)
	if !strings.Contains(string(mustJSON(ready)), `"cassandra"`) {
		t.Errorf("GET /readyz does not check cassandra: %v", ready)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testenv.Must(t, err)
	return string(b)
}

func postPins(t *testing.T, base string, ndjson []byte) {
	t.Helper()
	resp, err := http.Post(base+"/pins", "application/x-ndjson", bytes.NewReader(ndjson))
	testenv.Must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /pins: %s %s", resp.Status, b)
	}
}

func startRun(t *testing.T, base, dt string, status int) map[string]any {
	t.Helper()
	resp, err := http.Post(base+"/batch/runs", "application/json", strings.NewReader(`{"date":"`+dt+`"}`))
	testenv.Must(t, err)
	defer resp.Body.Close()
	var out map[string]any
	testenv.Must(t, json.NewDecoder(resp.Body).Decode(&out))
	if resp.StatusCode != status {
		t.Fatalf("POST /batch/runs: %s %v, want %d", resp.Status, out, status)
	}
	return out
}

func getJSON(t *testing.T, url string, status int, out any) {
	t.Helper()
	resp, err := http.Get(url)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s %s, want %d", url, resp.Status, b, status)
	}
	if out != nil {
		testenv.Must(t, json.Unmarshal(b, out))
	}
}

func waitRun(t *testing.T, base, id string) batch.Run {
	t.Helper()
	var run batch.Run
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		getJSON(t, base+"/batch/runs/"+id, http.StatusOK, &run)
		return run.Status == batch.StatusSucceeded || run.Status == batch.StatusFailed, "run " + id + " is " + run.Status
	})
	return run
}

// topLists reads GET /categories/{c}/top for every category of the day
// and checks each list is the day's pins of the category, follower_count
// descending.
func topLists(t *testing.T, base, dt string, want map[string]pin.Cleaned) map[string][]pin.Cleaned {
	t.Helper()
	byCat := map[string][]pin.Cleaned{}
	for _, c := range want {
		byCat[c.Category] = append(byCat[c.Category], c)
	}
	out := map[string][]pin.Cleaned{}
	for cat, pins := range byCat {
		var top []pin.Cleaned
		getJSON(t, base+"/categories/"+cat+"/top?n=1000&date="+dt, http.StatusOK, &top)
		if len(top) != len(pins) {
			t.Fatalf("top %s: %d pins, want %d", cat, len(top), len(pins))
		}
		for i := 1; i < len(top); i++ {
			a, b := top[i-1].FollowerCount, top[i].FollowerCount
			if a == nil && b != nil || a != nil && b != nil && *a < *b {
				t.Fatalf("top %s is not by follower_count descending at %d", cat, i)
			}
		}
		for _, p := range top {
			if w, _ := json.Marshal(want[p.UniqueID]); !bytes.Equal(mustJSON(p), w) {
				t.Fatalf("top %s: pin %s is %s, want %s", cat, p.UniqueID, mustJSON(p), w)
			}
		}
		out[cat] = top
	}
	return out
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// readRawZone returns every record of the raw zone, by timestamp.
func readRawZone(t *testing.T, s *lake.Store) []batch.RawRecord {
	t.Helper()
	objs, err := batch.RawObjects(context.Background(), s, "")
	testenv.Must(t, err)
	var out []batch.RawRecord
	for _, o := range objs {
		recs, err := batch.LoadRaw(context.Background(), s, o.Key)
		testenv.Must(t, err)
		out = append(out, recs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out
}

// curatedRows reads the curated zone with DuckDB's read_parquet and hive
// partitioning, as the query lane does, and returns each row as the JSON
// of a cleaned pin, by unique_id.
func curatedRows(t *testing.T, s *lake.Store) map[string]string {
	t.Helper()
	dir := t.TempDir()
	copyCurated(t, s, dir)
	db, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	defer db.Close()
	rows, err := db.Query(fmt.Sprintf(`SELECT unique_id, to_json(struct_pack(id_index, title, category, unique_id,
		description, poster_name, follower_count, tag_list, tags, is_image_or_video, image_src, downloaded,
		save_location, ingested_at := strftime(ingested_at, '%%Y-%%m-%%dT%%H:%%M:%%S.%%gZ'), kafka_partition,
		kafka_offset))::VARCHAR FROM read_parquet('%s', hive_partitioning = true)`,
		filepath.ToSlash(filepath.Join(dir, "curated", "*", "*.parquet"))))
	testenv.Must(t, err)
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, row string
		testenv.Must(t, rows.Scan(&id, &row))
		out[id] = row
	}
	testenv.Must(t, rows.Err())
	return out
}

// copyCurated copies every Parquet object of the curated zone into dir under
// its key, so DuckDB reads the zone as the query lane's mirror would.
// Commit markers are left out: they hold no rows.
func copyCurated(t *testing.T, s *lake.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	objs, err := s.List(ctx, "curated/")
	testenv.Must(t, err)
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		r, err := s.Get(ctx, o.Key)
		testenv.Must(t, err)
		b, err := io.ReadAll(r)
		_ = r.Close()
		testenv.Must(t, err)
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		testenv.Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		testenv.Must(t, os.WriteFile(path, b, 0o644))
	}
}

// TestOnDemandRunIncludesEveryPinAcceptedBeforeIt posts pins and at once
// asks for a run of today, with the default landing interval (60 s): the
// run's flush barrier makes the landing store them first, so the run holds
// every one, and its record says the day is not complete. A run of a day
// that is over says it is.
func TestOnDemandRunIncludesEveryPinAcceptedBeforeIt(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	cfg.LandingInterval = 60 * time.Second
	p, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(ctx)
	base := "http://" + p.Addr

	const n = 120
	g := synth.New(7)
	var body bytes.Buffer
	for range n {
		line, _ := json.Marshal(g.Next())
		body.Write(append(line, '\n'))
	}
	today := time.Now().UTC().Format(time.DateOnly)
	postPins(t, base, body.Bytes())
	first := startRun(t, base, today, http.StatusAccepted)
	run := waitRun(t, base, first["id"].(string))
	if after := time.Now().UTC().Format(time.DateOnly); after != today {
		t.Skipf("the test straddled midnight UTC (%s, %s): run it again", today, after)
	}
	if run.Status != batch.StatusSucceeded || run.RowsIn != n || run.RowsOut != n {
		t.Fatalf("run of today: %+v; want succeeded with all %d pins in and out", run, n)
	}
	if run.Complete {
		t.Fatalf("run of today (not over): complete = true, want false: %+v", run)
	}

	// A day that is over: its pins are put in the raw zone directly, as
	// the topic only takes records stamped now (partition 999 is not the
	// topic's, so the barrier does not wait for it).
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	var obj bytes.Buffer
	line, _ := json.Marshal(g.Next())
	testenv.Must(t, batch.WriteRaw(&obj, []batch.RawRecord{{Topic: cfg.Topic, Partition: 999, Offset: 0,
		Timestamp: yesterday, Value: string(line)}}))
	dt := pin.DT(yesterday)
	testenv.Must(t, p.Lake.Put(ctx, layout.RawKey(dt, 999, 0, 0), &obj))
	past := waitRun(t, base, startRun(t, base, dt, http.StatusAccepted)["id"].(string))
	if past.Status != batch.StatusSucceeded || past.RowsOut != 1 || !past.Complete {
		t.Fatalf("run of %s: %+v; want succeeded with 1 pin and complete = true", dt, past)
	}
}
