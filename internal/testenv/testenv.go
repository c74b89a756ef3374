// Package testenv gives tests the dependencies pinpipe runs against: the
// real services when the stack's environment is present (scripts/stack env),
// else the embedded defaults. Each test gets its own topic, bucket, keyspace
// and database, so suites can share one real stack. With
// PINPIPE_REQUIRE_REAL=1 a missing real service fails the test.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/lake"
)

// stackHint tells a person how to get the real services.
const stackHint = "start them with `scripts/stack up` and `eval \"$(scripts/stack env)\"`"

// RequireReal reports whether PINPIPE_REQUIRE_REAL=1: every dependency must
// then be the real service.
func RequireReal() bool { return os.Getenv("PINPIPE_REQUIRE_REAL") == "1" }

// real returns the environment variable's value; it fails the test when the
// value is empty and real services are required.
func real(t testing.TB, env, service string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" && RequireReal() {
		t.Fatalf("PINPIPE_REQUIRE_REAL=1 but %s is unset, so there is no real %s: %s", env, service, stackHint)
	}
	return v
}

// Name returns a fresh lower-case name with prefix, usable as a topic,
// bucket, keyspace or database name.
func Name(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Log returns a logger that writes to the test's log.
func Log(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Kafka returns bootstrap brokers and a new topic with broker.Partitions
// partitions: on the real cluster when PINPIPE_KAFKA_BROKERS is set, else on
// an embedded broker that stops when the test ends.
func Kafka(t testing.TB) (brokers []string, topic string) {
	t.Helper()
	topic = Name("pins-")
	if v := real(t, "PINPIPE_KAFKA_BROKERS", "Kafka"); v != "" {
		brokers = strings.Split(v, ",")
	} else {
		b, err := broker.Start(t.TempDir(), "127.0.0.1:0", topic, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		brokers = b.Addrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broker.EnsureTopic(ctx, brokers, topic, broker.Partitions); err != nil {
		t.Fatalf("Kafka at %v: %v", brokers, err)
	}
	return brokers, topic
}

// S3 returns options for a new bucket: on the real S3 server when
// PINPIPE_S3_ENDPOINT is set, else on an embedded server that stops when the
// test ends.
func S3(t testing.TB) lake.Options {
	t.Helper()
	o := lake.Options{Bucket: Name("t-"), Region: "us-east-1"}
	if v := real(t, "PINPIPE_S3_ENDPOINT", "S3"); v != "" {
		o.Endpoint, o.AccessKey, o.SecretKey = v, os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if r := os.Getenv("AWS_REGION"); r != "" {
			o.Region = r
		}
		return o
	}
	e, err := lake.StartEmbedded(t.TempDir(), "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	o.Endpoint, o.AccessKey, o.SecretKey = e.Endpoint, lake.EmbeddedKey, lake.EmbeddedSecret
	return o
}

// Cassandra returns the real Cassandra hosts and a fresh keyspace name, or
// nil hosts (the embedded stand-in) when PINPIPE_CASSANDRA_HOSTS is unset.
// The caller's store creates the keyspace. It is dropped when the test
// passes, and kept when it fails so its data can be inspected: every
// keyspace left behind makes each later schema change of the node slower,
// and a suite creates hundreds.
func Cassandra(t testing.TB) (hosts []string, keyspace string) {
	t.Helper()
	keyspace = strings.ReplaceAll(Name("t_"), "-", "_")
	if v := real(t, "PINPIPE_CASSANDRA_HOSTS", "Cassandra"); v != "" {
		hosts = strings.Split(v, ",")
		t.Cleanup(func() {
			if !t.Failed() {
				DropKeyspace(hosts, keyspace)
			}
		})
	}
	return hosts, keyspace
}

// DropKeyspace drops keyspace on the Cassandra at hosts, best effort: a
// keyspace that stays only costs the node some schema.
func DropKeyspace(hosts []string, keyspace string) {
	c := gocql.NewCluster(hosts...)
	c.Timeout, c.ConnectTimeout = 30*time.Second, 10*time.Second
	s, err := c.CreateSession()
	if err != nil {
		return
	}
	defer s.Close()
	_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
}

// Postgres returns the URL of a new, empty database on the real Postgres,
// dropped when the test ends, or "" (the embedded stand-in) when
// PINPIPE_POSTGRES_URL is unset.
func Postgres(t testing.TB) string {
	t.Helper()
	base := real(t, "PINPIPE_POSTGRES_URL", "Postgres")
	if base == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("Postgres at PINPIPE_POSTGRES_URL: %v", err)
	}
	defer conn.Close(ctx)
	db := Name("t_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("Postgres: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PINPIPE_POSTGRES_URL: %v", err)
	}
	// Only the path names the database ("/pinpipe" also starts the user
	// part of postgres://pinpipe:…).
	u.Path = "/" + db
	return u.String()
}

// Config returns a whole pinpipe configuration for one test: its own data
// directory, a free loopback port, and each dependency from the functions
// above (a real Kafka topic is shared by nothing else; consumer groups get a
// fresh prefix). Short landing and stream intervals keep tests quick.
func Config(t testing.TB) *config.Config {
	t.Helper()
	brokers, topic := Kafka(t)
	s3 := S3(t)
	hosts, keyspace := Cassandra(t)
	c := &config.Config{
		Addr:               "127.0.0.1:0",
		DataDir:            t.TempDir(),
		KafkaBrokers:       brokers,
		Topic:              topic,
		GroupPrefix:        Name("pinpipe-"),
		S3Endpoint:         s3.Endpoint,
		S3Bucket:           s3.Bucket,
		AWSAccessKeyID:     s3.AccessKey,
		AWSSecretKey:       s3.SecretKey,
		AWSRegion:          s3.Region,
		CassandraHosts:     hosts,
		CassandraKeyspace:  keyspace,
		PostgresURL:        Postgres(t),
		BatchCron:          "0 8 * * *",
		LandingMaxRecords:  10000,
		LandingInterval:    time.Second,
		StreamMaxRecords:   5000,
		StreamInterval:     50 * time.Millisecond,
		MaxBodyBytes:       16 << 20,
		QueryTimeout:       10 * time.Second,
		QueryMemoryLimit:   "1GB",
		QueryThreads:       2,
		QueryMaxConcurrent: 4,
		MirrorMaxBytes:     1 << 30,
		MirrorStaleness:    100 * time.Millisecond,
		LogLevel:           "info",
	}
	return c
}

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with what cond last said. It awaits a condition; it
// asserts no timing.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ReadTopic returns every record of topic, reading each partition with an
// independent kafka-go reader from its first offset to its end offset at the
// time of the call.
func ReadTopic(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	parts, err := broker.TopicPartitions(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("kafka: dial leader of %s/%d: %v", topic, p, err)
		}
		first, last, err := conn.ReadOffsets()
		_ = conn.Close()
		if err != nil {
			t.Fatalf("kafka: offsets of %s/%d: %v", topic, p, err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("kafka: read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

// ProduceStamped produces one pin per id to topic, stamped at, with acks=all,
// keyed by the id as the ingest keys them, in category "late" with title
// title: how a pin accepted on one day reaches the topic after that day's
// run (POST /pins stamps pins now).
func ProduceStamped(t testing.TB, brokers []string, topic string, at time.Time, title string, ids ...string) {
	t.Helper()
	tr := &kafka.Transport{} // not the shared default, which caches a shared broker's metadata
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Transport: tr}
	defer w.Close()
	msgs := make([]kafka.Message, len(ids))
	for i, id := range ids {
		v := fmt.Sprintf(`{"index":%d,"unique_id":%q,"category":"late","title":%q}`, i, id, title)
		msgs[i] = kafka.Message{Key: []byte(id), Value: []byte(v), Time: at}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	Must(t, w.WriteMessages(ctx, msgs...))
}
