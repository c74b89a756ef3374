package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/synth"
)

// streamDB is the Postgres database of the stream part: pinpipe's lane
// writes its schema pinterest, the Spark job the schema seed.
const streamDB = "pinpipe_peers"

// benchStream produces pins at e.rate a second to a topic per side and
// measures, for each pin, the time from its Kafka timestamp to its row
// being visible in Postgres: first pinpipe's stream lane, then the seed's
// Spark Structured Streaming job.
func benchStream(ctx context.Context, e *env, res *results) error {
	dbURL, err := freshDatabase(ctx, e.stack.postgresURL, streamDB)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())

	ppTopic, seedTopic := "peers-stream-pinpipe-"+e.run, "peers-stream-seed-"+e.run
	for _, t := range []string{ppTopic, seedTopic} {
		if err := broker.EnsureTopic(ctx, e.stack.brokers, t, 3); err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
	}
	defer deleteTopics(e.stack.brokers, ppTopic, seedTopic)

	port, err := freePort()
	if err != nil {
		return err
	}
	pp, err := start(e, "stream-pinpipe", e.repo, pinpipeEnv(
		fmt.Sprintf("PINPIPE_ADDR=127.0.0.1:%d", port),
		"PINPIPE_DATA_DIR="+filepath.Join(e.work, "stream-data"),
		"PINPIPE_KAFKA_BROKERS="+joinComma(e.stack.brokers), "PINPIPE_TOPIC="+ppTopic,
		"PINPIPE_POSTGRES_URL="+dbURL, "PINPIPE_ROLES=stream", "PINPIPE_LOG_LEVEL=warn"),
		e.pinpipe, "serve")
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, pp, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), time.Minute); err != nil {
		pp.stop()
		return err
	}
	log.Printf("stream: pinpipe's stream lane, %d pins/s", e.rate)
	ppF, err := freshness(ctx, e, conn, ppTopic, "pinterest.pins", pp)
	var ppD drained
	if err == nil {
		ppD, err = drainBacklog(ctx, e, conn, ppTopic, "pinterest.pins", pp)
	}
	pp.stop()
	if err != nil {
		return fmt.Errorf("pinpipe: %w", err)
	}

	for _, stmt := range []string{
		`CREATE SCHEMA seed`,
		`CREATE TABLE seed.pins (id_index BIGINT, title TEXT, category TEXT, unique_id TEXT PRIMARY KEY,
			description TEXT, poster_name TEXT, follower_count INTEGER, tag_list TEXT, is_image_or_video TEXT,
			image_src TEXT, downloaded INTEGER, save_location TEXT, ingested_at TIMESTAMPTZ, kafka_offset BIGINT)`,
		`CREATE INDEX ON seed.pins (ingested_at)`,
		`CREATE TABLE seed.pins_stage (LIKE seed.pins)`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("postgres: %s: %w", stmt, err)
		}
	}
	u, _ := url.Parse(dbURL)
	pw, _ := u.User.Password()
	jdbc := fmt.Sprintf("jdbc:postgresql://%s%s?user=%s&password=%s", u.Host, u.Path, u.User.Username(), pw)
	seed, err := start(e, "stream-spark", e.dir(), e.sparkEnv("PEERS_KAFKA_BROKERS="+joinComma(e.stack.brokers), "PEERS_JDBC_URL="+jdbc),
		e.python, "spark_stream.py", seedTopic)
	if err != nil {
		return err
	}
	defer seed.stop()
	if err := waitLog(ctx, seed, "PEERS_READY", 5*time.Minute); err != nil {
		return err
	}
	log.Printf("stream: Spark Structured Streaming, %d pins/s", e.rate)
	seedF, err := freshness(ctx, e, conn, seedTopic, "seed.pins", seed)
	if err != nil {
		return fmt.Errorf("spark: %w", err)
	}
	seedD, err := drainBacklog(ctx, e, conn, seedTopic, "seed.pins", seed)
	if err != nil {
		return fmt.Errorf("spark: %w", err)
	}

	for _, s := range []struct {
		name string
		f    fresh
	}{{"pinpipe", ppF}, {"Spark Structured Streaming", seedF}} {
		res.record("stream", s.name, fmt.Sprintf("%d pins/s for %s", e.rate, e.streamD),
			"freshness p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d of %d pins visible; produced %.0f pins/s; CPU %.1f µs/pin",
			ms(s.f.p50), ms(s.f.p99), ms(s.f.max), s.f.seen, s.f.sent, s.f.rate, s.f.cpuPerPin)
	}
	res.compare("stream", fmt.Sprintf("freshness p50 at %d pins/s", e.rate), "Spark Structured Streaming", "ms", ms(ppF.p50), ms(seedF.p50), true)
	res.compare("stream", fmt.Sprintf("freshness p99 at %d pins/s", e.rate), "Spark Structured Streaming", "ms", ms(ppF.p99), ms(seedF.p99), true)
	res.compare("stream", "CPU per pin (consumer process tree)", "Spark Structured Streaming", "µs", ppF.cpuPerPin, seedF.cpuPerPin, true)
	if e.backlog > 0 {
		for _, s := range []struct {
			name string
			d    drained
		}{{"pinpipe", ppD}, {"Spark Structured Streaming", seedD}} {
			res.record("stream", s.name, fmt.Sprintf("a backlog of %d pins", e.backlog),
				"all visible %.1f s after the first was produced (produced in %.1f s): %.0f pins/s sustained; CPU %.1f µs/pin",
				s.d.took.Seconds(), s.d.produced.Seconds(), s.d.rate, s.d.cpuPerPin)
		}
		res.compare("stream", fmt.Sprintf("sustained maximum, a backlog of %d", e.backlog), "Spark Structured Streaming", "pins/s", ppD.rate, seedD.rate, false)
	}
	return nil
}

// drained is what one backlog run measured.
type drained struct {
	took, produced time.Duration
	rate           float64
	cpuPerPin      float64
}

// drainBacklog measures a consumer's sustained maximum: it produces
// e.backlog new pins to topic as fast as Kafka takes them (far faster than
// either consumer writes Postgres), all with the Kafka timestamp of the
// start, and waits until table holds every one of them (polled every
// 100 ms). The rate is the backlog over the time from the first produce to
// the last row visible. Zero e.backlog measures nothing.
func drainBacklog(ctx context.Context, e *env, conn *pgx.Conn, topic, table string, consumer *proc) (drained, error) {
	var d drained
	if e.backlog <= 0 {
		return d, nil
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(e.stack.brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000, Compression: kafka.Lz4,
	}
	defer w.Close()
	gen := synth.New(uint64(len(topic)) + 7777)
	ids := make(map[string]bool, e.backlog)
	msgs := make([]kafka.Message, 0, e.backlog)
	for len(msgs) < e.backlog {
		p := gen.Next()
		id := strings.ToLower(p["unique_id"].(string))
		if ids[id] {
			continue
		}
		ids[id] = true
		v, _ := json.Marshal(p)
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
	}
	log.Printf("stream: %s drains a backlog of %d pins", consumer.name, e.backlog)
	start := time.Now()
	ts := start.Truncate(time.Millisecond)
	for i := range msgs {
		msgs[i].Time = ts
	}
	cpu0, _ := treeCPU(consumer.pid())
	prodErr := make(chan error, 1)
	var produced time.Duration
	go func() {
		for i := 0; i < len(msgs); i += 5000 {
			if err := produce(ctx, w, msgs[i:min(i+5000, len(msgs))]); err != nil {
				prodErr <- fmt.Errorf("produce: %w", err)
				return
			}
		}
		produced = time.Since(start)
		prodErr <- nil
	}()
	deadline := start.Add(10 * time.Minute)
	prodDone := false
	for {
		if !prodDone {
			var err error
			if prodDone, err = producing(consumer, prodErr); err != nil {
				return d, err
			}
		} else if consumer.exited() {
			return d, consumerEnded(consumer)
		}
		var n int
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE ingested_at >= $1", table), ts).Scan(&n); err != nil {
			return d, fmt.Errorf("poll %s: %w", table, err)
		}
		if prodDone && n >= len(msgs) {
			break
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("only %d of a backlog of %d pins visible in %s after %s", n, len(msgs), table, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	d.took, d.produced = time.Since(start), produced
	d.rate = float64(len(msgs)) / d.took.Seconds()
	if cpu1, err := treeCPU(consumer.pid()); err == nil {
		d.cpuPerPin = float64((cpu1 - cpu0).Microseconds()) / float64(len(msgs))
	}
	return d, nil
}

// fresh is what one freshness run measured.
type fresh struct {
	sent, seen    int
	rate          float64
	p50, p99, max time.Duration
	cpuPerPin     float64
}

// freshness produces pins to topic at e.rate for 10 s unmeasured and then
// e.streamD, while polling table (every 10 ms) for the rows that appear, and
// returns the distribution of (first seen − Kafka timestamp) over the
// measured pins. It waits up to a minute after the last pin for the rest.
// consumer's CPU is read over the measured window.
func freshness(ctx context.Context, e *env, conn *pgx.Conn, topic, table string, consumer *proc) (fresh, error) {
	var f fresh
	w := &kafka.Writer{
		Addr: kafka.TCP(e.stack.brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000,
	}
	defer w.Close()

	type sentPin struct {
		id string
		ts time.Time
	}
	var (
		mu       sync.Mutex
		sent     []sentPin // in produce order
		measured = map[string]time.Time{}
		lats     []time.Duration
		seen     = map[string]bool{}
	)
	gen := synth.New(uint64(len(topic)) + 99)
	warm := 10 * time.Second
	begin := time.Now()
	measureFrom, end := begin.Add(warm), begin.Add(warm+e.streamD)
	var cpu0 time.Duration

	prodErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for now := range tick.C {
			if now.After(end) || ctx.Err() != nil {
				prodErr <- nil
				return
			}
			due := int(now.Sub(begin).Seconds()*float64(e.rate)) - n
			if due <= 0 {
				continue
			}
			ts := time.Now().Truncate(time.Millisecond)
			msgs := make([]kafka.Message, due)
			batch := make([]sentPin, due)
			for i := range msgs {
				p := gen.Next()
				id := strings.ToLower(p["unique_id"].(string))
				v, _ := json.Marshal(p)
				msgs[i] = kafka.Message{Key: []byte(id), Value: v, Time: ts}
				batch[i] = sentPin{id, ts}
			}
			mu.Lock()
			sent = append(sent, batch...)
			if ts.After(measureFrom) {
				if cpu0 == 0 {
					cpu0, _ = treeCPU(consumer.pid())
				}
				for _, b := range batch {
					measured[b.id] = b.ts
				}
			}
			mu.Unlock()
			if err := produce(ctx, w, msgs); err != nil {
				prodErr <- fmt.Errorf("produce: %w", err)
				return
			}
			n += due
		}
	}()

	var cpu1 time.Duration
	low := 0 // sent[:low] are all seen
	produced := false
	for {
		if !produced {
			var err error
			if produced, err = producing(consumer, prodErr); err != nil {
				return f, err
			}
			if produced {
				cpu1, _ = treeCPU(consumer.pid())
			}
		} else if consumer.exited() {
			return f, consumerEnded(consumer)
		}
		mu.Lock()
		for low < len(sent) && seen[sent[low].id] {
			low++
		}
		var since time.Time
		if low < len(sent) {
			since = sent[low].ts
		}
		done := produced && low == len(sent)
		mu.Unlock()
		if done || produced && time.Since(end) > time.Minute {
			break
		}
		if !since.IsZero() {
			rows, err := conn.Query(ctx, fmt.Sprintf("SELECT unique_id FROM %s WHERE ingested_at >= $1", table), since.Add(-time.Millisecond))
			if err != nil {
				return f, fmt.Errorf("poll %s: %w", table, err)
			}
			now := time.Now()
			mu.Lock()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					break
				}
				if seen[id] {
					continue
				}
				seen[id] = true
				if ts, ok := measured[id]; ok {
					lats = append(lats, now.Sub(ts))
				}
			}
			mu.Unlock()
			rows.Close()
			if err := rows.Err(); err != nil {
				return f, fmt.Errorf("poll %s: %w", table, err)
			}
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	slices.Sort(lats)
	f.sent, f.seen = len(measured), len(lats)
	f.rate = float64(len(measured)) / e.streamD.Seconds()
	f.p50, f.p99 = quantile(lats, 0.5), quantile(lats, 0.99)
	if len(lats) > 0 {
		f.max = lats[len(lats)-1]
	}
	if f.seen > 0 {
		f.cpuPerPin = float64((cpu1 - cpu0).Microseconds()) / float64(f.sent)
	}
	if f.seen < f.sent {
		return f, fmt.Errorf("only %d of %d pins became visible in %s within a minute of the last", f.seen, f.sent, table)
	}
	return f, nil
}

// producing checks, without waiting, a measurement's two goroutines: the
// consumer must still run, and the producer reports on prodErr when it is
// done. Returns true once the producer is done, and the producer's error or
// one saying the consumer ended.
func producing(consumer *proc, prodErr <-chan error) (done bool, err error) {
	if consumer.exited() {
		return false, consumerEnded(consumer)
	}
	select {
	case err := <-prodErr:
		return err == nil, err
	default:
		return false, nil
	}
}

func consumerEnded(consumer *proc) error {
	return fmt.Errorf("%s ended: %v%s", consumer.name, consumer.err, consumer.tail())
}

// freshDatabase drops and creates database name on the Postgres at base and
// returns its URL.
func freshDatabase(ctx context.Context, base, name string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "CREATE DATABASE " + name} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("postgres: %s: %w", stmt, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// waitLog waits until p's log holds marker. Returns an error when p ends
// first or timeout passes.
func waitLog(ctx context.Context, p *proc, marker string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(p.log); strings.Contains(string(b), marker) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s ended before it was ready: %v%s", p.name, p.err, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s%s", p.name, timeout, p.tail())
}

// produce writes msgs, trying again for up to 30 s: a partition's new
// leader may answer "unknown topic or partition" for a moment after every
// broker's metadata already lists the topic (broker.EnsureTopic waited for
// that). A batch written twice only repeats pins, whose first sighting is
// what counts.
func produce(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		log.Printf("stream: produce: %s; trying again", msg)
		time.Sleep(200 * time.Millisecond)
	}
}
