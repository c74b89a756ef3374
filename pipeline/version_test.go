package pipeline_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/batch"
	"pinpipe/consume"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
	"pinpipe/stream"
)

// TestNewerSQLAgreesWithNewer evaluates pin.NewerSQL over every pair of a
// set of lineages, in DuckDB (and in Postgres on the real stack), and
// compares each answer with pin.Newer.
func TestNewerSQLAgreesWithNewer(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var lins []pin.Lineage
	for _, p := range []int32{0, 1} {
		for _, o := range []int64{1, 2} {
			for _, at := range []time.Time{t0, t0.Add(time.Millisecond), t0.Add(time.Hour)} {
				lins = append(lins, pin.Lineage{IngestedAt: at, Partition: p, Offset: o})
			}
		}
	}
	var rows []string
	for i, l := range lins {
		rows = append(rows, fmt.Sprintf("(%d, TIMESTAMPTZ '%s', %d, %d)", i, l.IngestedAt.Format("2006-01-02 15:04:05.000000Z07:00"), l.Partition, l.Offset))
	}
	q := `WITH v(i, ingested_at, kafka_partition, kafka_offset) AS (VALUES ` + strings.Join(rows, ", ") + `)
SELECT a.i, b.i, ` + pin.NewerSQL("a", "b") + ` FROM v a CROSS JOIN v b`

	dbs := teststores.SQLEngines(t)
	for name, db := range dbs {
		res, err := db.Query(q)
		testenv.Must(t, err)
		n := 0
		for res.Next() {
			var a, b int
			var got bool
			testenv.Must(t, res.Scan(&a, &b, &got))
			if want := pin.Newer(lins[a], lins[b]); got != want {
				t.Errorf("%s: NewerSQL(%+v, %+v) = %v, pin.Newer says %v", name, lins[a], lins[b], got, want)
			}
			n++
		}
		testenv.Must(t, res.Err())
		_ = res.Close()
		if n != len(lins)*len(lins) {
			t.Fatalf("%s: %d pairs evaluated, want %d", name, n, len(lins)*len(lins))
		}
	}
}

// version is one record of a pin as the topic holds it.
type version struct {
	partition int32
	offset    int64
	at        time.Time
	id        string // the unique_id as sent (any case)
	title     string
}

func (v version) raw() string {
	return fmt.Sprintf(`{"index": %d, "unique_id": %q, "category": "art", "title": %q}`, v.offset, v.id, v.title)
}

func (v version) cleaned(t *testing.T) pin.Cleaned {
	c, err := pin.CleanRaw([]byte(v.raw()), pin.Lineage{IngestedAt: v.at, Partition: v.partition, Offset: v.offset})
	testenv.Must(t, err)
	return c
}

// TestEverySinkKeepsTheSameVersionOfAPin feeds the same conflicting versions
// of pins — timestamps that disagree with their offsets, a day's later
// record stamped on the day before, versions in two partitions, replays —
// to the batch job (curated zone and serving store, day by day, in two
// orders) and to the stream lane (micro-batch by micro-batch, partitions
// interleaved), and checks that each keeps the version pin.Newer picks.
func TestEverySinkKeepsTheSameVersionOfAPin(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	const (
		u = "0b5a4c6e-8f4e-4a39-9f0e-1d2c3b4a5f60" // versions in two partitions over two days
		w = "1c6b5d7f-9a5f-4b4a-8a1f-2e3d4c5b6a71" // one day, the later offset stamped earlier
		x = "2d7c6e8a-ab6a-4c5b-9b2a-3f4e5d6c7b82" // the later offset stamped on the day before
	)
	// Records in each partition's offset order. Partition 1's records came
	// after the topic grew, so they are stamped later than partition 0's.
	p0 := []version{
		{0, 100, d1.Add(10 * time.Hour), u, "u1"},
		{0, 101, d1.Add(9 * time.Hour), strings.ToUpper(u), "u2 (clock behind)"},
		{0, 102, d1.Add(11 * time.Hour), w, "w1"},
		{0, 103, d1.Add(10*time.Hour + 30*time.Minute), w, "w2 (clock behind)"},
		{0, 104, d2.Add(30 * time.Minute), u, "u3"},
		{0, 105, d1.Add(23*time.Hour + 50*time.Minute), u, "u4 (clock behind, day before)"},
		{0, 106, d2.Add(time.Hour), x, "x1"},
		{0, 107, d1.Add(23 * time.Hour), x, "x2 (clock behind, day before)"},
	}
	p1 := []version{
		{1, 7, d2.Add(12 * time.Hour), u, "u5"},
		{1, 8, d2.Add(11 * time.Hour), strings.ToUpper(u), "u6 (clock behind)"},
	}
	want := map[string]string{u: "u6 (clock behind)", w: "w2 (clock behind)", x: "x2 (clock behind, day before)"}
	winner := map[string]pin.Cleaned{}
	for _, v := range append(append([]version{}, p0...), p1...) {
		c := v.cleaned(t)
		if old, ok := winner[c.UniqueID]; !ok || pin.Newer(c.Lineage(), old.Lineage()) {
			winner[c.UniqueID] = c
		}
	}
	for id, title := range want {
		if got := *winner[id].Title; got != title {
			t.Fatalf("pin.Newer picks %q for %s; the test expects %q", got, id, title)
		}
	}
	assertWinners := func(t *testing.T, sink string, got map[string]pin.Cleaned) {
		t.Helper()
		for id, w := range winner {
			g, ok := got[id]
			if !ok {
				t.Errorf("%s holds no version of %s", sink, id)
				continue
			}
			if g.KafkaPartition != w.KafkaPartition || g.KafkaOffset != w.KafkaOffset || *g.Title != *w.Title || !g.IngestedAt.Equal(w.IngestedAt) {
				t.Errorf("%s keeps partition %d offset %d (%q) of %s, want partition %d offset %d (%q)",
					sink, g.KafkaPartition, g.KafkaOffset, *g.Title, id, w.KafkaPartition, w.KafkaOffset, *w.Title)
			}
		}
	}

	t.Run("batch", func(t *testing.T) {
		// The raw zone as the landing leaves it: per partition and day, a
		// record stamped before its predecessor's day starts an object.
		objects := map[string][][]version{
			pin.DT(d1): {p0[0:4], p0[5:6], p0[7:8]},
			pin.DT(d2): {p0[4:5], p0[6:7], p1},
		}
		for name, days := range map[string][]string{
			"days in order":         {pin.DT(d1), pin.DT(d2), pin.DT(d1)},
			"days in reverse order": {pin.DT(d2), pin.DT(d1), pin.DT(d2)},
		} {
			t.Run(name, func(t *testing.T) {
				lk := openTestLake(t)
				for dt, objs := range objects {
					for _, vs := range objs {
						recs := make([]batch.RawRecord, len(vs))
						for i, v := range vs {
							recs[i] = batch.RawRecord{Topic: "pins", Partition: v.partition, Offset: v.offset, Timestamp: v.at, Key: strings.ToLower(v.id), Value: v.raw()}
						}
						var buf bytes.Buffer
						testenv.Must(t, batch.WriteRaw(&buf, recs))
						testenv.Must(t, lk.Put(ctx, layout.RawKey(dt, int(vs[0].partition), vs[0].offset, vs[len(vs)-1].offset), &buf))
					}
				}
				store := teststores.Serving(t)
				job := &batch.Job{Lake: lk, Store: store, Log: testenv.Log(t)}
				for i, dt := range days {
					_, err := job.Run(ctx, dt, fmt.Sprintf("run%d", i), nil)
					testenv.Must(t, err)
				}
				served := map[string]pin.Cleaned{}
				for id := range winner {
					c, err := store.Pin(ctx, id)
					testenv.Must(t, err)
					served[id] = c
				}
				assertWinners(t, "the serving store", served)
				assertWinners(t, "the curated zone", curatedWinners(t, lk))
			})
		}
	})

	t.Run("stream", func(t *testing.T) {
		// Micro-batches of one partition each, partitions interleaved, a
		// batch with two versions of a pin, and a replay at the end.
		batches := [][]version{p0[0:2], p1[0:1], p0[2:5], p1[1:2], p0[5:8], p0[0:4]}
		for name, sink := range teststores.StreamSinks(t) {
			t.Run(name, func(t *testing.T) {
				lane := stream.New(stream.Options{Sink: sink, Registry: prometheus.NewRegistry(), Log: testenv.Log(t)})
				for _, vs := range batches {
					b := consume.Batch{Topic: "pins", Partition: int(vs[0].partition)}
					for _, v := range vs {
						b.Messages = append(b.Messages, kafka.Message{Topic: "pins", Partition: int(v.partition), Offset: v.offset,
							Time: v.at, Key: []byte(strings.ToLower(v.id)), Value: []byte(v.raw())})
					}
					testenv.Must(t, lane.Handle(ctx, b))
				}
				recent, err := sink.Recent(ctx, 100)
				testenv.Must(t, err)
				got := map[string]pin.Cleaned{}
				for _, c := range recent {
					if _, dup := got[c.UniqueID]; dup {
						t.Fatalf("%s holds two rows of %s", name, c.UniqueID)
					}
					got[c.UniqueID] = c
				}
				assertWinners(t, name, got)
			})
		}
	})
}

// openTestLake returns a fresh bucket on the real S3 server or an embedded one.
func openTestLake(t *testing.T) *lake.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := lake.Open(ctx, testenv.S3(t))
	testenv.Must(t, err)
	return s
}

// curatedWinners reads every day of the curated zone with DuckDB, as the
// query lane does, and returns for each unique_id the row that no other
// row of it is newer than (pin.NewerSQL): a pin's days each hold the day's
// winner, and the pin's winner is the newest of those.
func curatedWinners(t *testing.T, s *lake.Store) map[string]pin.Cleaned {
	t.Helper()
	dir := t.TempDir()
	copyCurated(t, s, dir)
	db, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	defer db.Close()
	glob := filepath.ToSlash(filepath.Join(dir, "curated", "*", "*.parquet"))
	rows, err := db.Query(fmt.Sprintf(`WITH c AS (SELECT * FROM read_parquet('%s', hive_partitioning = true))
SELECT to_json(struct_pack(unique_id, title, ingested_at := strftime(ingested_at, '%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ'),
	kafka_partition, kafka_offset))::VARCHAR
FROM c WHERE NOT EXISTS (SELECT 1 FROM c o WHERE o.unique_id = c.unique_id AND %s)`, glob, pin.NewerSQL("o", "c")))
	testenv.Must(t, err)
	defer rows.Close()
	out := map[string]pin.Cleaned{}
	for rows.Next() {
		var js string
		testenv.Must(t, rows.Scan(&js))
		var c pin.Cleaned
		testenv.Must(t, json.Unmarshal([]byte(js), &c))
		if _, dup := out[c.UniqueID]; dup {
			t.Fatalf("the curated zone has two newest rows of %s", c.UniqueID)
		}
		out[c.UniqueID] = c
	}
	testenv.Must(t, rows.Err())
	return out
}
