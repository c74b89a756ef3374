package batch_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// footer opens an encoded Parquet object.
func footer(t *testing.T, b []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	testenv.Must(t, err)
	return f
}

// checkZoneFile asserts what every zone's files share, read from the
// footer as another engine reads it: each timestamp column (wantTimes, all
// of them) is an instant (isAdjustedToUTC=true), and every column chunk is
// zstd-compressed.
func checkZoneFile(t *testing.T, zone string, f *parquet.File, wantTimes ...string) {
	t.Helper()
	var times []string
	for _, el := range f.Metadata().Schema {
		ts, ok := el.LogicalType.Value.(*format.TimestampType)
		if !ok {
			continue
		}
		times = append(times, el.Name)
		if !ts.IsAdjustedToUTC {
			t.Errorf("%s zone: column %s is %s, want a timestamp adjusted to UTC", zone, el.Name, ts)
		}
	}
	if len(times) != len(wantTimes) {
		t.Errorf("%s zone: timestamp columns %v, want %v", zone, times, wantTimes)
	}
	for i := range times {
		if i < len(wantTimes) && times[i] != wantTimes[i] {
			t.Errorf("%s zone: timestamp columns %v, want %v", zone, times, wantTimes)
		}
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("%s zone: column %v is compressed with %s, want ZSTD", zone, c.MetaData.PathInSchema, c.MetaData.Codec)
			}
		}
	}
}

// dictColumns are the curated columns with few distinct values, where a
// dictionary pays (measured on a synthetic day: see the commit adding it).
var dictColumns = map[string]bool{
	"category": true, "follower_count": true, "is_image_or_video": true, "downloaded": true,
	"save_location": true, "kafka_partition": true,
}

func TestEveryZoneWritesInstantsCompressedWithZstd(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 23, 59, 59, 0, time.UTC)
	recs := synthRecords(200, 1, 0, t0)
	recs[3].Value = `{"index": "not a number"}`
	recs[7].Value = `not json`

	var raw bytes.Buffer
	testenv.Must(t, batch.WriteRaw(&raw, recs))
	checkZoneFile(t, "raw", footer(t, raw.Bytes()), "kafka_timestamp")

	var rejected bytes.Buffer
	n, err := batch.WriteRejectedOf(&rejected, recs)
	testenv.Must(t, err)
	if n != 2 {
		t.Fatalf("rejected %d records, want 2", n)
	}
	checkZoneFile(t, "rejected", footer(t, rejected.Bytes()), "kafka_timestamp")

	var pins []pin.Cleaned
	for _, r := range recs {
		c, err := pin.CleanRaw([]byte(r.Value), pin.Lineage{IngestedAt: r.Timestamp, Partition: r.Partition, Offset: r.Offset})
		if err == nil {
			pins = append(pins, c)
		}
	}
	var curated bytes.Buffer
	testenv.Must(t, batch.WriteCurated(&curated, pins))
	f := footer(t, curated.Bytes())
	checkZoneFile(t, "curated", f, "ingested_at")
	// Low-cardinality columns are dictionary-encoded, as other engines
	// see it: the column chunk has a dictionary page.
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			name := c.MetaData.PathInSchema[0]
			hasDict := c.MetaData.DictionaryPageOffset != 0
			if want := dictColumns[name]; hasDict != want {
				t.Errorf("curated zone: column %s has a dictionary: %v, want %v", name, hasDict, want)
			}
		}
	}

	// The instants read back as the ones cleaned, in UTC.
	got, err := parquet.Read[pin.Cleaned](bytes.NewReader(curated.Bytes()), int64(curated.Len()))
	testenv.Must(t, err)
	for i := range got {
		if !got[i].IngestedAt.Equal(pins[i].IngestedAt) {
			t.Fatalf("pin %d: ingested_at %v, wrote %v", i, got[i].IngestedAt, pins[i].IngestedAt)
		}
	}
}

// oldRaw is a raw-zone row as the landing wrote it before the lineage
// columns were renamed.
type oldRaw struct {
	Topic     string    `parquet:"topic"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset"`
	Timestamp time.Time `parquet:"timestamp,timestamp(millisecond)"`
	Key       string    `parquet:"key"`
	Value     string    `parquet:"value"`
}

func TestReadRawReadsObjectsWithTheOldColumnNames(t *testing.T) {
	recs := synthRecords(50, 4, 900, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	old := make([]oldRaw, len(recs))
	for i, r := range recs {
		old[i] = oldRaw(r)
	}
	var buf bytes.Buffer
	testenv.Must(t, parquet.Write(&buf, old))
	got, err := batch.ReadRaw(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	testenv.Must(t, err)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if got[i] != recs[i] {
			t.Fatalf("record %d: read %+v, wrote %+v", i, got[i], recs[i])
		}
	}
}
