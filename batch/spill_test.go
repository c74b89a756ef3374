package batch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/parquet-go/parquet-go"

	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// readObjects decodes the Parquet objects at keys, in the order given, as T.
func readObjects[T any](t *testing.T, s *lake.Store, keys []string) []T {
	t.Helper()
	var out []T
	for _, k := range keys {
		body, err := s.Get(context.Background(), k)
		testenv.Must(t, err)
		b, err := io.ReadAll(body)
		_ = body.Close()
		testenv.Must(t, err)
		rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		testenv.Must(t, err)
		out = append(out, rows...)
	}
	return out
}

// rejected is a rejected-zone row, as the zone's schema names it.
type rejected struct {
	Partition int32  `parquet:"partition"`
	Offset    int64  `parquet:"offset"`
	Value     string `parquet:"value"`
	Reason    string `parquet:"reason"`
}

func TestJobOverADayLargerThanItsMemorySpillsAndGivesTheSameRows(t *testing.T) {
	ctx := context.Background()

	// The same raw day, run in memory and through spill files, each into
	// its own lake and serving store.
	memLake, memStore := openLake(t), teststores.Serving(t)
	d := writeDayOfRaw(t, memLake)
	memRes, err := newJob(t, memLake, memStore).Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)

	spillLake, spillStore := openLake(t), teststores.Serving(t)
	writeDayOfRaw(t, spillLake)
	spillDir := filepath.Join(t.TempDir(), "batch-spill")
	leftover := filepath.Join(spillDir, "crashed-run", "bucket-0000")
	testenv.Must(t, os.MkdirAll(filepath.Dir(leftover), 0o755))
	testenv.Must(t, os.WriteFile(leftover, []byte("left by a crash"), 0o644))
	job := newJob(t, spillLake, spillStore)
	job.Memory, job.SpillDir = 64<<10, spillDir // the day's raw zone alone is larger
	testenv.Must(t, job.RemoveSpills())
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("a crashed run's spill file survived RemoveSpills: %v", err)
	}
	var spilled bool
	job.AfterCurated = func(context.Context) error {
		entries, err := os.ReadDir(spillDir)
		testenv.Must(t, err)
		spilled = len(entries) == 1
		return nil
	}
	res, err := job.Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)
	if !spilled {
		t.Fatal("the run held the day in memory: no spill directory while it ran")
	}
	if entries, err := os.ReadDir(spillDir); err != nil || len(entries) != 0 {
		t.Fatalf("spill files left after the run: %v (%v)", entries, err)
	}

	if res.RowsIn != memRes.RowsIn || res.RowsOut != memRes.RowsOut || res.RowsRejected != memRes.RowsRejected ||
		!reflect.DeepEqual(res.CuratedKeys, memRes.CuratedKeys) || res.RejectedKey != memRes.RejectedKey {
		t.Fatalf("spilled run %+v, in-memory run %+v", res, memRes)
	}
	// Row for row, in the objects' order.
	memRows, rows := readObjects[pin.Cleaned](t, memLake, memRes.CuratedKeys), readObjects[pin.Cleaned](t, spillLake, res.CuratedKeys)
	for i := range rows {
		if i < len(memRows) && !reflect.DeepEqual(rows[i], memRows[i]) {
			a, _ := json.Marshal(rows[i])
			b, _ := json.Marshal(memRows[i])
			t.Fatalf("curated row %d:\n got %s\nwant %s", i, a, b)
		}
	}
	if len(rows) != d.unique || !reflect.DeepEqual(rows, memRows) {
		t.Fatalf("curated rows differ: %d spilled, %d in memory, want %d", len(rows), len(memRows), d.unique)
	}
	memRej, rej := readObjects[rejected](t, memLake, []string{memRes.RejectedKey}), readObjects[rejected](t, spillLake, []string{res.RejectedKey})
	if len(rej) != d.rejected || !reflect.DeepEqual(rej, memRej) {
		t.Fatalf("rejected rows: spilled %v, in memory %v", rej, memRej)
	}
	_, memDump := curatedDump(t, memLake)
	_, dump := curatedDump(t, spillLake)
	if !reflect.DeepEqual(dump, memDump) {
		t.Fatal("the curated zones read differently through DuckDB")
	}
	if got, want := servingDump(t, spillStore, d), servingDump(t, memStore, d); !reflect.DeepEqual(got, want) {
		t.Fatalf("serving rows differ:\n got %v\nwant %v", got, want)
	}
	var commit, memCommit bytes.Buffer
	for _, c := range []struct {
		s *lake.Store
		b *bytes.Buffer
	}{{spillLake, &commit}, {memLake, &memCommit}} {
		body, err := c.s.Get(ctx, layout.CommitKey(d.dt, "run1"))
		testenv.Must(t, err)
		_, err = io.Copy(c.b, body)
		testenv.Must(t, err)
		_ = body.Close()
	}
	if commit.String() != memCommit.String() {
		t.Fatalf("commit markers differ:\n got %s\nwant %s", commit.String(), memCommit.String())
	}
}
