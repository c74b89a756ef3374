package query_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// rawObject returns n synthetic pins as one raw-zone object's bytes and
// the cleaned pins.
func rawObject(b testing.TB, dt string, n int) ([]byte, []pin.Cleaned) {
	d := pinsOf(b, 7, dt, n)
	for i := range d.raw { // one partition, as the landing writes an object
		d.raw[i].Partition, d.raw[i].Offset = 0, int64(i)
		d.cleaned[i].KafkaPartition, d.cleaned[i].KafkaOffset = 0, int64(i)
	}
	var buf bytes.Buffer
	testenv.Must(b, batch.WriteRaw(&buf, d.raw))
	return buf.Bytes(), d.cleaned
}

// BenchmarkCleanObject is the CPU cost of one cleaned copy: a raw object
// decoded, every record cleaned, written back as curated Parquet.
func BenchmarkCleanObject(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			raw, _ := rawObject(b, "2026-03-01", n)
			var out bytes.Buffer
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				out.Reset()
				if _, err := batch.CleanObject(bytes.NewReader(raw), int64(len(raw)), &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(float64(out.Len())/float64(len(raw)), "cleaned/raw_bytes")
		})
	}
}

// BenchmarkMirrorRefreshWithNewRawObject is what pins_live adds to a
// refresh: each iteration lands one raw object and takes a snapshot. For a
// landed object of an uncurated day the refresh downloads and cleans it;
// for an object the batch job does not read (another name) it only
// downloads it, as every refresh did before pins_live.
func BenchmarkMirrorRefreshWithNewRawObject(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		raw, _ := rawObject(b, "2026-03-01", n)
		for _, kind := range []string{"download+clean", "download only"} {
			b.Run(fmt.Sprintf("%s/records=%d", kind, n), func(b *testing.B) {
				e := newMirror(b, 1<<40, time.Nanosecond)
				i := 0
				for b.Loop() {
					b.StopTimer()
					key := layout.RawKey("2026-03-01", 0, int64(i*n), int64(i*n+n-1))
					if kind == "download only" {
						key = fmt.Sprintf("raw/dt=2026-03-01/other-%d.parquet", i)
					}
					i++
					testenv.Must(b, e.store.Put(context.Background(), key, bytes.NewReader(raw)))
					b.StartTimer()
					e.snapshot().Release()
				}
			})
		}
	}
}

// BenchmarkPinsLiveQuery compares a query over pins with the same query
// over pins_live, on a day read from the curated zone and on a day read
// from cleaned raw objects (union and dedupe by pin.NewestSQL), 100,000
// pins a day in 10 objects.
func BenchmarkPinsLiveQuery(b *testing.B) {
	st := newStack(b, nil)
	const objects, per = 10, 10_000
	ctx := context.Background()
	for _, dt := range []string{"2026-03-01", "2026-03-02"} {
		var all []pin.Cleaned
		for o := range objects {
			d := pinsOf(b, uint64(o), dt, per)
			for i := range d.raw {
				d.raw[i].Partition, d.raw[i].Offset = int32(o), int64(i)
				d.cleaned[i].KafkaPartition, d.cleaned[i].KafkaOffset = int32(o), int64(i)
			}
			st.putRaw(dt, d.raw)
			all = append(all, d.cleaned...)
		}
		if dt == "2026-03-01" { // curated after its raw objects: current
			nextSecond(b)
			run := "20260302T080000.000000Z-aaaaaa"
			st.putCurated(dt, run, 0, all)
			testenv.Must(b, st.lake.Put(ctx, layout.CommitKey(dt, run), strings.NewReader("{}")))
		}
	}
	for _, q := range []struct{ name, sql string }{
		{"pins curated day", "SELECT category, count(*) FROM pins WHERE dt = DATE '2026-03-01' GROUP BY 1"},
		{"pins_live curated day", "SELECT category, count(*) FROM pins_live WHERE dt = DATE '2026-03-01' GROUP BY 1"},
		{"pins_live cleaned day", "SELECT category, count(*) FROM pins_live WHERE dt = DATE '2026-03-02' GROUP BY 1"},
		{"pins_live both days", "SELECT category, count(*) FROM pins_live GROUP BY 1"},
	} {
		b.Run(q.name, func(b *testing.B) {
			st.ok(q.sql) // the mirror is filled and cleaned before timing
			for b.Loop() {
				st.ok(q.sql)
			}
		})
	}
}
