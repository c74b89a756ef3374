package ingest_test

import (
	"context"
	"fmt"
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

// errNotLeader is Kafka's NOT_LEADER_OR_FOLLOWER: what a partition answers
// while its leader is being replaced.
const errNotLeader = 6

// TestProduceWaitsOutALeaderElection makes every partition refuse writes
// for a few seconds, as a cluster does between losing a partition's leader
// and electing another, and checks that Produce keeps retrying through it:
// the request is acknowledged (no 503) and each record is written once.
// With three quick attempts, as before, losing one broker of a replicated
// cluster failed requests.
func TestProduceWaitsOutALeaderElection(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "pins"))
	testenv.Must(t, err)
	defer c.Close()

	const outage = 3 * time.Second
	var until atomic.Int64 // unix nanos the partitions refuse writes until
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if time.Now().UnixNano() >= until.Load() {
			return nil, nil, false
		}
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, errNotLeader
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	})

	brokers := c.ListenAddrs()
	p := ingest.NewProducer(brokers, "pins", prometheus.NewRegistry())
	defer p.Close()
	recs := make([]pin.Record, 30)
	for i := range recs {
		id := fmt.Sprintf("fbe53c66-3442-4773-b19e-%012d", i)
		recs[i] = pin.Record{Pin: pin.Pin{UniqueID: id}, Raw: []byte(`{"unique_id":"` + id + `"}`)}
	}
	// A first write, so the producer knows the leaders before they "fail".
	testenv.Must(t, p.Produce(context.Background(), recs[:1]))

	until.Store(time.Now().Add(outage).UnixNano())
	if err := p.Produce(context.Background(), recs[1:]); err != nil {
		t.Fatalf("Produce while the partitions had no leader for %s: %v", outage, err)
	}
	if refused.Load() == 0 {
		t.Fatal("no write was refused: the test did not make an election")
	}
	got := testenv.ReadTopic(t, brokers, "pins")
	seen := map[string]int{}
	for _, m := range got {
		seen[string(m.Key)]++
	}
	for _, r := range recs {
		if seen[r.Pin.UniqueID] != 1 {
			t.Errorf("pin %s is in the topic %d times, want once", r.Pin.UniqueID, seen[r.Pin.UniqueID])
		}
	}
	if len(got) != len(recs) {
		t.Errorf("the topic holds %d records, want %d", len(got), len(recs))
	}
}

// TestProduceGivesUpAfterFailoverWait checks the other side of the
// retries: partitions that never get a leader make Produce fail (after
// about FailoverWait), so POST /pins answers 503 rather than hang.
func TestProduceGivesUpAfterFailoverWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits FailoverWait")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "pins"))
	testenv.Must(t, err)
	defer c.Close()
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, errNotLeader
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	p := ingest.NewProducer(c.ListenAddrs(), "pins", prometheus.NewRegistry())
	defer p.Close()
	id := "fbe53c66-3442-4773-b19e-d3ec6f54dddf"
	err = p.Produce(context.Background(), []pin.Record{{Pin: pin.Pin{UniqueID: id}, Raw: []byte(`{}`)}})
	if pin.ErrorCode(err) != pin.EUNAVAILABLE {
		t.Fatalf("Produce to a partition without a leader: %v, want EUNAVAILABLE", err)
	}
}
