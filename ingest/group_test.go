package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"pinpipe/ingest"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// metric returns the value of the counter or gauge name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// singlePin returns request i's record.
func singlePin(prefix string, i int) pin.Record {
	id := fmt.Sprintf("%s-3442-4773-b19e-%012d", prefix, i)
	return pin.Record{Pin: pin.Pin{UniqueID: id}, Raw: []byte(`{"unique_id":"` + id + `"}`)}
}

// holdProduce makes c hold every produce request until release is closed,
// and returns how many it is holding.
func holdProduce(c *kfake.Cluster, release chan struct{}) *atomic.Int64 {
	var held atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		held.Add(1)
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	return &held
}

// TestConcurrentRequestsShareWrites holds Kafka's answers while many
// single-pin requests arrive, so they queue behind the writes in flight,
// then checks that they went out in far fewer writes than requests, that
// every caller was answered, and that every pin is in the topic once.
func TestConcurrentRequestsShareWrites(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "pins"))
	testenv.Must(t, err)
	defer c.Close()
	reg := prometheus.NewRegistry()
	p := ingest.NewProducer(c.ListenAddrs(), "pins", reg)
	defer p.Close()
	// Learn the leaders before the answers are held.
	testenv.Must(t, p.Produce(context.Background(), []pin.Record{singlePin("00000000", 0)}))
	before := metric(t, reg, "pinpipe_ingest_produce_writes_total")

	release := make(chan struct{})
	holdProduce(c, release)
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = p.Produce(context.Background(), []pin.Record{singlePin("11111111", i)}) })
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		got := metric(t, reg, "pinpipe_ingest_produce_pending_requests")
		return got == n, fmt.Sprintf("%v requests pending, want %d", got, n)
	})
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	writes := metric(t, reg, "pinpipe_ingest_produce_writes_total") - before
	// The writes in flight when the answers were held, then the queue in
	// at most one write per loop.
	if writes > 8 {
		t.Errorf("%d single-pin requests took %v writes, want at most 8", n, writes)
	}
	if got := metric(t, reg, "pinpipe_ingest_produce_pending_requests"); got != 0 {
		t.Errorf("%v requests still pending after all were answered", got)
	}
	seen := map[string]int{}
	for _, m := range testenv.ReadTopic(t, c.ListenAddrs(), "pins") {
		seen[string(m.Key)]++
	}
	for i := range n {
		if id := singlePin("11111111", i).Pin.UniqueID; seen[id] != 1 {
			t.Errorf("pin %s is in the topic %d times, want once", id, seen[id])
		}
	}
}

// errInvalidRecord is Kafka's INVALID_RECORD: not retriable.
const errInvalidRecord = 87

// TestFailedWriteFailsExactlyItsRequests refuses one produce request (not
// retriably) while other writes succeed, and checks that the requests
// whose records were in it, and only those, fail with EUNAVAILABLE and are
// absent from the topic, while every other request's pins are there once.
func TestFailedWriteFailsExactlyItsRequests(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "pins"))
	testenv.Must(t, err)
	defer c.Close()
	reg := prometheus.NewRegistry()
	p := ingest.NewProducer(c.ListenAddrs(), "pins", reg)
	defer p.Close()
	testenv.Must(t, p.Produce(context.Background(), []pin.Record{singlePin("00000000", 0)}))

	// Hold the answers so the requests queue up, then refuse the second
	// produce request after the release: a group from the middle.
	release := make(chan struct{})
	var seen atomic.Int64
	var refusedRecords atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		req := r.(*kmsg.ProduceRequest)
		if seen.Add(1) != 2 {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				var b kmsg.RecordBatch
				testenv.Must(t, b.ReadFrom(rp.Records))
				refusedRecords.Add(int64(b.NumRecords))
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, errInvalidRecord
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		// Two pins per request: a request is refused or written whole.
		recs := []pin.Record{singlePin("22222222", 2*i), singlePin("22222222", 2*i+1)}
		wg.Go(func() { errs[i] = p.Produce(context.Background(), recs) })
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		got := metric(t, reg, "pinpipe_ingest_produce_pending_requests")
		return got == n, fmt.Sprintf("%v requests pending, want %d", got, n)
	})
	close(release)
	wg.Wait()

	inTopic := map[string]int{}
	for _, m := range testenv.ReadTopic(t, c.ListenAddrs(), "pins") {
		inTopic[string(m.Key)]++
	}
	failed := 0
	for i, err := range errs {
		a, b := singlePin("22222222", 2*i).Pin.UniqueID, singlePin("22222222", 2*i+1).Pin.UniqueID
		switch {
		case err == nil:
			if inTopic[a] != 1 || inTopic[b] != 1 {
				t.Errorf("acknowledged request %d: its pins are in the topic %d and %d times, want once", i, inTopic[a], inTopic[b])
			}
		case pin.ErrorCode(err) != pin.EUNAVAILABLE:
			t.Errorf("request %d: %v, want EUNAVAILABLE", i, err)
		default:
			failed++
			if inTopic[a]+inTopic[b] != 0 {
				t.Errorf("failed request %d: its pins are in the topic", i)
			}
		}
	}
	if refusedRecords.Load() == 0 {
		t.Fatal("no produce request was refused: the test refused nothing")
	}
	if int64(2*failed) != refusedRecords.Load() {
		t.Errorf("%d requests (%d pins) failed, but the refused write held %d pins", failed, 2*failed, refusedRecords.Load())
	}
	if failed == n {
		t.Errorf("every request failed: the refused write was not the only one")
	}
}
