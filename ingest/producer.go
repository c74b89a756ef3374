// Package ingest turns accepted pins into Kafka records: the producer behind
// POST /pins. A request is acknowledged only after Kafka acknowledged every
// one of its records from all in-sync replicas.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"

	"pinpipe/pin"
)

// Producer writes pins to the topic, keyed by unique_id so every version of
// a pin lands in the same partition.
//
// It commits in groups: concurrent Produce calls queue their records, and
// each of a few writer loops takes everything queued so far (up to
// groupRecords records or groupBytes bytes, but always at least one whole
// request) and writes it in one call, waiting for the acknowledgements.
// While the loops wait, the queue grows, so a group holds about one round
// trip's worth of requests however slow the round trip is, and several
// groups are in flight at once.
type Producer struct {
	writers   []*kafka.Writer
	transport *kafka.Transport
	brokers   []string
	m         metrics

	mu     sync.Mutex
	wake   *sync.Cond // signalled when the queue grows or the producer closes
	queue  []*request
	closed bool
	loops  sync.WaitGroup
}

// request is one Produce call's records and where its result goes.
type request struct {
	msgs  []kafka.Message
	bytes int
	done  chan error // buffered: the writer loop never blocks on a caller that left
}

type metrics struct {
	accepted prometheus.Counter
	rejected prometheus.Counter
	invalid  prometheus.Counter
	produce  prometheus.Histogram
	failed   prometheus.Counter
	writes   prometheus.Counter
	group    prometheus.Histogram
	pending  prometheus.Gauge
}

// The producer's retries of a batch: kafka-go waits attempt² × backoffMin,
// at most backoffMax, before attempt number attempt, so failoverAttempts
// attempts span FailoverWait.
const (
	backoffMin       = 100 * time.Millisecond
	backoffMax       = time.Second
	failoverAttempts = 18
)

// kafka-go's snappy codec is one for the process, and by default
// compresses at s2's "better" level, which took 7 % of the CPU of NDJSON
// ingest; the fast level costs about half as much for slightly larger
// records. Set before any writer runs.
func init() {
	compress.SnappyCodec.Compression = snappy.FasterCompression
}

// Group commit bounds: how many writer loops (each with a write of its own
// in flight), and how much one write takes from the queue at most. A
// single request larger than a bound is still written whole, in one write.
const (
	writerLoops  = 4
	groupRecords = 1024
	groupBytes   = 16 << 20
)

// FailoverWait is about how long a write keeps retrying a partition that
// has no reachable leader before POST /pins answers 503: longer than a
// Kafka cluster takes to replace a dead leader (its session timeout, 9 s
// by default, then the election).
const FailoverWait = 15 * time.Second

// NewProducer returns a Producer for topic on brokers, registering its
// metrics with reg, and starts its writer loops (Close stops them).
// Nothing is dialled until the first Produce.
func NewProducer(brokers []string, topic string, reg prometheus.Registerer) *Producer {
	f := promauto.With(reg)
	// One transport for all the writers: the connections and the topic
	// metadata are shared. Its own, not kafka-go's default: the shared
	// default caches topic metadata, so a topic created after it first
	// looked would stay unknown to this producer for a while. It looks up
	// the leaders every second at most, so a new leader is found soon after
	// an election.
	tr := &kafka.Transport{MetadataTopics: []string{topic}, MetadataTTL: time.Second}
	p := &Producer{
		brokers:   brokers,
		transport: tr,
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
			writes:  f.NewCounter(prometheus.CounterOpts{Name: "pinpipe_ingest_produce_writes_total", Help: "Group writes: each carries the records of every request queued while the previous writes were in flight."}),
			pending: f.NewGauge(prometheus.GaugeOpts{Name: "pinpipe_ingest_produce_pending_requests", Help: "Requests queued for or in a group write, not yet answered."}),
			group: f.NewHistogram(prometheus.HistogramOpts{
				Name:    "pinpipe_ingest_produce_write_requests",
				Help:    "Requests carried by one group write.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 12),
			}),
		},
	}
	p.wake = sync.NewCond(&p.mu)
	for range writerLoops {
		// A writer per loop: kafka-go sends one batch per partition at a
		// time, so loops sharing a writer would queue behind each other.
		w := &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			// The loop already grouped the records: send them at once.
			// BatchSize is set per write (see writeLoop). The writer adds
			// all of a call's records before its timer can cut the batch.
			BatchBytes:   64 << 20,
			BatchTimeout: time.Microsecond,
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
			// first; lz4 here cost a quarter of the ingest path. At the
			// fast level (see init).
			Compression: kafka.Snappy,
			Transport:   tr,
		}
		p.writers = append(p.writers, w)
		p.loops.Add(1)
		go p.writeLoop(w)
	}
	return p
}

// Produce writes every record and returns once Kafka acknowledged all of
// them. The record timestamp is now: it decides the pin's day (dt).
// A partition without a reachable leader is retried for about
// FailoverWait. Returns an *pin.Error with code EUNAVAILABLE when Kafka did
// not acknowledge them by then, when the producer is closed, or when ctx
// ends first (the client went away): some or all records may have been
// written all the same, and a retry is safe because every lane keeps one
// row per unique_id. No records: returns nil at once.
func (p *Producer) Produce(ctx context.Context, recs []pin.Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := time.Now()
	r := &request{msgs: make([]kafka.Message, len(recs)), done: make(chan error, 1)}
	for i, rec := range recs {
		// Lower case, as cleaning spells it, so both spellings of an ID share
		// a partition and keep their order.
		key := []byte(strings.ToLower(rec.Pin.UniqueID))
		r.msgs[i] = kafka.Message{Key: key, Value: rec.Raw, Time: now}
		r.bytes += len(key) + len(rec.Raw)
	}
	var err error
	p.mu.Lock()
	if p.closed {
		err = errors.New("the producer is shutting down")
	} else {
		p.queue = append(p.queue, r)
		p.m.pending.Inc()
		p.wake.Signal()
	}
	p.mu.Unlock()
	if err == nil {
		select {
		case err = <-r.done:
		case <-ctx.Done():
			// The records stay queued or in flight and may be written.
			err = ctx.Err()
		}
	}
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

// writeLoop writes groups of queued requests with w until the producer is
// closed and the queue is empty.
func (p *Producer) writeLoop(w *kafka.Writer) {
	defer p.loops.Done()
	var msgs []kafka.Message
	for {
		group := p.take()
		if group == nil {
			return
		}
		msgs = msgs[:0]
		for _, r := range group {
			msgs = append(msgs, r.msgs...)
		}
		// One batch per partition, however the group spreads over them.
		// kafka-go allocates BatchSize messages for every batch it starts,
		// so a fixed large size cost more than the rest of a small write.
		// Only this goroutine uses w, and kafka-go reads the field inside
		// WriteMessages, so setting it here is safe.
		w.BatchSize = len(msgs)
		// Not the callers' contexts: a group serves many, and one leaving
		// must not fail the others.
		err := w.WriteMessages(context.Background(), msgs...)
		p.m.writes.Inc()
		p.m.group.Observe(float64(len(group)))
		var werrs kafka.WriteErrors
		perMessage := errors.As(err, &werrs) && len(werrs) == len(msgs)
		off := 0
		for _, r := range group {
			rerr := err
			if perMessage {
				// Only the requests with a record in a failed batch fail.
				rerr = errors.Join(werrs[off : off+len(r.msgs)]...)
			}
			off += len(r.msgs)
			r.done <- rerr
			p.m.pending.Dec()
		}
		clear(msgs) // drop the references to the written records
	}
}

// take waits for queued requests and removes a group from the front of the
// queue: at least one request, then more while the group stays within
// groupRecords and groupBytes. Returns nil once the producer is closed and
// the queue is empty.
func (p *Producer) take() []*request {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) == 0 && !p.closed {
		p.wake.Wait()
	}
	if len(p.queue) == 0 {
		return nil
	}
	n, recs, bytes := 1, len(p.queue[0].msgs), p.queue[0].bytes
	for ; n < len(p.queue); n++ {
		r := p.queue[n]
		if recs+len(r.msgs) > groupRecords || bytes+r.bytes > groupBytes {
			break
		}
		recs += len(r.msgs)
		bytes += r.bytes
	}
	group := slices.Clone(p.queue[:n])
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	if rest > 0 {
		// More than this loop took: let another loop start a write.
		p.wake.Signal()
	}
	return group
}

// Rejected counts a request refused as invalid: its pins, all refused, and
// how many of them were invalid.
func (p *Producer) Rejected(c pin.Counts) {
	p.m.rejected.Add(float64(c.Pins))
	p.m.invalid.Add(float64(c.Invalid))
}

// Close refuses further records, writes every request already queued
// (each caller gets its own result, as always), waits for the writes in
// flight and closes the connections. Returns the errors closing the
// writers, joined.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	p.loops.Wait()
	var errs []error
	for _, w := range p.writers {
		errs = append(errs, w.Close())
	}
	p.transport.CloseIdleConnections()
	return errors.Join(errs...)
}
