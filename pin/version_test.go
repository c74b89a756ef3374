package pin

import (
	"testing"
	"time"
)

func TestNewerOrdersByOffsetInAPartitionAndByTimestampAcross(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	lin := func(partition int32, offset int64, at time.Time) Lineage {
		return Lineage{IngestedAt: at, Partition: partition, Offset: offset}
	}
	for _, tc := range []struct {
		name string
		a, b Lineage
		want bool
	}{
		{"same partition, higher offset", lin(0, 5, t0), lin(0, 4, t0), true},
		{"same partition, lower offset", lin(0, 4, t0), lin(0, 5, t0), false},
		{"same partition, higher offset with an earlier timestamp", lin(0, 5, t0), lin(0, 4, t0.Add(time.Hour)), true},
		{"same partition, lower offset with a later timestamp", lin(0, 4, t0.Add(time.Hour)), lin(0, 5, t0), false},
		{"the same record", lin(3, 7, t0), lin(3, 7, t0), false},
		{"other partition, later timestamp", lin(0, 1, t0.Add(time.Millisecond)), lin(1, 900, t0), true},
		{"other partition, earlier timestamp", lin(1, 900, t0), lin(0, 1, t0.Add(time.Millisecond)), false},
		{"other partition, same timestamp, higher partition", lin(2, 1, t0), lin(1, 900, t0), true},
		{"other partition, same timestamp, lower partition", lin(1, 900, t0), lin(2, 1, t0), false},
		{"same instant in another location", lin(2, 1, t0.In(time.FixedZone("x", 3600))), lin(1, 1, t0), true},
	} {
		if got := Newer(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Newer(%+v, %+v) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNewerSQLNamesTheRowsGiven(t *testing.T) {
	got := NewerSQL("EXCLUDED", "pins")
	want := "(EXCLUDED.kafka_partition = pins.kafka_partition AND EXCLUDED.kafka_offset > pins.kafka_offset" +
		" OR EXCLUDED.kafka_partition <> pins.kafka_partition AND (EXCLUDED.ingested_at > pins.ingested_at" +
		" OR EXCLUDED.ingested_at = pins.ingested_at AND EXCLUDED.kafka_partition > pins.kafka_partition))"
	if got != want {
		t.Fatalf("NewerSQL:\n got %s\nwant %s", got, want)
	}
}
