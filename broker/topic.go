package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// EnsureTopic creates topic with the given number of partitions when it does
// not exist yet, and returns once every partition has a leader, so the first
// produce or fetch does not meet "unknown topic or partition". Returns an
// error naming the brokers when none answers, or ctx's error when the
// partitions get no leader in time.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("kafka: find controller: %w", err)
	}
	cc, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("kafka: dial controller %s:%d: %w", ctrl.Host, ctrl.Port, err)
	}
	defer cc.Close()
	err = cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %q: %w", topic, err)
	}
	for {
		ps, err := conn.ReadPartitions(topic)
		if err == nil && len(ps) > 0 && allLed(ps) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: topic %q has no leader for every partition yet (%v): %w", topic, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allLed(ps []kafka.Partition) bool {
	for _, p := range ps {
		if p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// TopicPartitions returns the partition IDs of topic. Returns an error when the
// topic does not exist or no broker answers.
func TopicPartitions(ctx context.Context, brokers []string, topic string) ([]int, error) {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ps, err := conn.ReadPartitions(topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: partitions of %q: %w", topic, err)
	}
	ids := make([]int, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids, nil
}

// Check reports whether a broker answers a metadata request.
func Check(ctx context.Context, brokers []string) error {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Brokers()
	return err
}

func dialAny(ctx context.Context, brokers []string) (*kafka.Conn, error) {
	var last error
	for _, b := range brokers {
		conn, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, fmt.Errorf("kafka: no broker of %v answers: %w", brokers, last)
}
