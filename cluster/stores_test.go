//go:build cluster

package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// rawZone reads the raw zone, loading each object once: the landing never
// rewrites an object.
type rawZone struct {
	lake   *lake.Store
	loaded map[string][]batch.RawRecord
}

// records returns every record of the raw zone now.
func (z *rawZone) records(t *testing.T) []batch.RawRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := batch.RawObjects(ctx, z.lake, "")
	testenv.Must(t, err)
	var out []batch.RawRecord
	for _, o := range objs {
		recs, ok := z.loaded[o.Key]
		if !ok {
			recs, err = batch.LoadRaw(ctx, z.lake, o.Key)
			testenv.Must(t, err)
			z.loaded[o.Key] = recs
		}
		out = append(out, recs...)
	}
	return out
}

// keys returns how many raw records each key has, and fails the test at
// once when a partition and offset is in the raw zone twice (that cannot
// heal).
func (z *rawZone) keys(t *testing.T) (map[string]int, int) {
	t.Helper()
	recs := z.records(t)
	at := map[string]bool{}
	keys := map[string]int{}
	for _, r := range recs {
		po := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
		if at[po] {
			t.Fatalf("the raw zone holds partition/offset %s twice", po)
		}
		at[po] = true
		keys[r.Key]++
	}
	return keys, len(recs)
}

// missing returns how many of ids are not in have, and one of them.
func missing[V any](ids map[string]bool, have map[string]V) (int, string) {
	n, one := 0, ""
	for id := range ids {
		if _, ok := have[id]; !ok {
			n++
			one = id
		}
	}
	return n, one
}

// postgresIDs returns how many rows the stream lane's pins table holds for
// each unique_id.
func postgresIDs(t *testing.T, url string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	testenv.Must(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT unique_id, count(*) FROM pinterest.pins GROUP BY unique_id`)
	if err != nil {
		// The lane creates the table when it first starts.
		t.Logf("postgres: %v", err)
		return nil
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		testenv.Must(t, rows.Scan(&id, &n))
		out[id] = n
	}
	testenv.Must(t, rows.Err())
	return out
}

// cassandraIDs returns every unique_id of the serving table pins, with the
// times each was read (a primary key: once, unless the read is wrong).
func cassandraIDs(t *testing.T, hosts []string, keyspace string) map[string]int {
	t.Helper()
	cluster := gocql.NewCluster(hosts...)
	cluster.Keyspace = keyspace
	cluster.Timeout = 30 * time.Second
	s, err := cluster.CreateSession()
	testenv.Must(t, err)
	defer s.Close()
	out := map[string]int{}
	it := s.Query(`SELECT unique_id FROM pins`).PageSize(5000).Iter()
	var id string
	for it.Scan(&id) {
		out[id]++
	}
	testenv.Must(t, it.Close())
	return out
}

// curatedIDs returns, for every day of the curated zone, the rows of its
// object by unique_id (or, in the old layout, its newest committed run's
// parts), as readers take the zone.
func curatedIDs(t *testing.T, s *lake.Store) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	objs, err := s.List(ctx, layout.Curated.Prefix())
	testenv.Must(t, err)
	newest := map[string]string{} // dt → run
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		if ok && k.Kind == layout.Commit && k.Run > newest[k.DT] {
			newest[k.DT] = k.Run
		}
	}
	out := map[string]int{}
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		// The batch job writes a day as one object; parts of a committed
		// run are the old layout's.
		day := ok && k.Kind == layout.CuratedDay
		if !day && (!ok || k.Kind != layout.CuratedPart || k.Run != newest[k.DT]) {
			continue
		}
		body, err := s.Get(ctx, o.Key)
		testenv.Must(t, err)
		b, err := io.ReadAll(body)
		_ = body.Close()
		testenv.Must(t, err)
		rows, err := parquet.Read[struct {
			UniqueID string `parquet:"unique_id"`
		}](bytes.NewReader(b), int64(len(b)))
		testenv.Must(t, err)
		for _, r := range rows {
			out[r.UniqueID]++
		}
	}
	return out
}

// sameOnce checks that got holds every id of want exactly once and nothing
// else, and returns what is wrong, or "".
func sameOnce(want map[string]bool, got map[string]int) string {
	var problems []string
	if n, one := missing(want, got); n > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d accepted pins missing (one: %s)", n, len(want), one))
	}
	var twice, extra []string
	for id, n := range got {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s ×%d", id, n))
		}
		if !want[id] {
			extra = append(extra, id)
		}
	}
	if len(twice) > 0 {
		slices.Sort(twice)
		problems = append(problems, fmt.Sprintf("%d pins more than once (%s)", len(twice), strings.Join(twice[:min(3, len(twice))], ", ")))
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("%d pins never accepted (one: %s)", len(extra), extra[0]))
	}
	return strings.Join(problems, "; ")
}
