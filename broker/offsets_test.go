package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/internal/testenv"
)

// TestOffsetsReadsEveryPartitionFromItsLeader reads the offsets of a topic
// created after the reader cached the cluster's metadata: each partition's
// leader is another broker of three, and only it answers.
func TestOffsetsReadsEveryPartitionFromItsLeader(t *testing.T) {
	brokers := threeBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := broker.NewOffsets(brokers)
	defer o.Close()

	first := testenv.Name("offsets-a-")
	createTopic(t, brokers, first, 3, 3)
	if _, err := o.Read(ctx, first); err != nil {
		t.Fatalf("Read(%s): %v", first, err)
	}

	topic := testenv.Name("offsets-b-")
	const parts = 6
	createTopic(t, brokers, topic, parts, 3)
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, Transport: tr,
		BatchTimeout: 5 * time.Millisecond,
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0]) })}
	defer w.Close()
	var msgs []kafka.Message
	for p := range parts {
		for i := range p + 1 {
			msgs = append(msgs, kafka.Message{Key: []byte{byte(p)}, Value: fmt.Appendf(nil, "%d-%d", p, i)})
		}
	}
	testenv.Must(t, w.WriteMessages(ctx, msgs...))

	got, err := o.Read(ctx, topic)
	testenv.Must(t, err)
	if len(got) != parts {
		t.Fatalf("Read(%s) = %v; want %d partitions", topic, got, parts)
	}
	for p := range parts {
		if want := (broker.PartitionOffsets{First: 0, End: int64(p + 1)}); got[p] != want {
			t.Errorf("partition %d: %+v, want %+v", p, got[p], want)
		}
	}

	if _, err := o.Read(ctx, testenv.Name("no-such-topic-")); err == nil {
		t.Error("Read of a topic that does not exist returned no error")
	}
}
