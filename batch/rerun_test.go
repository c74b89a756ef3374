package batch_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// curatedDump reads every .parquet object of the curated zone, as Spark,
// Trino or Athena read a hive-partitioned prefix: with no knowledge of
// pinpipe's commit markers. So these tests see what such a reader sees.

func TestARerunNeverShowsAReaderIgnoringMarkersTheDayTwice(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	job := newJob(t, s, teststores.Serving(t))
	_, err := job.Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)
	_, before := curatedDump(t, s)
	if len(before) != d.unique {
		t.Fatalf("after the first run: %d curated rows, want %d", len(before), d.unique)
	}

	var during []string
	job.BeforeCommit = func(context.Context) error {
		_, during = curatedDump(t, s)
		return nil
	}
	_, err = job.Run(ctx, d.dt, "run2", nil)
	testenv.Must(t, err)
	if during == nil {
		t.Fatal("the rerun never reached BeforeCommit")
	}
	if !reflect.DeepEqual(during, before) {
		t.Fatalf("mid-rerun, a reader ignoring markers read %d rows, want the day's %d once", len(during), len(before))
	}
	if _, after := curatedDump(t, s); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the rerun: %d rows, want %d", len(after), len(before))
	}
}

func TestARerunMigratesADayOfTheOldLayout(t *testing.T) {
	ctx := context.Background()
	s := openLake(t)
	d := writeDayOfRaw(t, s)
	// The day as the old layout kept it: a committed run's parts and its
	// rejected object, named by the run.
	c, err := pin.CleanRaw([]byte(d.records[0].Value), pin.Lineage{IngestedAt: d.records[0].Timestamp})
	testenv.Must(t, err)
	var part bytes.Buffer
	testenv.Must(t, batch.WriteCurated(&part, []pin.Cleaned{c}))
	for _, k := range []string{layout.CuratedKey(d.dt, "run0", 0), layout.CuratedKey(d.dt, "run0", 1), layout.RejectedKey(d.dt, "run0")} {
		testenv.Must(t, s.Put(ctx, k, bytes.NewReader(part.Bytes())))
	}
	testenv.Must(t, s.Put(ctx, layout.CommitKey(d.dt, "run0"), strings.NewReader(`{"run":"run0","rows":2,"parts":[]}`)))

	job := newJob(t, s, teststores.Serving(t))
	_, err = job.Run(ctx, d.dt, "run1", nil)
	testenv.Must(t, err)
	var keys []string
	for _, prefix := range []string{"curated/", "rejected/"} {
		objs, err := s.List(ctx, prefix)
		testenv.Must(t, err)
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	want := []string{layout.CommitKey(d.dt, "run1"), layout.CuratedDayKey(d.dt), layout.RejectedDayKey(d.dt)}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("after the run:\n got %v\nwant %v", keys, want)
	}
	if _, rows := curatedDump(t, s); len(rows) != d.unique {
		t.Fatalf("%d curated rows, want %d", len(rows), d.unique)
	}
}
