package batch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/synth"
)

// synthRecords returns n raw records holding synthetic pins, as partition p
// from offset first, one millisecond apart from t0.
func synthRecords(n, p int, first int64, t0 time.Time) []batch.RawRecord {
	g := synth.New(uint64(p) + 1)
	recs := make([]batch.RawRecord, n)
	for i := range recs {
		pin := g.Next()
		v, _ := json.Marshal(pin)
		recs[i] = batch.RawRecord{
			Topic:     "pins",
			Partition: int32(p),
			Offset:    first + int64(i),
			Timestamp: t0.Add(time.Duration(i) * time.Millisecond).UTC(),
			Key:       pin["unique_id"].(string),
			Value:     string(v),
		}
	}
	return recs
}

func TestRawObjectKeepsEveryFieldByteEqual(t *testing.T) {
	recs := synthRecords(500, 2, 1234, time.Date(2024, 5, 1, 23, 59, 59, 0, time.UTC))
	// Bytes a JSON re-encoding would change must survive as they came.
	recs[0].Value = `{"index":1, "unique_id":"x","category":"art","extra":"\u00e9 kept"}`
	recs[1].Key = ""

	var buf bytes.Buffer
	testenv.Must(t, batch.WriteRaw(&buf, recs))
	got, err := batch.ReadRaw(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	testenv.Must(t, err)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if !got[i].Timestamp.Equal(recs[i].Timestamp) || got[i].Timestamp.Location() != time.UTC {
			t.Fatalf("record %d: timestamp %v, wrote %v", i, got[i].Timestamp, recs[i].Timestamp)
		}
		got[i].Timestamp = recs[i].Timestamp
		if got[i] != recs[i] {
			t.Fatalf("record %d: read %+v, wrote %+v", i, got[i], recs[i])
		}
	}
}

func TestRawObjectsListsEachPartitionInOffsetOrder(t *testing.T) {
	ctx := context.Background()
	s, err := lake.Open(ctx, testenv.S3(t))
	testenv.Must(t, err)
	// Partition 10 sorts before 2 by name, and offset 9 before 10 only
	// because layout.RawKey pads them.
	keys := []string{
		layout.RawKey("2024-05-02", 10, 0, 4),
		layout.RawKey("2024-05-02", 2, 10, 19),
		layout.RawKey("2024-05-02", 2, 0, 9),
		layout.RawKey("2024-05-01", 2, 0, 0),
		"raw/dt=2024-05-02/_SUCCESS",
	}
	for _, k := range keys {
		testenv.Must(t, s.Put(ctx, k, strings.NewReader("x")))
	}

	day, err := batch.RawObjects(ctx, s, "2024-05-02")
	testenv.Must(t, err)
	want := []string{keys[2], keys[1], keys[0]}
	if len(day) != len(want) {
		t.Fatalf("listed %d objects for the day, want %d: %+v", len(day), len(want), day)
	}
	for i, o := range day {
		if o.Key != want[i] {
			t.Fatalf("object %d is %s, want %s", i, o.Key, want[i])
		}
	}
	if o := day[1]; o.DT != "2024-05-02" || o.Partition != 2 || o.First != 10 || o.Last != 19 {
		t.Fatalf("parsed %+v from %s", o, o.Key)
	}

	all, err := batch.RawObjects(ctx, s, "")
	testenv.Must(t, err)
	if len(all) != 4 || all[0].Key != keys[3] {
		t.Fatalf("all days: %+v", all)
	}
	none, err := batch.RawObjects(ctx, s, "2024-05-03")
	testenv.Must(t, err)
	if len(none) != 0 {
		t.Fatalf("a day with no objects listed %+v", none)
	}
}

// BenchmarkWriteRaw encodes 10,000 synthetic pins as one raw object, the
// landing's default object size, and reports records/s and bytes/record.
func BenchmarkWriteRaw(b *testing.B) {
	recs := synthRecords(10000, 0, 0, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	in := 0
	for _, r := range recs {
		in += len(r.Value)
	}
	var buf bytes.Buffer
	b.SetBytes(int64(in))
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := batch.WriteRaw(&buf, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(buf.Len())/float64(len(recs)), "bytes/record")
	b.ReportMetric(float64(in)/float64(len(recs)), "json_bytes/record")
}

// BenchmarkReadRaw decodes that object back, as the daily job does.
func BenchmarkReadRaw(b *testing.B) {
	recs := synthRecords(10000, 0, 0, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	if err := batch.WriteRaw(&buf, recs); err != nil {
		b.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes())
	for b.Loop() {
		if _, err := batch.ReadRaw(r, int64(buf.Len())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
}
