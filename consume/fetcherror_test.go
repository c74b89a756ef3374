package consume_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"pinpipe/consume"
	"pinpipe/internal/testenv"
)

// A fetch error the reader passes up (a broker's storage error here; a
// broker killed mid-fetch gives "failed to dial" the same way) stops the
// partition's consumer, which ends kafka-go's generation, so the group
// rebalances and the partition is read again from its committed offset:
// nothing is skipped or stored twice, and the partition does not stay
// unread. The chaos soak (seed 1, a broker killed) logged such a stop.
func TestPartitionKeepsConsumingAfterAFetchError(t *testing.T) {
	topic := "fetch-error"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	produce := func(n int) {
		t.Helper()
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		defer w.Close()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: []byte("v")}
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	produce(10)
	var rec recorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- consume.Run(ctx, consume.Options{Brokers: brokers, Topic: topic, Group: "g", MaxRecords: 5,
			MaxWait: 20 * time.Millisecond, Store: quick, Log: testenv.Log(t)}, rec.handler("a", nil))
	}()
	t.Cleanup(func() { cancel(); <-done })
	rec.awaitStored(t, 10)

	// The next fetches fail with an error kafka-go hands to FetchMessage.
	var failed atomic.Int32
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Add(1) > 3 {
			return nil, nil, false
		}
		c.KeepControl()
		fr := req.(*kmsg.FetchRequest)
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = fr.Version
		for _, rt := range fr.Topics {
			tp := kmsg.NewFetchResponseTopic()
			tp.Topic, tp.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = 56 // KAFKA_STORAGE_ERROR
				tp.Partitions = append(tp.Partitions, p)
			}
			resp.Topics = append(resp.Topics, tp)
		}
		return resp, nil, true
	})
	produce(10)
	rec.awaitStored(t, 20)
	if failed.Load() < 3 {
		t.Fatalf("only %d fetches were failed; the test did not inject its fault", failed.Load())
	}
	rec.assertExactlyOnce(t, map[int]int64{0: 20})
}
