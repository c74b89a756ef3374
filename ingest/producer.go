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
	invalid  prometheus.Counter
	produce  prometheus.Histogram
	failed   prometheus.Counter
}

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
			MaxAttempts:  3,
			WriteTimeout: 10 * time.Second,
			ReadTimeout:  10 * time.Second,
			// Snappy: cheap on CPU, which is what a 2-core box runs out of
			// first; lz4 here cost a quarter of the ingest path.
			Compression: kafka.Snappy,
			// A transport of its own: the shared default caches topic
			// metadata, so a topic created after it first looked would stay
			// unknown to this producer for a while.
			Transport: &kafka.Transport{MetadataTopics: []string{topic}},
		},
		m: metrics{
			accepted: f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_pins_accepted_total", Help: "Pins acknowledged by Kafka."}),
			rejected: f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_pins_rejected_total", Help: "Pins not accepted because their request was refused as invalid (400): every pin of such a request, the good ones too, as nothing of it is produced. accepted + rejected = pins received in well-formed requests."}),
			invalid:  f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_pins_invalid_total", Help: "Pins with at least one problem (a pin with several bad fields counts once); each made its whole request refused."}),
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
// Returns an *pin.Error with code EUNAVAILABLE when Kafka did not
// acknowledge them; some may have been written, and a retry is safe because
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

// Rejected counts a request refused as invalid: its pins, all refused, and
// how many of them were invalid.
func (p *Producer) Rejected(c pin.Counts) {
	p.m.rejected.Add(float64(c.Pins))
	p.m.invalid.Add(float64(c.Invalid))
}

// Close flushes pending records and closes the connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.w.Transport.(*kafka.Transport).CloseIdleConnections()
	return err
}
