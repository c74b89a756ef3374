package main

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// deleteTopics removes the run's topics from the shared Kafka; a failure
// only leaves them behind.
func deleteTopics(brokers []string, topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
}
