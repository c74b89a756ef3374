package batch_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// openLake returns a fresh bucket on the real S3 server or an embedded one.
func openLake(t *testing.T) *lake.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := lake.Open(ctx, testenv.S3(t))
	testenv.Must(t, err)
	return s
}

// putRaw stores recs as one raw-zone object of day dt, named as the
// landing names it.
func putRaw(t *testing.T, s *lake.Store, dt string, recs []batch.RawRecord) {
	t.Helper()
	var buf bytes.Buffer
	testenv.Must(t, batch.WriteRaw(&buf, recs))
	key := layout.RawKey(dt, int(recs[0].Partition), recs[0].Offset, recs[len(recs)-1].Offset)
	testenv.Must(t, s.Put(context.Background(), key, &buf))
}

func rawRecord(partition int32, offset int64, at time.Time, value string) batch.RawRecord {
	return batch.RawRecord{Topic: "pins", Partition: partition, Offset: offset, Timestamp: at, Value: value}
}

// dayOfRaw is a raw-zone day with a duplicate, a record that fails cleaning
// and pins from the synthetic generator.
type dayOfRaw struct {
	dt        string
	records   []batch.RawRecord // every record, as stored
	unique    int               // distinct valid unique_ids
	rejected  int
	duplicate string // the unique_id sent twice; the later one has title "second"
}

func writeDayOfRaw(t *testing.T, s *lake.Store) dayOfRaw {
	t.Helper()
	d := dayOfRaw{dt: "2024-05-01"}
	t0 := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	p0 := synthRecords(300, 0, 0, t0)
	p1 := synthRecords(200, 1, 40, t0.Add(time.Second))
	// The same pin again on partition 1, later, with another title: last write wins.
	var first map[string]any
	testenv.Must(t, json.Unmarshal([]byte(p0[10].Value), &first))
	first["title"] = "second"
	again, _ := json.Marshal(first)
	d.duplicate = first["unique_id"].(string)
	p1 = append(p1, rawRecord(1, 240, t0.Add(time.Hour), string(again)))
	// A record the ingest would have refused: kept in the rejected zone.
	p1 = append(p1, rawRecord(1, 241, t0.Add(time.Hour), `{"index":-1,"unique_id":"x","category":"art"}`))
	putRaw(t, s, d.dt, p0[:150])
	putRaw(t, s, d.dt, p0[150:])
	putRaw(t, s, d.dt, p1)
	// Another day's object is not read.
	putRaw(t, s, "2024-05-02", synthRecords(5, 0, 300, t0.Add(24*time.Hour)))
	d.records = append(append(d.records, p0...), p1...)
	d.unique, d.rejected = 500, 1
	return d
}

// mirrorPrefix copies the objects under prefix into dir, keeping their
// keys as paths, for DuckDB to read as a hive-partitioned dataset.
func mirrorPrefix(t *testing.T, s *lake.Store, prefix, dir string) []string {
	t.Helper()
	ctx := context.Background()
	objs, err := s.List(ctx, prefix)
	testenv.Must(t, err)
	var keys []string
	for _, o := range objs {
		body, err := s.Get(ctx, o.Key)
		testenv.Must(t, err)
		b, err := io.ReadAll(body)
		_ = body.Close()
		testenv.Must(t, err)
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		testenv.Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		testenv.Must(t, os.WriteFile(path, b, 0o644))
		keys = append(keys, o.Key)
	}
	return keys
}

// curatedDump reads the curated zone through DuckDB's read_parquet with
// hive partitioning, as the query lane does: the column names and types,
// and every row as JSON, by unique_id.
func curatedDump(t *testing.T, s *lake.Store) (columns []string, rows []string) {
	t.Helper()
	dir := t.TempDir()
	if len(mirrorPrefix(t, s, "curated/", dir)) == 0 {
		return nil, nil
	}
	db, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	defer db.Close()
	glob := filepath.ToSlash(filepath.Join(dir, "curated", "*", "*.parquet"))
	// The files hold ingested_at as an instant; the view shape (pins)
	// gives it as UTC wall time.
	src := "(" + pin.CuratedSQL(fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", glob)) + ")"
	desc, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM " + src + ")")
	testenv.Must(t, err)
	for desc.Next() {
		var name, typ string
		testenv.Must(t, desc.Scan(&name, &typ))
		columns = append(columns, name+" "+typ)
	}
	testenv.Must(t, desc.Err())
	q, err := db.Query("SELECT to_json(c)::VARCHAR FROM " + src + " c ORDER BY unique_id")
	testenv.Must(t, err)
	for q.Next() {
		var row string
		testenv.Must(t, q.Scan(&row))
		rows = append(rows, row)
	}
	testenv.Must(t, q.Err())
	return columns, rows
}

func newJob(t *testing.T, s *lake.Store, store batch.ServingStore) *batch.Job {
	return &batch.Job{Lake: s, Store: store, Log: testenv.Log(t)}
}

func TestJobWritesACleanDedupedCuratedDayAndKeepsRejectsWithTheReason(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	store := teststores.Serving(t)
	d := writeDayOfRaw(t, s)
	job := newJob(t, s, store)

	res, err := job.Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)
	if res.Objects != 3 || res.RowsIn != int64(len(d.records)) || res.RowsOut != int64(d.unique) || res.RowsRejected != 1 {
		t.Fatalf("result %+v: want 3 objects, %d rows in, %d out, 1 rejected", res, len(d.records), d.unique)
	}

	columns, rows := curatedDump(t, s)
	var wantColumns []string // the contract's, then the hive partition
	for _, c := range pin.Schema {
		wantColumns = append(wantColumns, c.Name+" "+c.DuckDBType())
	}
	wantColumns = append(wantColumns, "dt DATE")
	if !reflect.DeepEqual(columns, wantColumns) {
		t.Fatalf("curated columns through read_parquet(hive_partitioning):\n got %v\nwant %v", columns, wantColumns)
	}
	if len(rows) != d.unique {
		t.Fatalf("curated rows: got %d, want %d", len(rows), d.unique)
	}

	// Spot checks: each row is exactly what pin.Clean makes of its record;
	// the duplicate's row is its later version.
	byID := map[string]string{}
	for _, r := range rows {
		var c struct {
			UniqueID string `json:"unique_id"`
		}
		testenv.Must(t, json.Unmarshal([]byte(r), &c))
		byID[c.UniqueID] = r
	}
	for _, i := range []int{0, 1, 7, 150, 299, 300, 499, 500} {
		rec := d.records[i]
		want, err := pin.CleanRaw([]byte(rec.Value), pin.Lineage{IngestedAt: rec.Timestamp, Partition: rec.Partition, Offset: rec.Offset})
		testenv.Must(t, err)
		if i == 500 && (want.UniqueID != d.duplicate || *want.Title != "second") {
			t.Fatalf("record 500 is not the duplicate's later version: %+v", want)
		}
		assertCuratedRow(t, byID[want.UniqueID], want, d.dt)
	}

	// The rejected record is kept as it came, with the reason.
	dir := t.TempDir()
	keys := mirrorPrefix(t, s, "rejected/", dir)
	if want := []string{layout.RejectedDayKey(d.dt)}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("rejected zone: got %v, want %v", keys, want)
	}
	db, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	defer db.Close()
	var value, reason string
	var offset int64
	testenv.Must(t, db.QueryRow(fmt.Sprintf("SELECT value, reason, kafka_offset FROM read_parquet('%s')",
		filepath.ToSlash(filepath.Join(dir, filepath.FromSlash(keys[0]))))).Scan(&value, &reason, &offset))
	if value != `{"index":-1,"unique_id":"x","category":"art"}` || offset != 241 || !strings.Contains(reason, `"index"`) {
		t.Fatalf("rejected row: value %s, offset %d, reason %q", value, offset, reason)
	}
}

// assertCuratedRow compares a curated row (DuckDB's JSON of it) with the
// cleaned pin it must hold.
func assertCuratedRow(t *testing.T, row string, want pin.Cleaned, dt string) {
	t.Helper()
	if row == "" {
		t.Fatalf("no curated row for %s", want.UniqueID)
	}
	var got map[string]any
	testenv.Must(t, json.Unmarshal([]byte(row), &got))
	wantJSON, _ := json.Marshal(want)
	var w map[string]any
	testenv.Must(t, json.Unmarshal(wantJSON, &w))
	// DuckDB shows a TIMESTAMP without a zone; the day column comes from
	// the hive partition.
	at, err := time.Parse("2006-01-02 15:04:05.999999", got["ingested_at"].(string))
	if err != nil || !at.Equal(want.IngestedAt) {
		t.Fatalf("curated row of %s: ingested_at %v, want %v (%v)", want.UniqueID, got["ingested_at"], want.IngestedAt, err)
	}
	delete(got, "ingested_at")
	delete(w, "ingested_at")
	w["dt"] = dt
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("curated row of %s:\n got %v\nwant %v", want.UniqueID, got, w)
	}
}

func TestJobRerunGivesTheSameCuratedRowsAndServingRows(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	store := teststores.Serving(t)
	d := writeDayOfRaw(t, s)
	job := newJob(t, s, store)

	_, err := job.Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)
	_, rows1 := curatedDump(t, s)
	serving1 := servingDump(t, store, d)

	res, err := job.Run(ctx, d.dt, "run2", nil)
	testenv.Must(t, err)
	_, rows2 := curatedDump(t, s)
	if !reflect.DeepEqual(rows1, rows2) {
		t.Fatalf("the rerun changed the curated rows (%d before, %d after)", len(rows1), len(rows2))
	}
	if serving2 := servingDump(t, store, d); !reflect.DeepEqual(serving1, serving2) {
		t.Fatalf("the rerun changed the serving rows")
	}
	// Only the rerun's objects are left.
	objs, err := s.List(ctx, "curated/")
	testenv.Must(t, err)
	if len(objs) != 2 || objs[0].Key != layout.CommitKey(d.dt, "run2") || objs[1].Key != res.CuratedKeys[0] || objs[1].Key != layout.CuratedDayKey(d.dt) {
		t.Fatalf("curated zone after the rerun: %v, want only %v", objs, res.CuratedKeys)
	}
	rej, err := s.List(ctx, "rejected/")
	testenv.Must(t, err)
	if len(rej) != 1 || rej[0].Key != layout.RejectedDayKey(d.dt) {
		t.Fatalf("rejected zone after the rerun: %v", rej)
	}
}

// servingDump reads every pin of the day from the serving store: by id,
// and each category's top list.
func servingDump(t *testing.T, store batch.ServingStore, d dayOfRaw) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	cats := map[string]bool{}
	for _, rec := range d.records {
		c, err := pin.CleanRaw([]byte(rec.Value), pin.Lineage{})
		if err != nil {
			continue
		}
		got, err := store.Pin(ctx, c.UniqueID)
		testenv.Must(t, err)
		b, _ := json.Marshal(got)
		out = append(out, string(b))
		cats[c.Category] = true
	}
	total := 0
	for cat := range cats {
		top, err := store.TopByCategory(ctx, cat, d.dt, 1000)
		testenv.Must(t, err)
		total += len(top)
		b, _ := json.Marshal(top)
		out = append(out, cat+" "+string(b))
	}
	if total != d.unique {
		t.Fatalf("pins_by_category holds %d pins of %s, want %d", total, d.dt, d.unique)
	}
	sort.Strings(out)
	return out
}
