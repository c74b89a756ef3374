package query_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/pin"
)

// TestNewestSQLKeepsTheVersionNewerPicks evaluates pin.NewestSQL, the
// dedupe of pins_live, in DuckDB (and in Postgres on the real stack) over
// random groups of versions — timestamps against offsets in a partition,
// versions in several partitions, equal timestamps, the same record twice —
// and checks each group gives one row: the version a fold with pin.Newer
// (the batch job's in-batch dedupe) keeps. Groups where Newer forms a cycle
// (a clock running backwards in a partition that also has versions
// elsewhere) have no single answer and are left out.
func TestNewestSQLKeepsTheVersionNewerPicks(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(11, 12))
	type row struct {
		group int
		lin   pin.Lineage
	}
	var rows []row
	want := map[int]pin.Lineage{}
	for g := 0; len(want) < 400; g++ {
		partitions := 1 + r.IntN(3)
		var lins []pin.Lineage
		for range 1 + r.IntN(6) {
			l := pin.Lineage{
				Partition:  int32(r.IntN(partitions)),
				Offset:     int64(r.IntN(8)),
				IngestedAt: t0.Add(time.Duration(r.IntN(4)) * time.Second),
			}
			if len(lins) > 0 && r.IntN(6) == 0 {
				l = lins[r.IntN(len(lins))] // the same record again
			}
			lins = append(lins, l)
		}
		// Two records at one partition and offset are one record.
		dedup := map[[2]int64]pin.Lineage{}
		for _, l := range lins {
			k := [2]int64{int64(l.Partition), l.Offset}
			if prev, ok := dedup[k]; ok && !prev.IngestedAt.Equal(l.IngestedAt) {
				l.IngestedAt = prev.IngestedAt
			}
			dedup[k] = l
		}
		lins = lins[:0]
		for _, l := range dedup {
			lins = append(lins, l)
		}
		winner, ok := uniqueMax(lins)
		if !ok {
			continue
		}
		want[g] = winner
		for _, l := range lins {
			rows = append(rows, row{g, l})
		}
	}
	var values []string
	for _, x := range rows {
		values = append(values, fmt.Sprintf("(%d, TIMESTAMP '%s', %d, %d)", x.group,
			x.lin.IngestedAt.Format("2006-01-02 15:04:05"), x.lin.Partition, x.lin.Offset))
	}
	q := `WITH v(grp, ingested_at, kafka_partition, kafka_offset) AS (VALUES ` + strings.Join(values, ", ") + `)
SELECT grp, kafka_partition, kafka_offset FROM (` + pin.NewestSQL("v", "grp") + `) AS newest`

	dbs := teststores.SQLEngines(t)
	for name, db := range dbs {
		res, err := db.Query(q)
		testenv.Must(t, err)
		got := map[int]pin.Lineage{}
		for res.Next() {
			var g int
			var l pin.Lineage
			testenv.Must(t, res.Scan(&g, &l.Partition, &l.Offset))
			if _, dup := got[g]; dup {
				t.Fatalf("%s: group %d gave two rows", name, g)
			}
			got[g] = l
		}
		testenv.Must(t, res.Err())
		res.Close()
		if len(got) != len(want) {
			t.Fatalf("%s: %d groups gave a row, want %d", name, len(got), len(want))
		}
		for g, w := range want {
			if l := got[g]; l.Partition != w.Partition || l.Offset != w.Offset {
				t.Errorf("%s: group %d kept partition %d offset %d, pin.Newer keeps partition %d offset %d",
					name, g, l.Partition, l.Offset, w.Partition, w.Offset)
			}
		}
	}
}

// uniqueMax returns what a fold with pin.Newer keeps of lins in every
// arrival order: the version no other is newer than. Returns ok=false when
// there is no such single version (Newer forms a cycle).
func uniqueMax(lins []pin.Lineage) (pin.Lineage, bool) {
	var found []pin.Lineage
	for _, a := range lins {
		beaten := false
		for _, b := range lins {
			beaten = beaten || pin.Newer(b, a)
		}
		if !beaten {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		return pin.Lineage{}, false
	}
	// Without a cycle the fold ends at the maximum whatever the order.
	for _, order := range [][]pin.Lineage{lins, reversed(lins)} {
		w := order[0]
		for _, l := range order[1:] {
			if pin.Newer(l, w) {
				w = l
			}
		}
		if w != found[0] {
			return pin.Lineage{}, false
		}
	}
	return found[0], true
}

func reversed(l []pin.Lineage) []pin.Lineage {
	out := make([]pin.Lineage, len(l))
	for i := range l {
		out[len(l)-1-i] = l[i]
	}
	return out
}
