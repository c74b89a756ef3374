package batch

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/pin"
)

const lateGrace = 10 * time.Minute

// dayEnd returns the moment day's completeness is decided: its end plus
// the grace.
func dayEnd(day string) time.Time {
	d, _ := time.Parse(time.DateOnly, day)
	return d.Add(24*time.Hour + lateGrace)
}

func (e *landingEnv) completeness(reg prometheus.Registerer) *Watermark {
	w := NewCompleteness(CompletenessOptions{Brokers: e.brokers, Topic: e.topic, Lake: e.lake, Grace: lateGrace,
		Registry: reg, Log: testenv.Log(e.t)})
	e.t.Cleanup(w.Close)
	return w
}

func toPartition(p int) kafka.Balancer {
	return kafka.BalancerFunc(func(kafka.Message, ...int) int { return p })
}

// TestDayIsCompleteOnlyOnceTheLandingStoredIt: pins posted today make
// today complete, at a moment after its end plus the grace, only once the
// landing stored them; before, each partition holding some is behind by
// exactly its records. Today is not over now, so not complete even then.
func TestDayIsCompleteOnlyOnceTheLandingStoredIt(t *testing.T) {
	e := newLandingEnv(t)
	ctx := context.Background()
	sent := map[int]int64{0: 7, 2: 4} // partition 1 gets none
	for p, n := range sent {
		e.produce(toPartition(p), e.pins(int(n), time.Time{})...)
	}
	today := pin.DT(time.Now())
	after := dayEnd(today).Add(time.Minute)
	w := e.completeness(nil)

	d, err := w.DayComplete(ctx, today, after)
	testenv.Must(t, err)
	want := DayCompleteness{Day: today, Over: true, Behind: []PartitionBehind{{Partition: 0, Records: 7}, {Partition: 2, Records: 4}}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("before the landing: %+v; want %+v", d, want)
	}

	e.start(1000, time.Second, nil, landingHooks{})
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		d, err = w.DayComplete(ctx, today, after)
		return err == nil && d.Complete, fmt.Sprintf("%+v, %v", d, err)
	})
	if !reflect.DeepEqual(d, DayCompleteness{Day: today, Complete: true, Over: true}) {
		t.Fatalf("after the landing: %+v", d)
	}
	now := time.Now()
	if d, err = w.DayComplete(ctx, pin.DT(now), now); err != nil || d.Complete || d.Over || len(d.Behind) != 0 {
		t.Fatalf("today while it is not over: %+v, %v; want not over, not complete, nothing behind", d, err)
	}
	if _, err := w.DayComplete(ctx, "2026-02-30", now); err == nil {
		t.Fatal("DayComplete of 2026-02-30 returned no error")
	}
}

// TestDayCompletenessNamesThePartitionsBehindWhileS3IsCut holds the
// landing back by cutting its S3: the day reports each partition behind
// with its records and how far its newest landed record is from the day's
// end, the watermark metric says how far the zone is complete, and once S3
// is back the day becomes complete.
func TestDayCompletenessNamesThePartitionsBehindWhileS3IsCut(t *testing.T) {
	e := newLandingEnv(t)
	ctx := context.Background()
	u, err := url.Parse(e.s3.Endpoint)
	testenv.Must(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	viaProxy := e.s3
	viaProxy.Endpoint = "http://" + proxy.Addr
	e.landLake, err = lake.Open(ctx, viaProxy)
	testenv.Must(t, err)
	reg := prometheus.NewRegistry()
	w := e.completeness(reg)

	// Partition 0 lands a few pins, then S3 goes away.
	e.produce(toPartition(0), e.pins(3, time.Time{})...)
	e.start(1000, 100*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(3)
	// The objects are in before the checkpoint that covers them: cut S3
	// only once the landing wrote that checkpoint too.
	var cp Checkpoint
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		cp, err = ReadCheckpoint(ctx, e.lake, e.topic, 0)
		return err == nil && cp.Next == 3 && len(cp.Pending) == 0, fmt.Sprintf("checkpoint %+v, %v", cp, err)
	})
	proxy.Down()
	e.produce(toPartition(0), e.pins(5, time.Time{})...)
	e.produce(toPartition(1), e.pins(2, time.Time{})...)

	today := pin.DT(time.Now())
	need := dayEnd(today)
	after := need.Add(time.Minute)
	d, err := w.DayComplete(ctx, today, after)
	testenv.Must(t, err)
	want := DayCompleteness{Day: today, Over: true, Behind: []PartitionBehind{
		{Partition: 0, Records: 5, Landed: cp.Newest, Behind: need.Sub(cp.Newest)},
		{Partition: 1, Records: 2},
	}}
	if cp.Newest.IsZero() || !reflect.DeepEqual(d, want) {
		t.Fatalf("with S3 cut: %+v; want %+v", d, want)
	}
	// A day long past: partition 0 stored a record stamped after it, so
	// only partition 1, which stored none, holds it back.
	d, err = w.DayComplete(ctx, "2020-01-01", after)
	testenv.Must(t, err)
	if d.Complete || len(d.Behind) != 1 || d.Behind[0] != (PartitionBehind{Partition: 1, Records: 2}) {
		t.Fatalf("2020-01-01 with S3 cut: %+v; want partition 1 behind by 2 records", d)
	}
	if got := metric(t, reg, "pinpipe_batch_complete_until_seconds"); got != 0 {
		t.Errorf("watermark = %v while partition 1 landed nothing, want 0", got)
	}

	proxy.Up()
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		d, err = w.DayComplete(ctx, today, after)
		return err == nil && d.Complete, fmt.Sprintf("%+v, %v", d, err)
	})
	before := time.Now()
	if got := metric(t, reg, "pinpipe_batch_complete_until_seconds"); got < float64(before.Unix()) {
		t.Errorf("watermark = %v once every partition caught up, want the time of the scrape (≥ %d)", got, before.Unix())
	}
	e.assertLandedExactlyOnce()
}
