// Package broker holds pinpipe's Kafka plumbing: topic administration and
// the embedded default, an in-process broker
// that speaks the real Kafka wire protocol (franz-go's kfake) and keeps its
// log on disk, so kafka-go talks to it exactly as it talks to a real cluster.
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Partitions is the default number of partitions of pinpipe's topic
// (PINPIPE_TOPIC_PARTITIONS) and of topics the embedded broker creates on
// its own.
const Partitions = 3

// Embedded is a running in-process broker.
type Embedded struct {
	cluster *kfake.Cluster
	addrs   []string
}

// Start runs a broker on addr (127.0.0.1:0 for a free port) that persists to
// dir. Records accepted before a restart are there after it. It does not
// create topic: Ensure does, with the partitions the configuration asks for.
// Returns an error when dir is unusable or addr cannot be bound.
func Start(dir, addr, topic string, log *slog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: port %q: %w", portStr, err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.DataDir(dir),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(Partitions),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{cluster: c, addrs: c.ListenAddrs()}, nil
}

// Addrs returns the broker's bootstrap addresses.
func (e *Embedded) Addrs() []string { return e.addrs }

// Close stops the broker and flushes its log to disk.
func (e *Embedded) Close() { e.cluster.Close() }
