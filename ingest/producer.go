// Package ingest turns accepted pins into Kafka records: the producer behind
// POST /pins. A request is acknowledged only after Kafka acknowledged every
// one of its records from all in-sync replicas.
package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"pinpipe/pin"
)

// Producer writes pins to the topic, keyed by unique_id so every version of
// a pin lands in the same partition.
type Producer struct {
	w       *kafka.Writer
	brokers []string
	m       metrics
}

type metrics struct {
	accepted prometheus.Counter
	rejected prometheus.Counter
	produce  prometheus.Histogram
	failed   prometheus.Counter
}

// The producer's retries of a batch: kafka-go waits attempt² × backoffMin,
// at most backoffMax, before attempt number attempt, so failoverAttempts
// attempts span FailoverWait.
const (
	backoffMin       = 100 * time.Millisecond
	backoffMax       = time.Second
	failoverAttempts = 18
)

// FailoverWait is about how long a write keeps retrying a partition that
// has no reachable leader before POST /pins answers 503: longer than a
// Kafka cluster takes to replace a dead leader (its session timeout, 9 s
// by default, then the election).
const FailoverWait = 15 * time.Second

// NewProducer returns a Producer for topic on brokers, registering its
// metrics with reg. Nothing is dialled until the first Produce.
func NewProducer(brokers []string, topic string, reg prometheus.Registerer) *Producer {
	f := promauto.With(reg)
	return &Producer{
		brokers: brokers,
		w: &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			// Concurrent requests share batches: a batch leaves when it is
			// full or a millisecond after its first record, so throughput
			// does not cost one round trip per pin.
			BatchSize:    2000,
			BatchBytes:   64 << 20,
			BatchTimeout: time.Millisecond,
			// A partition whose leader died cannot be written until the
			// cluster fences the broker and elects another leader (Kafka's
			// broker.session.timeout.ms, 9 s by default) and the producer
			// learns of it: retry for longer than that, so losing one broker
			// of a replicated cluster is a delay, not a 503.
			MaxAttempts:     failoverAttempts,
			WriteBackoffMin: backoffMin,
			WriteBackoffMax: backoffMax,
			WriteTimeout:    10 * time.Second,
			ReadTimeout:     10 * time.Second,
			// Snappy: cheap on CPU, which is what a 2-core box runs out of
			// first; lz4 here cost a quarter of the ingest path.
			Compression: kafka.Snappy,
			// A transport of its own: the shared default caches topic
			// metadata, so a topic created after it first looked would stay
			// unknown to this producer for a while.
			// It also looks up the leaders every second at most, so a
			// new leader is found soon after the election.
			Transport: &kafka.Transport{MetadataTopics: []string{topic}, MetadataTTL: time.Second},
		},
		m: metrics{
			accepted: f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_pins_accepted_total", Help: "Pins acknowledged by Kafka."}),
			rejected: f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_pins_rejected_total", Help: "Pins refused as invalid (their whole request was refused)."}),
			failed:   f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_produce_failures_total", Help: "Requests whose records Kafka did not acknowledge."}),
			produce: f.NewHistogram(prometheus.HistogramOpts{
				Name:    "pinpipe_ingest_produce_seconds",
				Help:    "Time from handing a request's records to the producer to Kafka's acknowledgement of all of them.",
				Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
			}),
		},
	}
}

// Produce writes every record and returns once Kafka acknowledged all of
// them. The record timestamp is now: it decides the pin's day (dt).
// A partition without a reachable leader is retried for about
// FailoverWait. Returns an *pin.Error with code EUNAVAILABLE when Kafka did
// not acknowledge them by then; some may have been written, and a retry is safe because
// every lane keeps one row per unique_id.
func (p *Producer) Produce(ctx context.Context, recs []pin.Record) error {
	now := time.Now()
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		// Lower case, as cleaning spells it, so both spellings of an ID share
		// a partition and keep their order.
		msgs[i] = kafka.Message{Key: []byte(strings.ToLower(r.Pin.UniqueID)), Value: r.Raw, Time: now}
	}
	err := p.w.WriteMessages(ctx, msgs...)
	p.m.produce.Observe(time.Since(now).Seconds())
	if err != nil {
		p.m.failed.Inc()
		return &pin.Error{Code: pin.EUNAVAILABLE, Message: fmt.Sprintf(
			"Kafka (%v) did not acknowledge the %d pins of this request: %v. Retry later; a retry is safe because pins are deduplicated by unique_id.",
			p.brokers, len(recs), err)}
	}
	p.m.accepted.Add(float64(len(recs)))
	return nil
}

// Rejected counts n pins refused as invalid.
func (p *Producer) Rejected(n int) { p.m.rejected.Add(float64(n)) }

// Close flushes pending records and closes the connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.w.Transport.(*kafka.Transport).CloseIdleConnections()
	return err
}
