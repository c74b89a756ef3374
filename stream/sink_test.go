package stream_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/pin"
	"pinpipe/stream"
)

func cleaned(id, category string, at time.Time, partition int32, offset int64, title string) pin.Cleaned {
	raw := fmt.Sprintf(`{"index": 1, "unique_id": %q, "category": %q, "title": %q, "tag_list": "a, b"}`, id, category, title)
	c, err := pin.CleanRaw([]byte(raw), pin.Lineage{IngestedAt: at, Partition: partition, Offset: offset})
	if err != nil {
		panic(err)
	}
	return c
}

func TestSinkMovesCountsOnlyForLaterRecordsOfAPin(t *testing.T) {
	const a, b = "0b5a4c6e-8f4e-4a39-9f0e-1d2c3b4a5f60", "1c6b5d7f-9a5f-4b4a-8a1f-2e3d4c5b6a71"
	now := time.Now().UTC().Truncate(time.Minute)
	first := []pin.Cleaned{
		cleaned(a, "travel", now.Add(-2*time.Minute), 0, 10, "First"),
		cleaned(b, "travel", now.Add(-2*time.Minute), 1, 5, "Other"),
	}
	later := []pin.Cleaned{cleaned(a, "quotes", now.Add(-time.Minute), 0, 11, "Second")}
	bad := []stream.Rejected{{Topic: "pins", Partition: 2, Offset: 7, IngestedAt: now, Reason: "malformed", Raw: []byte("{")}}

	for name, s := range teststores.StreamSinks(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			testenv.Must(t, s.Write(ctx, first, bad))
			testenv.Must(t, s.Write(ctx, later, nil))
			// Replays: the first batch again (older records of a), and the
			// later one again.
			testenv.Must(t, s.Write(ctx, first, bad))
			testenv.Must(t, s.Write(ctx, later, bad))

			st, err := s.Stats(ctx)
			testenv.Must(t, err)
			if want := map[string]int64{"quotes": 1, "travel": 1}; st.Total != 2 || !maps.Equal(st.ByCategory, want) {
				t.Errorf("total %d by_category %v, want 2 %v", st.Total, st.ByCategory, want)
			}
			want := map[int64]int64{now.Add(-2 * time.Minute).Unix(): 1, now.Add(-time.Minute).Unix(): 1}
			if got := minutes(st); !maps.Equal(got, want) || len(st.PerMinute) != 60 {
				t.Errorf("per_minute %v over %d minutes, want %v over 60", got, len(st.PerMinute), want)
			}
			got, err := s.Recent(ctx, 10)
			testenv.Must(t, err)
			if len(got) != 2 || got[0].UniqueID != a || *got[0].Title != "Second" || got[0].KafkaOffset != 11 || got[1].UniqueID != b {
				t.Errorf("recent = %+v, want a's second record, then b", got)
			}
			if len(got) > 0 && (len(got[0].Tags) != 2 || !got[0].IngestedAt.Equal(now.Add(-time.Minute))) {
				t.Errorf("a's row: tags %q ingested_at %v", got[0].Tags, got[0].IngestedAt)
			}
		})
	}
}
