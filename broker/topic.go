package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// DefaultReplication is the number of copies pinpipe asks for a new topic's
// partitions unless told otherwise: with min.insync.replicas=2 on the
// cluster, an acks=all write then survives the loss of any one broker.
const DefaultReplication = 3

// Topic says how pinpipe's topic should look.
type Topic struct {
	Name        string
	Partitions  int // partitions of a new topic; 0 means Partitions
	Replication int // replicas of a new topic's partitions, capped at the cluster's broker count; 0 means DefaultReplication
}

// EnsureTopic is Ensure with DefaultReplication and no logging (tests and
// benchmarks).
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	return Ensure(ctx, brokers, Topic{Name: topic, Partitions: partitions, Replication: DefaultReplication}, nil)
}

// Ensure creates t when it does not exist yet and returns once every
// partition has a leader, so the first produce or fetch does not meet
// "unknown topic or partition". A replication factor above the number of
// brokers that answer is capped to it, and log says so. An existing topic
// is left as it is: when it has fewer replicas (or another partition count)
// than asked, or its min.insync.replicas lets an acks=all write rest on one
// copy, log warns and names the command that fixes it. log may be nil.
// Returns an error naming the brokers when none answers, or ctx's error when
// the partitions get no leader in time.
func Ensure(ctx context.Context, brokers []string, t Topic, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if t.Partitions == 0 {
		t.Partitions = Partitions
	}
	if t.Replication == 0 {
		t.Replication = DefaultReplication
	}
	if t.Partitions < 0 || t.Replication < 0 {
		return fmt.Errorf("kafka: topic %q: want at least one partition and one replica, got %d and %d", t.Name, t.Partitions, t.Replication)
	}
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return err
	}
	defer conn.Close()
	live, err := conn.Brokers()
	if err != nil {
		return fmt.Errorf("kafka: list brokers: %w", err)
	}
	replication := t.Replication
	if n := len(live); n > 0 && replication > n {
		log.Info("kafka: topic replication capped at the cluster's broker count",
			slog.String("topic", t.Name), slog.Int("asked", t.Replication), slog.Int("brokers", n), slog.Int("replication", n))
		replication = n
	}
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("kafka: find controller: %w", err)
	}
	cc, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("kafka: dial controller %s:%d: %w", ctrl.Host, ctrl.Port, err)
	}
	defer cc.Close()
	err = cc.CreateTopics(kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: replication})
	existed := errors.Is(err, kafka.TopicAlreadyExists)
	if err != nil && !existed {
		return fmt.Errorf("kafka: create topic %q with %d partitions × %d replicas: %w", t.Name, t.Partitions, replication, err)
	}
	for {
		ps, err := conn.ReadPartitions(t.Name)
		if err == nil && len(ps) > 0 && allLed(ps) && everyBrokerKnows(ctx, live, t.Name, len(ps)) {
			if !existed {
				log.Info("kafka: topic ready", slog.String("topic", t.Name), slog.Int("partitions", len(ps)), slog.Int("replication", replication))
			}
			checkExisting(ctx, brokers, t, replication, ps, live, log)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: topic %q has no leader for every partition yet (%v): %w", t.Name, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkExisting warns about what the topic as found does not give: fewer
// replicas or other partitions than asked, or a min.insync.replicas that
// lets acks=all mean one copy. It changes nothing: moving replicas or adding
// partitions is an operator's decision.
func checkExisting(ctx context.Context, brokers []string, t Topic, replication int, ps []kafka.Partition, live []kafka.Broker, log *slog.Logger) {
	have := len(ps[0].Replicas)
	for _, p := range ps {
		have = min(have, len(p.Replicas))
	}
	bootstrap := strings.Join(brokers, ",")
	if have < replication {
		log.Warn("kafka: topic has fewer replicas than asked; pinpipe does not move replicas itself. "+
			"Raise it with: kafka-reassign-partitions.sh --bootstrap-server "+bootstrap+
			" --reassignment-json-file reassign.json --execute (reassign.json is the reassignment attribute)",
			slog.String("topic", t.Name), slog.Int("replication", have), slog.Int("asked", replication),
			slog.String("reassignment", reassignment(t.Name, ps, live, replication)))
	}
	if len(ps) != t.Partitions {
		log.Warn("kafka: topic has another partition count than asked; pinpipe keeps it (adding partitions moves keys "+
			"to other partitions, so versions of one pin are then ordered by timestamp, not offset)",
			slog.String("topic", t.Name), slog.Int("partitions", len(ps)), slog.Int("asked", t.Partitions))
	}
	if have < 2 {
		return
	}
	v, err := topicConfig(ctx, brokers, t.Name, "min.insync.replicas")
	if err != nil {
		log.Debug("kafka: cannot read the topic's min.insync.replicas", slog.String("topic", t.Name), slog.Any("error", err))
		return
	}
	if n, err := strconv.Atoi(v); err == nil && n < 2 {
		log.Warn("kafka: topic has min.insync.replicas="+v+", so a pin acknowledged with acks=all may "+
			"rest on one copy. Raise it with: kafka-configs.sh --bootstrap-server "+bootstrap+
			" --entity-type topics --entity-name "+t.Name+" --alter --add-config min.insync.replicas=2",
			slog.String("topic", t.Name), slog.Int("replication", have))
	}
}

// topicConfig returns the value of the topic's config name. A broker that
// has not yet learnt of a new topic answers with an error for it, so the
// read is retried for up to two seconds. Returns the last error when no
// broker gave the value.
func topicConfig(ctx context.Context, brokers []string, topic, name string) (string, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var last error
	for range 20 {
		res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name},
		}}})
		switch {
		case err != nil:
			last = err
		case len(res.Resources) != 1 || res.Resources[0].Error != nil:
			last = fmt.Errorf("kafka: describe configs of topic %q: %v", topic, res.Resources)
		default:
			for _, e := range res.Resources[0].ConfigEntries {
				if e.ConfigName == name {
					return e.ConfigValue, nil
				}
			}
			last = fmt.Errorf("kafka: topic %q has no config %s (yet)", topic, name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", last
}

// reassignment returns a kafka-reassign-partitions.sh JSON document that
// keeps each partition's replicas and adds brokers, spread round robin, until
// it has want of them.
func reassignment(topic string, ps []kafka.Partition, live []kafka.Broker, want int) string {
	ids := make([]int, 0, len(live))
	for _, b := range live {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	type part struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
		Replicas  []int  `json:"replicas"`
	}
	doc := struct {
		Version    int    `json:"version"`
		Partitions []part `json:"partitions"`
	}{Version: 1}
	for _, p := range ps {
		var rs []int
		for _, r := range p.Replicas {
			rs = append(rs, r.ID)
		}
		for i := 0; i < len(ids) && len(rs) < want; i++ {
			if id := ids[(p.ID+i)%len(ids)]; !slices.Contains(rs, id) {
				rs = append(rs, id)
			}
		}
		doc.Partitions = append(doc.Partitions, part{Topic: topic, Partition: p.ID, Replicas: rs})
	}
	slices.SortFunc(doc.Partitions, func(a, b part) int { return a.Partition - b.Partition })
	b, _ := json.Marshal(doc)
	return string(b)
}

// everyBrokerKnows reports whether each of live answers the topic's
// metadata with n led partitions. On a cluster, brokers learn of a new topic
// one by one; a client whose first request meets one that has not yet would
// get "unknown topic or partition". A broker that cannot be dialled counts
// as knowing: it answers no client either.
func everyBrokerKnows(ctx context.Context, live []kafka.Broker, topic string, n int) bool {
	if len(live) < 2 {
		return true
	}
	for _, b := range live {
		c, err := (&kafka.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
		if err != nil {
			continue
		}
		ps, err := c.ReadPartitions(topic)
		_ = c.Close()
		if err != nil || len(ps) != n || !allLed(ps) {
			return false
		}
	}
	return true
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
