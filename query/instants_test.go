package query_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"pinpipe/internal/testenv"
	"pinpipe/lake/layout"
)

// oldCurated is a curated row as pinpipe wrote it before the curated zone
// was UTC-adjusted: ingested_at a TIMESTAMP of UTC wall time.
type oldCurated struct {
	IDIndex        int64     `parquet:"id_index"`
	Title          *string   `parquet:"title"`
	Category       string    `parquet:"category"`
	UniqueID       string    `parquet:"unique_id"`
	Description    *string   `parquet:"description"`
	PosterName     *string   `parquet:"poster_name"`
	FollowerCount  *int64    `parquet:"follower_count"`
	TagList        *string   `parquet:"tag_list"`
	Tags           []string  `parquet:"tags,list"`
	IsImageOrVideo *string   `parquet:"is_image_or_video"`
	ImageSrc       *string   `parquet:"image_src"`
	Downloaded     *int32    `parquet:"downloaded"`
	SaveLocation   *string   `parquet:"save_location"`
	IngestedAt     time.Time `parquet:"ingested_at,timestamp(microsecond:local)"`
	KafkaPartition int32     `parquet:"kafka_partition"`
	KafkaOffset    int64     `parquet:"kafka_offset"`
}

func TestPinsViewReadsOldAndUTCAdjustedDaysAsTheSameInstants(t *testing.T) {
	st := newStack(t, nil)
	at := time.Date(2024, 5, 1, 23, 30, 0, 123456000, time.UTC)
	newDay := pinsOf(t, 7, "2024-05-02", 3)
	for i := range newDay.cleaned {
		newDay.cleaned[i].IngestedAt = at.Add(24 * time.Hour)
	}
	st.putCurated("2024-05-02", "20240503T080000.000000Z-a", 0, newDay.cleaned)
	var buf bytes.Buffer
	testenv.Must(t, parquet.Write(&buf, []oldCurated{{Category: "art", UniqueID: "old-1", Tags: []string{}, IngestedAt: at}}))
	testenv.Must(t, st.lake.Put(context.Background(), layout.CuratedKey("2024-05-01", "20240502T080000.000000Z-a", 0), &buf))

	a := st.post(`SELECT dt::VARCHAR, ingested_at, epoch_us(ingested_at) FROM pins ORDER BY dt, unique_id`, 0)
	if a.Status != 200 {
		t.Fatalf("status %d: %s", a.Status, a.Body)
	}
	if typ := a.Result.Columns[1].Type; typ != "TIMESTAMP" {
		t.Errorf("ingested_at is %s in the pins view, want TIMESTAMP (UTC wall time) as before", typ)
	}
	if len(a.Result.Rows) != 4 {
		t.Fatalf("%d rows, want 4: %v", len(a.Result.Rows), a.Result.Rows)
	}
	for i, r := range a.Result.Rows {
		want := at
		if i > 0 {
			want = at.Add(24 * time.Hour)
		}
		if r[1] != want.Format(time.RFC3339Nano) {
			t.Errorf("row %d (%v): ingested_at %v, want %s", i, r[0], r[1], want.Format(time.RFC3339Nano))
		}
		if us, _ := r[2].(interface{ Int64() (int64, error) }).Int64(); us != want.UnixMicro() {
			t.Errorf("row %d: epoch_us %d, want %d", i, us, want.UnixMicro())
		}
	}
	// pins_live reads the curated days the same way.
	if n := st.counts(`SELECT ingested_at::VARCHAR, count(*) FROM pins_live GROUP BY 1`); n[at.Format("2006-01-02 15:04:05.999999")] != 1 {
		t.Errorf("pins_live ingested_at: %v, want one row at %s", n, at)
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

func TestPinsRawReadsOldAndNewColumnNamesUnderBoth(t *testing.T) {
	st := newStack(t, nil)
	oldDay, newDay := pinsOf(t, 3, "2024-05-01", 2), pinsOf(t, 4, "2024-05-02", 2)
	st.putRaw(newDay.dt, newDay.raw[:1])
	var buf bytes.Buffer
	r := oldDay.raw[0]
	testenv.Must(t, parquet.Write(&buf, []oldRaw{{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Value: r.Value}}))
	testenv.Must(t, st.lake.Put(context.Background(), layout.RawKey(oldDay.dt, int(r.Partition), r.Offset, r.Offset), &buf))

	a := st.post(`SELECT dt::VARCHAR, kafka_partition, kafka_offset, kafka_timestamp, "partition", "offset", "timestamp" FROM pins_raw ORDER BY dt`, 0)
	if a.Status != 200 {
		t.Fatalf("status %d: %s", a.Status, a.Body)
	}
	for i, want := range []batchRecord{{oldDay.dt, r.Partition, r.Offset, r.Timestamp}, {newDay.dt, newDay.raw[0].Partition, newDay.raw[0].Offset, newDay.raw[0].Timestamp}} {
		got := fmt.Sprint(a.Result.Rows[i])
		w := fmt.Sprint([]any{want.dt, want.p, want.o, want.ts.Format(time.RFC3339Nano), want.p, want.o, want.ts.Format(time.RFC3339Nano)})
		if got != w {
			t.Errorf("pins_raw row %d: %s, want %s", i, got, w)
		}
	}
}

// TestPinsRawUnionsColumnNamesOnlyWhenAFileHasTheOldOnes checks which
// pins_raw a snapshot gets: files that all have the current columns are
// read as they are; one file with the old names brings back the union by
// name, and the same rows.
func TestPinsRawUnionsColumnNamesOnlyWhenAFileHasTheOldOnes(t *testing.T) {
	st := newStack(t, nil)
	d := pinsOf(t, 5, "2024-05-02", 3)
	st.putRaw(d.dt, d.raw)
	plan := func() string {
		a := st.post("EXPLAIN SELECT count(*) FROM pins_raw", 0)
		if a.Status != 200 {
			t.Fatalf("EXPLAIN: status %d: %s", a.Status, a.Body)
		}
		return fmt.Sprint(a.Result.Rows)
	}
	if p := plan(); strings.Contains(p, "UNION") {
		t.Errorf("pins_raw over current files only is a union:\n%s", p)
	}
	if n := st.counts("SELECT 'all', count(*) FROM pins_raw")["all"]; n != 3 {
		t.Errorf("pins_raw has %d rows, want 3", n)
	}

	var buf bytes.Buffer
	r := d.raw[0]
	testenv.Must(t, parquet.Write(&buf, []oldRaw{{Topic: r.Topic, Partition: r.Partition, Offset: 100, Timestamp: r.Timestamp, Value: r.Value}}))
	testenv.Must(t, st.lake.Put(context.Background(), layout.RawKey("2024-05-01", int(r.Partition), 100, 100), &buf))
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		n := st.counts("SELECT 'all', count(*) FROM pins_raw")["all"]
		return n == 4, fmt.Sprintf("pins_raw has %d rows, want 4", n)
	})
	if p := plan(); !strings.Contains(p, "UNION") {
		t.Errorf("pins_raw over a file with the old names is no union:\n%s", p)
	}
	if n := st.counts(`SELECT 'old', count(*) FROM pins_raw WHERE "offset" = 100 AND kafka_offset = 100`)["old"]; n != 1 {
		t.Errorf("the old file's record under both names: %d rows, want 1", n)
	}
}

type batchRecord struct {
	dt string
	p  int32
	o  int64
	ts time.Time
}
