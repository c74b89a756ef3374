package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/synth"
)

// postWithDuplicates posts n new pins, then dups of them again with a new
// title (later records of the same pins), and returns what each unique_id's
// row must hold.
func postWithDuplicates(t *testing.T, addr string, seed uint64, n, dups int) map[string]pin.Cleaned {
	t.Helper()
	objs := pins(synth.New(seed), n)
	for i := 0; i < n; i += 100 {
		mustPost(t, addr, objs[i:min(i+100, n)])
	}
	var again [][]byte
	for i := range dups {
		var m map[string]any
		testenv.Must(t, json.Unmarshal(objs[i*n/dups], &m))
		m["title"] = fmt.Sprintf("Second version %d", i)
		b, _ := json.Marshal(m)
		objs[i*n/dups] = b
		again = append(again, b)
	}
	mustPost(t, addr, again)
	want := map[string]pin.Cleaned{}
	for _, o := range objs {
		c := expected(t, o)
		want[c.UniqueID] = c
	}
	if len(want) != n {
		t.Fatalf("synthetic pins: %d unique ids, want %d", len(want), n)
	}
	return want
}

func TestStreamUpsertsEveryPinOnceWithCleanedValues(t *testing.T) {
	const n, dups = 600, 60
	cfg := testenv.Config(t)
	p := start(t, cfg)
	begin := time.Now()
	want := postWithDuplicates(t, p.Addr, 1, n, dups)

	// A pin whose category cannot key the per-category counts, and a
	// record that is not a pin, produced past POST /pins' validation.
	mustPost(t, p.Addr, [][]byte{[]byte(`{"index": 1, "unique_id": "5f0c3a2e-1b4d-4c6e-9a8b-7d6e5f4a3b2c", "category": "` + strings.Repeat("x", 2000) + `"}`)})
	w := &kafka.Writer{Addr: kafka.TCP(cfg.KafkaBrokers...), Topic: cfg.Topic, RequiredAcks: kafka.RequireAll}
	testenv.Must(t, w.WriteMessages(context.Background(), kafka.Message{Value: []byte(`{"index": "seven"}`)}))
	testenv.Must(t, w.Close())

	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		st, ok := stats(t, p.Addr)
		done := metric(t, p.Registry, "pinpipe_stream_pins_total") >= n+dups &&
			metric(t, p.Registry, "pinpipe_stream_rejected_total") == 2
		return ok && st.Total == n && done, fmt.Sprintf("stats %+v (ok %v)", st.Total, ok)
	})

	// Every pin once, with the values pin.Clean gives its last record.
	got := recent(t, p.Addr, 1000)
	if len(got) != n {
		t.Fatalf("/stream/recent?n=1000 gave %d pins, want %d", len(got), n)
	}
	wantByCategory := map[string]int64{}
	for i, c := range got {
		w, ok := want[c.UniqueID]
		if !ok {
			t.Fatalf("unexpected pin %s", c.UniqueID)
		}
		delete(want, c.UniqueID)
		wantByCategory[w.Category]++
		if !reflect.DeepEqual(withoutLineage(c), w) {
			t.Errorf("pin %s:\n got %+v\nwant %+v", c.UniqueID, withoutLineage(c), w)
		}
		if c.IngestedAt.Before(begin.Add(-time.Second)) || c.IngestedAt.After(time.Now()) || c.KafkaPartition < 0 {
			t.Errorf("pin %s: lineage %v p%d o%d is not this test's", c.UniqueID, c.IngestedAt, c.KafkaPartition, c.KafkaOffset)
		}
		if i > 0 && c.IngestedAt.After(got[i-1].IngestedAt) {
			t.Errorf("recent is not newest first at %d", i)
		}
	}

	st, _ := stats(t, p.Addr)
	var sum, perMinute int64
	for _, v := range st.ByCategory {
		sum += v
	}
	for _, m := range st.PerMinute {
		perMinute += m.Pins
	}
	if sum != st.Total || perMinute != st.Total || len(st.PerMinute) != 60 {
		t.Errorf("stats disagree: total %d, sum by_category %d, sum per_minute %d over %d minutes", st.Total, sum, perMinute, len(st.PerMinute))
	}
	if !maps.Equal(st.ByCategory, wantByCategory) {
		t.Errorf("by_category %v, want %v", st.ByCategory, wantByCategory)
	}
	if st.Freshness.P50 <= 0 || st.Freshness.P99 < st.Freshness.P50 {
		t.Errorf("freshness %+v: want 0 < p50 <= p99", st.Freshness)
	}

	// The tables themselves, once the lane is stopped (the stand-in's file
	// is then free).
	stop(t, p)
	db := openStore(t, cfg)
	if got := count(t, db, `SELECT count(*) FROM pinterest.pins`); got != n {
		t.Errorf("pinterest.pins has %d rows, want %d", got, n)
	}
	assertAggregatesMatchRows(t, db)
	for _, reason := range []string{`field "index" must be an integer`, `category is 2000 bytes long`} {
		if got := count(t, db, `SELECT count(*) FROM pinterest.rejected WHERE strpos(reason, '`+reason+`') > 0 AND raw IS NOT NULL`); got != 1 {
			t.Errorf("pinterest.rejected has %d rows saying %q, want 1", got, reason)
		}
	}
}

func TestStreamReplayFromBeginningChangesNoCounts(t *testing.T) {
	const n, dups = 400, 40
	cfg := testenv.Config(t)
	p := start(t, cfg)
	postWithDuplicates(t, p.Addr, 2, n, dups)
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		st, ok := stats(t, p.Addr)
		return ok && st.Total == n && metric(t, p.Registry, "pinpipe_stream_pins_total") >= n+dups, fmt.Sprint(st.Total)
	})
	before, _ := stats(t, p.Addr)
	rowsBefore := recent(t, p.Addr, 1000)
	stop(t, p)

	// The same topic and database, read again from the beginning by a
	// fresh consumer group.
	again := *cfg
	again.GroupPrefix = testenv.Name("pinpipe-replay-")
	p2 := start(t, &again)
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		st, ok := stats(t, p2.Addr)
		replayed := metric(t, p2.Registry, "pinpipe_stream_pins_total")
		return ok && st.Lag == 0 && replayed >= n+dups, fmt.Sprintf("lag %d, replayed %v", st.Lag, replayed)
	})
	after, _ := stats(t, p2.Addr)
	if after.Total != before.Total || !maps.Equal(after.ByCategory, before.ByCategory) || !maps.Equal(minutes(after), minutes(before)) {
		t.Errorf("replay changed the counts:\nbefore %+v\n after %+v", before, after)
	}
	if rowsAfter := recent(t, p2.Addr, 1000); !reflect.DeepEqual(rowsAfter, rowsBefore) {
		t.Errorf("replay changed rows: %d rows before, %d after", len(rowsBefore), len(rowsAfter))
	}
	stop(t, p2)
	db := openStore(t, cfg)
	if got := count(t, db, `SELECT count(*) FROM pinterest.pins`); got != n {
		t.Errorf("pinterest.pins has %d rows after the replay, want %d", got, n)
	}
	assertAggregatesMatchRows(t, db)
}

// minutes returns the minutes of st.PerMinute that have pins. (The window
// moves with the clock; this test's pins are all in its last minutes.)
func minutes(st pin.Stats) map[int64]int64 {
	m := map[int64]int64{}
	for _, c := range st.PerMinute {
		if c.Pins != 0 {
			m[c.Minute.Unix()] = c.Pins
		}
	}
	return m
}
