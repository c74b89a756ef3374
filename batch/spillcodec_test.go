package batch

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"pinpipe/pin"
)

// A spilled pin comes back as it went: nil apart from a pointer to zero,
// a nil tag list apart from an empty one, and the same instant in UTC.
func TestSpilledPinsComeBackUnchanged(t *testing.T) {
	zero32, zero64, empty := int32(0), int64(0), ""
	title := "A title, “quoted”"
	at := time.Date(2024, 1, 15, 23, 59, 59, 123456789, time.UTC)
	pins := []pin.Cleaned{
		{IDIndex: 1, Title: &title, Category: "art", UniqueID: "a", FollowerCount: &zero64, Downloaded: &zero32,
			Tags: []string{}, SaveLocation: &empty, IngestedAt: at, KafkaPartition: 2, KafkaOffset: 9},
		{IDIndex: 0, Category: "diy", UniqueID: "b", Tags: nil, IngestedAt: at.Add(-time.Hour)},
		{IDIndex: -5, Category: "", UniqueID: "c", Tags: []string{"x", ""}, IngestedAt: time.Unix(0, 0).UTC()},
	}
	var buf bytes.Buffer
	enc := pinCodec.enc(&buf)
	if err := enc.Encode(pins); err != nil {
		t.Fatal(err)
	}
	var got []pin.Cleaned
	if err := pinCodec.dec(&buf).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for i := range pins {
		if !reflect.DeepEqual(got[i], pins[i]) {
			t.Fatalf("pin %d:\n got %#v\nwant %#v", i, got[i], pins[i])
		}
	}
}
