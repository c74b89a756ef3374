package query_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"pinpipe/batch"
	"pinpipe/batch/standin"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/synth"
)

// liveDay builds one day of raw records the way the landing stores them:
// per partition, offsets rising from where that partition left off.
type liveDay struct {
	dt   string
	at   time.Time
	next map[int32]int64 // partition → next offset
	recs []batch.RawRecord
}

func newLiveDay(t testing.TB, dt string) *liveDay {
	at, err := time.Parse(time.DateOnly, dt)
	testenv.Must(t, err)
	return &liveDay{dt: dt, at: at, next: map[int32]int64{}}
}

// add appends a record of value to partition, stamped sec seconds into the
// day, and returns it.
func (d *liveDay) add(partition int32, sec int, value string) batch.RawRecord {
	r := batch.RawRecord{
		Topic: "pins", Partition: partition, Offset: d.next[partition],
		Timestamp: d.at.Add(time.Duration(sec) * time.Second).UTC(), Value: value,
	}
	if id, ok := uniqueID(value); ok {
		r.Key = strings.ToLower(id)
	}
	d.next[partition]++
	d.recs = append(d.recs, r)
	return r
}

func uniqueID(value string) (string, bool) {
	var v struct {
		ID string `json:"unique_id"`
	}
	if json.Unmarshal([]byte(value), &v) != nil || v.ID == "" {
		return "", false
	}
	return v.ID, true
}

// flush stores the records added since the last flush as raw objects, one
// per partition, and forgets them.
func (d *liveDay) flush(st *stack) {
	byPart := map[int32][]batch.RawRecord{}
	for _, r := range d.recs {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, recs := range byPart {
		st.putRaw(d.dt, recs)
	}
	d.recs = nil
}

// quirkyPins returns every pin of testdata/sample_pins.jsonl (the source
// app's placeholders, follower counts, U+00A0 endings) and n synthetic
// ones, as JSON objects.
func quirkyPins(t testing.TB, seed uint64, n int) []string {
	f, err := os.Open(filepath.Join("..", "testdata", "sample_pins.jsonl"))
	testenv.Must(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	testenv.Must(t, sc.Err())
	g := synth.New(seed)
	for range n {
		b, err := json.Marshal(g.Next())
		testenv.Must(t, err)
		out = append(out, string(b))
	}
	return out
}

// versionOf returns a small pin with the given unique_id and title.
func versionOf(id, title string) string {
	return fmt.Sprintf(`{"index": 1, "unique_id": %q, "category": "art", "title": %q, "follower_count": "1.5k", "tag_list": " a,,b ", "save_location": "Local save in /data/art"}`, id, title)
}

// expectedLive returns what pins_live must hold for records: each cleaned
// (pin.CleanRaw), the ones that fail left out, one version per unique_id by
// a fold with pin.Newer — the batch job's rules, applied here one record at
// a time. Returns unique_id → "partition/offset".
func expectedLive(t *testing.T, recs []batch.RawRecord) map[string]string {
	t.Helper()
	best := map[string]pin.Cleaned{}
	for _, r := range recs {
		c, err := pin.CleanRaw([]byte(r.Value), pin.Lineage{IngestedAt: r.Timestamp, Partition: r.Partition, Offset: r.Offset})
		if err != nil {
			continue
		}
		if b, ok := best[c.UniqueID]; !ok || pin.Newer(c.Lineage(), b.Lineage()) {
			best[c.UniqueID] = c
		}
	}
	out := map[string]string{}
	for id, c := range best {
		out[id] = fmt.Sprintf("%d/%d", c.KafkaPartition, c.KafkaOffset)
	}
	return out
}

// versions returns pins_live's unique_id → "partition/offset" of day dt,
// failing the test when a unique_id has two rows.
func (st *stack) versions(view, dt string) map[string]string {
	st.t.Helper()
	out := map[string]string{}
	for _, r := range st.ok(fmt.Sprintf("SELECT unique_id, kafka_partition, kafka_offset FROM %s WHERE dt = DATE '%s'", view, dt)) {
		id := r[0].(string)
		if _, dup := out[id]; dup {
			st.t.Fatalf("%s holds unique_id %s twice on %s", view, id, dt)
		}
		out[id] = fmt.Sprintf("%v/%v", r[1], r[2])
	}
	return out
}

// rowsOf returns every column of view's rows of day dt, in a fixed order.
func (st *stack) rowsOf(view, dt string) [][]any {
	st.t.Helper()
	return st.ok(fmt.Sprintf("SELECT * FROM %s WHERE dt = DATE '%s' ORDER BY unique_id", view, dt))
}

// liveSources returns which days pins_live reads from the curated zone and
// which from cleaned raw objects, by the current snapshot's files.
func (st *stack) liveSources() (curated, cleaned map[string]bool) {
	st.t.Helper()
	s, err := st.mirror.Snapshot(context.Background(), nil)
	testenv.Must(st.t, err)
	defer s.Release()
	day := func(files []string) map[string]bool {
		out := map[string]bool{}
		for _, f := range files {
			for _, seg := range strings.Split(filepath.ToSlash(f), "/") {
				if d, ok := strings.CutPrefix(seg, "dt="); ok {
					out[d] = true
				}
			}
		}
		return out
	}
	return day(s.LiveCurated), day(s.LiveCleaned)
}

// nextSecond waits until the clock has entered a later whole second than
// now: S3 servers keep LastModified in whole seconds, so this is what makes
// an object written next count as written after the ones before.
func nextSecond(t testing.TB) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	testenv.Eventually(t, 3*time.Second, func() (bool, string) {
		return time.Now().Truncate(time.Second).After(now), "the clock is still in " + now.String()
	})
}

// TestPinsLiveIsThePinsTheBatchJobWouldServe runs the real batch job over
// quirky raw days and checks pins_live against it: equal to pins for a
// curated day, and for a day not curated yet, the cleaned, deduplicated raw
// records — exactly what pins holds once the job has run that day. Late
// records of a curated day make it stale: pins_live shows them at once,
// each unique_id once, with pin.Newer's winner, while pins keeps the run.
func TestPinsLiveIsThePinsTheBatchJobWouldServe(t *testing.T) {
	st := newStack(t, nil)
	ctx := context.Background()
	serving, err := standin.Open(ctx, t.TempDir(), 0, nil)
	testenv.Must(t, err)
	t.Cleanup(func() { serving.Close() })
	job := &batch.Job{Lake: st.lake, Store: serving, Log: testenv.Log(t)}
	runs := 0
	run := func(dt string) {
		t.Helper()
		runs++
		id := fmt.Sprintf("20260310T0800%02d.000000Z-%06d", runs, runs)
		_, err := job.Run(ctx, dt, id, nil)
		testenv.Must(t, err)
	}

	const (
		x = "0a0a0a0a-0000-4000-8000-00000000000a" // two versions in one partition, the later stamped earlier
		y = "0b0b0b0b-0000-4000-8000-00000000000b" // versions in two partitions
		z = "0c0c0c0c-0000-4000-8000-00000000000c" // two partitions, the same timestamp
		w = "0d0d0d0d-0000-4000-8000-00000000000d" // arrives late
	)
	fill := func(d *liveDay, seed uint64) {
		for i, v := range quirkyPins(t, seed, 40) {
			d.add(int32(i%3), i, v)
		}
		d.add(0, 100, versionOf(strings.ToUpper(x), "x first"))
		d.add(0, 50, versionOf(x, "x second, stamped earlier"))
		d.add(1, 200, versionOf(y, "y later stamp"))
		d.add(2, 150, versionOf(y, "y earlier stamp"))
		d.add(1, 300, versionOf(z, "z partition 1"))
		d.add(2, 300, versionOf(z, "z partition 2"))
		d.add(1, 301, `{"index": "not a number", "unique_id": "0e0e0e0e-0000-4000-8000-00000000000e", "category": "art"}`)
		d.add(2, 302, `not json at all`)
	}
	d1, d2 := newLiveDay(t, "2026-03-01"), newLiveDay(t, "2026-03-02")
	fill(d1, 1)
	fill(d2, 2)
	all1 := append([]batch.RawRecord(nil), d1.recs...)
	all2 := append([]batch.RawRecord(nil), d2.recs...)
	d1.flush(st)
	d2.flush(st)

	// Nothing curated yet: pins_live is the cleaned raw zone, pins empty.
	want1, want2 := expectedLive(t, all1), expectedLive(t, all2)
	for id, v := range map[string]string{x: "0/", y: "1/", z: "2/"} {
		if !strings.HasPrefix(want1[id], v) {
			t.Fatalf("the fixture does not test what it says: %s keeps %s", id, want1[id])
		}
	}
	if got := st.versions("pins_live", d1.dt); !reflect.DeepEqual(got, want1) {
		t.Fatalf("pins_live of an uncurated day:\n got %v\nwant %v", got, want1)
	}
	if got := st.ok("SELECT count(*) FROM pins"); fmt.Sprint(got) != "[[0]]" {
		t.Fatalf("pins holds %v rows before any run", got)
	}
	if got := st.ok("SELECT count(*) FROM pins_live WHERE unique_id = '" + y + "'"); fmt.Sprint(got) != "[[2]]" {
		t.Fatalf("a pin sent on two days has %v rows in pins_live, want one a day as in pins", got)
	}

	// Day 1 runs; day 2 does not yet.
	before2 := st.rowsOf("pins_live", d2.dt)
	nextSecond(t)
	run(d1.dt)
	if got, want := st.rowsOf("pins_live", d1.dt), st.rowsOf("pins", d1.dt); !reflect.DeepEqual(got, want) {
		t.Fatalf("pins_live differs from pins on a curated day:\n got %v\nwant %v", got, want)
	}
	if cur, cl := st.liveSources(); !cur[d1.dt] || cl[d1.dt] || !cl[d2.dt] || cur[d2.dt] {
		t.Fatalf("pins_live reads the curated zone for %v and cleaned raw objects for %v; want %s curated, %s cleaned", cur, cl, d1.dt, d2.dt)
	}
	if got := st.versions("pins_live", d2.dt); !reflect.DeepEqual(got, want2) {
		t.Fatalf("pins_live of the uncurated day:\n got %v\nwant %v", got, want2)
	}

	// Running day 2 turns what pins_live showed into pins, column by column.
	nextSecond(t)
	run(d2.dt)
	if got := st.rowsOf("pins", d2.dt); !reflect.DeepEqual(got, before2) {
		t.Fatalf("the batch run made pins\n %v\nwhere pins_live showed\n %v", got, before2)
	}
	if got := st.rowsOf("pins_live", d2.dt); !reflect.DeepEqual(got, before2) {
		t.Fatalf("pins_live of the day once curated:\n %v\nbefore:\n %v", got, before2)
	}

	// Late records of day 1, landed after its run: a new pin, a newer
	// version of x (higher offset, stamped earliest of all), an older
	// version of y in its losing partition.
	pins1 := st.rowsOf("pins", d1.dt)
	late := []batch.RawRecord{
		d1.add(0, 10, versionOf(x, "x late, newest by offset")),
		d1.add(0, 11, versionOf(w, "w late")),
		d1.add(2, 12, versionOf(y, "y late, older by timestamp")),
	}
	d1.flush(st)
	all1 = append(all1, late...)
	want1 = expectedLive(t, all1)
	if want1[x] != fmt.Sprintf("0/%d", late[0].Offset) || want1[y] == fmt.Sprintf("2/%d", late[2].Offset) {
		t.Fatalf("the fixture does not test what it says: %v", want1)
	}
	if got := st.versions("pins_live", d1.dt); !reflect.DeepEqual(got, want1) {
		t.Fatalf("pins_live of the stale day:\n got %v\nwant %v", got, want1)
	}
	if _, cl := st.liveSources(); !cl[d1.dt] {
		t.Fatalf("a day with raw objects newer than its run is not read from them: cleaned days %v", cl)
	}
	if got := st.rowsOf("pins", d1.dt); !reflect.DeepEqual(got, pins1) {
		t.Fatalf("late raw records changed pins before a run")
	}
	stale1 := st.rowsOf("pins_live", d1.dt)

	// The re-run of day 1 makes pins what pins_live already showed.
	nextSecond(t)
	run(d1.dt)
	if got := st.rowsOf("pins", d1.dt); !reflect.DeepEqual(got, stale1) {
		t.Fatalf("the re-run made pins\n %v\nwhere pins_live showed\n %v", got, stale1)
	}
	if cur, cl := st.liveSources(); !cur[d1.dt] || cl[d1.dt] {
		t.Fatalf("after the re-run pins_live reads cleaned raw objects for %v, curated for %v", cl, cur)
	}
	if got, want := st.ok("SELECT count(*) FROM pins_live"), st.ok("SELECT count(*) FROM pins"); !reflect.DeepEqual(got, want) {
		t.Fatalf("with every day curated pins_live has %v rows, pins %v", got, want)
	}
}

// TestMirrorCleansEachRawObjectOnce checks the cost side of pins_live: a
// raw object is cleaned once, not per refresh, and a restart reuses the
// cleaned copies on disk.
func TestMirrorCleansEachRawObjectOnce(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	d := newLiveDay(t, "2026-03-01")
	for i, v := range quirkyPins(t, 3, 20) {
		d.add(0, i, v)
	}
	var buf strings.Builder
	testenv.Must(t, batch.WriteRaw(&buf, d.recs))
	e.put("raw/dt=2026-03-01/part-0-00000000000000000000-00000000000000000029.parquet", buf.String())
	cleaned := func() float64 {
		return testutil.ToFloat64(counter(t, e.reg, "pinpipe_query_mirror_cleaned_objects_total"))
	}
	for range 3 {
		s := e.snapshot()
		if len(s.LiveCleaned) != 1 || cleaned() != 1 {
			t.Fatalf("snapshot has cleaned copies %v after %v cleanings, want one of one", s.LiveCleaned, cleaned())
		}
		s.Release()
	}
	testenv.Must(t, e.m.Close())
	e.open(1<<30, time.Millisecond)
	s := e.snapshot()
	defer s.Release()
	if len(s.LiveCleaned) != 1 || cleaned() != 0 || e.downloads() != 0 {
		t.Fatalf("after a restart: cleaned copies %v, %v cleanings, %v downloads", s.LiveCleaned, cleaned(), e.downloads())
	}
}
