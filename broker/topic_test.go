package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"pinpipe/broker"
	"pinpipe/internal/testenv"
)

// logBuffer collects a logger's JSON lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the logged lines whose message contains substr.
func (b *logBuffer) records(t *testing.T, substr string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, substr) {
			out = append(out, rec)
		}
	}
	return out
}

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// clusterBrokers returns how many brokers of the cluster at brokers answer.
func clusterBrokers(t *testing.T, brokers []string) int {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	testenv.Must(t, err)
	defer conn.Close()
	bs, err := conn.Brokers()
	testenv.Must(t, err)
	return len(bs)
}

func partitions(t *testing.T, brokers []string, topic string) []kafka.Partition {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	testenv.Must(t, err)
	defer conn.Close()
	ps, err := conn.ReadPartitions(topic)
	testenv.Must(t, err)
	return ps
}

// createTopic makes a topic the way an operator might have, before pinpipe
// first started.
func createTopic(t *testing.T, brokers []string, topic string, parts, replicas int) {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	testenv.Must(t, err)
	defer conn.Close()
	ctrl, err := conn.Controller()
	testenv.Must(t, err)
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	testenv.Must(t, err)
	defer cc.Close()
	testenv.Must(t, cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: parts, ReplicationFactor: replicas}))
	// Every broker learns of the topic a moment later; a client asks any
	// of them, so wait for all.
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		for _, b := range brokers {
			bc, err := kafka.Dial("tcp", b)
			if err != nil {
				return false, fmt.Sprintf("dial %s: %v", b, err)
			}
			ps, err := bc.ReadPartitions(topic)
			_ = bc.Close()
			if err != nil || len(ps) != parts {
				return false, fmt.Sprintf("partitions of %s on %s: %d, %v", topic, b, len(ps), err)
			}
			for _, p := range ps {
				if p.Leader.Host == "" {
					return false, fmt.Sprintf("partition %d has no leader on %s", p.ID, b)
				}
			}
		}
		return true, ""
	})
}

// threeBrokers returns a 3-broker Kafka-protocol cluster: the real one when
// the stack runs three or more brokers, else an in-process one, so the
// replication paths run on the embedded defaults too.
func threeBrokers(t *testing.T) []string {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	if clusterBrokers(t, brokers) >= 3 {
		return brokers
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	testenv.Must(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func ensure(t *testing.T, brokers []string, topic broker.Topic, log *slog.Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Must(t, broker.Ensure(ctx, brokers, topic, log))
}

func TestEnsureCreatesTopicWithAskedPartitionsAndReplicasCappedAtBrokerCount(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	n := clusterBrokers(t, brokers)
	topic := testenv.Name("topic-")
	log, logs := newLog()
	ensure(t, brokers, broker.Topic{Name: topic, Partitions: 4, Replication: 3}, log)

	ps := partitions(t, brokers, topic)
	if len(ps) != 4 {
		t.Fatalf("topic has %d partitions, want 4", len(ps))
	}
	want := min(3, n)
	for _, p := range ps {
		if len(p.Replicas) != want {
			t.Errorf("partition %d has %d replicas, want %d (3 asked, %d brokers)", p.ID, len(p.Replicas), want, n)
		}
	}
	capped := logs.records(t, "capped")
	if n < 3 && len(capped) != 1 {
		t.Errorf("with %d brokers, want one log line saying replication was capped, got %v", n, capped)
	}
	if n >= 3 && len(capped) != 0 {
		t.Errorf("with %d brokers nothing is capped, got %v", n, capped)
	}
	if w := logs.records(t, "fewer replicas"); len(w) != 0 {
		t.Errorf("a topic just created gets no replica warning, got %v", w)
	}
}

func TestEnsureZeroTopicSettingsMeanTheDefaults(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	n := clusterBrokers(t, brokers)
	topic := testenv.Name("topic-")
	ensure(t, brokers, broker.Topic{Name: topic}, nil)
	ps := partitions(t, brokers, topic)
	if len(ps) != broker.Partitions {
		t.Fatalf("topic has %d partitions, want broker.Partitions = %d", len(ps), broker.Partitions)
	}
	if got, want := len(ps[0].Replicas), min(broker.DefaultReplication, n); got != want {
		t.Fatalf("topic has %d replicas, want %d", got, want)
	}
}

func TestEnsureWarnsAboutExistingTopicWithFewerReplicasAndLeavesItAlone(t *testing.T) {
	brokers := threeBrokers(t)
	topic := testenv.Name("topic-")
	createTopic(t, brokers, topic, 3, 1)

	log, logs := newLog()
	ensure(t, brokers, broker.Topic{Name: topic, Partitions: 3, Replication: 3}, log)

	after := partitions(t, brokers, topic)
	slices.SortFunc(after, func(a, b kafka.Partition) int { return a.ID - b.ID })
	for _, p := range after {
		if len(p.Replicas) != 1 {
			t.Fatalf("partition %d has replicas %v after Ensure, want the 1 it was created with", p.ID, p.Replicas)
		}
	}
	warns := logs.records(t, "fewer replicas")
	if len(warns) != 1 {
		t.Fatalf("want one warning about the replication factor, got %d", len(warns))
	}
	w := warns[0]
	if w["level"] != "WARN" || !strings.Contains(w["msg"].(string), "kafka-reassign-partitions.sh --bootstrap-server "+strings.Join(brokers, ",")) {
		t.Errorf("warning does not name the command to fix it: %v", w)
	}
	if w["replication"] != float64(1) || w["asked"] != float64(3) {
		t.Errorf("warning says replication %v, asked %v; want 1 and 3", w["replication"], w["asked"])
	}
	// The suggested reassignment keeps each partition's replica and adds two other brokers.
	var doc struct {
		Version    int `json:"version"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int    `json:"partition"`
			Replicas  []int  `json:"replicas"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(w["reassignment"].(string)), &doc); err != nil {
		t.Fatalf("reassignment %q: %v", w["reassignment"], err)
	}
	if doc.Version != 1 || len(doc.Partitions) != 3 {
		t.Fatalf("reassignment = %+v, want version 1 and 3 partitions", doc)
	}
	for i, p := range doc.Partitions {
		seen := map[int]bool{}
		for _, r := range p.Replicas {
			seen[r] = true
		}
		if p.Topic != topic || p.Partition != i || len(p.Replicas) != 3 || len(seen) != 3 || !seen[after[i].Replicas[0].ID] {
			t.Errorf("reassignment of partition %d = %+v, want 3 distinct replicas including %d", i, p, after[i].Replicas[0].ID)
		}
	}
}

func TestEnsureWarnsWhenExistingTopicHasOtherPartitionCount(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	topic := testenv.Name("topic-")
	createTopic(t, brokers, topic, 2, 1)
	log, logs := newLog()
	ensure(t, brokers, broker.Topic{Name: topic, Partitions: 6, Replication: 1}, log)
	if got := len(partitions(t, brokers, topic)); got != 2 {
		t.Fatalf("topic has %d partitions after Ensure, want the 2 it had", got)
	}
	if w := logs.records(t, "partition count"); len(w) != 1 || w[0]["partitions"] != float64(2) || w[0]["asked"] != float64(6) {
		t.Fatalf("want one warning naming 2 partitions and 6 asked, got %v", w)
	}
}

func TestEnsureWarnsWhenMinInsyncReplicasLetsOneCopyAcknowledge(t *testing.T) {
	brokers := threeBrokers(t)
	topic := testenv.Name("topic-")
	log, logs := newLog()
	ensure(t, brokers, broker.Topic{Name: topic, Partitions: 3, Replication: 3}, log)

	// A broker may not know a new topic's configs yet: read until one answers.
	minISR := 0
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		res, err := cl.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"min.insync.replicas"},
		}}})
		if err != nil || len(res.Resources) != 1 || len(res.Resources[0].ConfigEntries) != 1 {
			return false, fmt.Sprintf("describe configs: %+v, %v", res, err)
		}
		minISR, err = strconv.Atoi(res.Resources[0].ConfigEntries[0].ConfigValue)
		return err == nil, fmt.Sprint(err)
	})
	warns := logs.records(t, "min.insync.replicas=")
	if minISR < 2 && (len(warns) != 1 || !strings.Contains(warns[0]["msg"].(string), "--add-config min.insync.replicas=2")) {
		t.Fatalf("topic has min.insync.replicas=%d: want one warning naming kafka-configs.sh, got %v", minISR, warns)
	}
	if minISR >= 2 && len(warns) != 0 {
		t.Fatalf("topic has min.insync.replicas=%d: want no warning, got %v", minISR, warns)
	}
}
