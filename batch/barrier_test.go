package batch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// TestBarrierFailsNamingThePartitionsBehind: with no landing, the barrier
// gives up at its bound with an error saying which partition is behind and
// by how many records.
func TestBarrierFailsNamingThePartitionsBehind(t *testing.T) {
	e := newLandingEnv(t)
	e.produce(kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }), e.pins(5, time.Time{})...)
	b := &Barrier{Brokers: e.brokers, Topic: e.topic, Lake: e.lake, Timeout: 500 * time.Millisecond}
	err := b.Wait(context.Background())
	if pin.ErrorCode(err) != pin.EUNAVAILABLE || !strings.Contains(err.Error(), "partition 0 stored up to offset 0 of 5 (5 records behind)") {
		t.Fatalf("Wait = %v; want EUNAVAILABLE naming partition 0, 5 records behind", err)
	}
}

// TestBarrierWaitsForALandingElsewhere: without a flush to ask (the
// landing runs in another instance), the barrier returns once that
// landing stored every record produced before it began.
func TestBarrierWaitsForALandingElsewhere(t *testing.T) {
	e := newLandingEnv(t)
	e.produce(nil, e.pins(40, time.Time{})...)
	e.start(1000, time.Second, nil, landingHooks{})
	b := &Barrier{Brokers: e.brokers, Topic: e.topic, Lake: e.lake, Timeout: 90 * time.Second}
	testenv.Must(t, b.Wait(context.Background()))
	objs, err := RawObjects(context.Background(), e.lake, "")
	testenv.Must(t, err)
	var n int64
	for _, o := range objs {
		n += o.Last - o.First + 1
	}
	if n != 40 {
		t.Fatalf("the raw zone holds %d records after the barrier, want 40", n)
	}
}

// TestBarrierWaitsForALandingThatKeepsAdvancing: a landing that stores
// one small object at a time, each slower than a poll, takes longer in all
// than the barrier's Timeout; the barrier waits for it, since Timeout
// bounds a stall, not the wait (a run under load used to fail one record
// behind).
func TestBarrierWaitsForALandingThatKeepsAdvancing(t *testing.T) {
	e := newLandingEnv(t)
	e.produce(kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }), e.pins(40, time.Time{})...)
	// A slow store: each of the 8 objects takes 300 ms more to upload.
	e.start(5, 50*time.Millisecond, nil, landingHooks{afterUpload: func(string) error {
		time.Sleep(300 * time.Millisecond)
		return nil
	}})
	b := &Barrier{Brokers: e.brokers, Topic: e.topic, Lake: e.lake, Timeout: time.Second, Max: time.Minute}
	began := time.Now()
	testenv.Must(t, b.Wait(context.Background()))
	if waited := time.Since(began); waited <= b.Timeout {
		t.Fatalf("the landing stored 8 slow objects in %s, within the barrier's Timeout: the test shows nothing", waited)
	}
}
