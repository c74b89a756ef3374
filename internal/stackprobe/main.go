// Command stackprobe tells whether one service of the local test stack (scripts/stack) is really ready:
// it does real work with the same client library pinpipe uses, not just a port check.
//
//	go run ./internal/stackprobe [-timeout 180s] [-once] SERVICE [ADDRESS]
//
// Services and what "ready" means:
//
//	kafka             every broker of ADDRESS (comma-separated) registered; topic _stackprobe (one partition per
//	                  broker, min(3, brokers) replicas) with every replica in sync; one record per partition
//	                  produced with acks=all and read back in a consumer group
//	cassandra         SELECT release_version FROM system.local, then CREATE KEYSPACE/TABLE, write and read a row
//	postgres          SELECT version() (ADDRESS is a postgres:// URL)
//	s3                create the bucket if missing, list buckets, put/get/delete one object (path-style)
//	prometheus        GET /-/ready, version from /api/v1/status/buildinfo
//	postgres-exporter GET /metrics shows pg_up 1
//	jmx-exporter      GET /metrics shows a Cassandra MBean metric
//
// Without ADDRESS each service uses the stack's fixed loopback address (and the PINPIPE_* environment when set).
// It retries until -timeout, printing progress to stderr every 10 s. On success it prints the service's version
// on stdout and exits 0; on timeout it prints the last error and exits 1.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
)

type probeFunc func(ctx context.Context, addr string) (version string, err error)

type service struct {
	defaultAddr func() string
	probe       probeFunc
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var services = map[string]service{
	"kafka": {func() string { return env("PINPIPE_KAFKA_BROKERS", "127.0.0.1:19092") }, probeKafka},
	"cassandra": {func() string {
		return strings.Split(env("PINPIPE_CASSANDRA_HOSTS", "127.0.0.1:19042"), ",")[0]
	}, probeCassandra},
	"postgres": {func() string {
		return env("PINPIPE_POSTGRES_URL", "postgres://pinpipe:pinpipe@127.0.0.1:15432/pinpipe?sslmode=disable")
	}, probePostgres},
	"s3":                {func() string { return env("PINPIPE_S3_ENDPOINT", "http://127.0.0.1:17070") }, probeS3},
	"prometheus":        {func() string { return env("PINPIPE_PROMETHEUS_URL", "http://127.0.0.1:19090") }, probePrometheus},
	"postgres-exporter": {func() string { return "http://127.0.0.1:19187" }, probePostgresExporter},
	"jmx-exporter":      {func() string { return "http://127.0.0.1:19404" }, probeJMXExporter},
}

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	once := flag.Bool("once", false, "try once, no retries (for status checks)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: stackprobe [-timeout D] [-once] kafka|cassandra|postgres|s3|prometheus|postgres-exporter|jmx-exporter [ADDRESS]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	name := flag.Arg(0)
	svc, ok := services[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "stackprobe: unknown service %q\n", name)
		flag.Usage()
		os.Exit(2)
	}
	addr := svc.defaultAddr()
	if flag.NArg() == 2 {
		addr = flag.Arg(1)
	}

	start := time.Now()
	deadline := start.Add(*timeout)
	lastReport := start
	var lastErr error
	for attempt := 1; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		// One attempt may not take the whole budget: a hung connect must not hide later successes.
		perTry := min(remaining, 30*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), perTry)
		version, err := svc.probe(ctx, addr)
		cancel()
		if err == nil {
			fmt.Println(version)
			fmt.Fprintf(os.Stderr, "stackprobe: %s at %s ready after %.1fs (%d attempts)\n", name, addr, time.Since(start).Seconds(), attempt)
			return
		}
		lastErr = err
		if *once {
			break
		}
		if time.Since(lastReport) >= 10*time.Second {
			fmt.Fprintf(os.Stderr, "stackprobe: %s not ready after %.0fs: %v\n", name, time.Since(start).Seconds(), firstLine(err))
			lastReport = time.Now()
		}
		time.Sleep(min(time.Second, max(0, time.Until(deadline))))
	}
	fmt.Fprintf(os.Stderr, "stackprobe: %s at %s NOT ready after %.1fs: %v\n", name, addr, time.Since(start).Seconds(), lastErr)
	os.Exit(1)
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// probeKafka checks what pinpipe needs of the cluster whose bootstrap addresses are addrs (comma-separated):
// every one of them is a registered broker, a topic replicated like pinpipe's (min(3, brokers) replicas) has a
// leader and every replica in sync on each partition, an acks=all produce to every partition succeeds, and a
// consumer group reads it back (which also makes the cluster create __consumer_offsets, the slowest part of a
// fresh cluster's start). The version string says how many brokers and what min.insync.replicas the topic has.
func probeKafka(ctx context.Context, addrs string) (string, error) {
	const topic = "_stackprobe"
	want := strings.Split(addrs, ",")
	conn, err := kafka.DialContext(ctx, "tcp", want[0])
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	versions, err := conn.ApiVersions()
	if err != nil {
		return "", fmt.Errorf("api versions: %w", err)
	}
	brokers, err := conn.Brokers()
	if err != nil {
		return "", fmt.Errorf("list brokers: %w", err)
	}
	registered := map[string]bool{}
	for _, b := range brokers {
		registered[net.JoinHostPort(b.Host, strconv.Itoa(b.Port))] = true
	}
	for _, a := range want {
		if !registered[a] {
			return "", fmt.Errorf("broker %s is not registered in the cluster yet (%d of %d brokers are)", a, len(brokers), len(want))
		}
	}
	replicas := min(3, len(brokers))
	controller, err := conn.Controller()
	if err != nil {
		return "", fmt.Errorf("find controller: %w", err)
	}
	cconn, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return "", fmt.Errorf("dial controller: %w", err)
	}
	defer cconn.Close()
	err = cconn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: len(brokers), ReplicationFactor: replicas})
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return "", fmt.Errorf("create topic: %w", err)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return "", fmt.Errorf("partitions of %s: %w", topic, err)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("topic %s has no partitions yet", topic)
	}
	for _, p := range parts {
		if p.Leader.Host == "" {
			return "", fmt.Errorf("partition %d of %s has no leader yet", p.ID, topic)
		}
		if len(p.Isr) < len(p.Replicas) {
			return "", fmt.Errorf("partition %d of %s has %d of its %d replicas in sync", p.ID, topic, len(p.Isr), len(p.Replicas))
		}
	}
	minISR := "?"
	cl := &kafka.Client{Addr: kafka.TCP(want...), Timeout: 10 * time.Second}
	res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"min.insync.replicas"},
	}}})
	if err != nil {
		return "", fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			minISR = e.ConfigValue
		}
	}

	// One record per partition (round robin), each of which must come back.
	stamp := time.Now().UnixNano()
	msgs := make([]kafka.Message, len(parts))
	pending := map[string]bool{}
	for i := range msgs {
		v := fmt.Sprintf("probe-%d-%d", stamp, i)
		msgs[i] = kafka.Message{Value: []byte(v)}
		pending[v] = true
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(want...), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{},
		BatchTimeout: 10 * time.Millisecond, MaxAttempts: 1,
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return "", fmt.Errorf("produce with acks=all: %w", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: want, Topic: topic, GroupID: "_stackprobe",
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
	})
	defer r.Close()
	for len(pending) > 0 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return "", fmt.Errorf("consume in a group (%d of %d records not read back): %w", len(pending), len(msgs), err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return "", fmt.Errorf("commit offset: %w", err)
		}
		delete(pending, string(m.Value))
	}
	maxProduce := 0
	for _, v := range versions {
		if v.ApiKey == 0 {
			maxProduce = int(v.MaxVersion)
		}
	}
	return fmt.Sprintf("%d broker(s), %s: %d partitions × %d replicas in sync, min.insync.replicas=%s; "+
		"acks=all produce + group consume ok (Produce up to v%d, %d APIs)",
		len(brokers), topic, len(parts), len(parts[0].Replicas), minISR, maxProduce, len(versions)), nil
}

// probeCassandra reads the server version, then checks that schema changes work, which is what tests do first
// (a node can answer system.local before it accepts CREATE KEYSPACE).
func probeCassandra(ctx context.Context, addr string) (string, error) {
	cluster := gocql.NewCluster(addr)
	cluster.ConnectTimeout = 5 * time.Second
	cluster.Timeout = 20 * time.Second
	cluster.NumConns = 1
	cluster.DisableInitialHostLookup = true
	cluster.Logger = gocql.NewLogger(gocql.LogLevelNone)
	session, err := cluster.CreateSession()
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer session.Close()
	var version string
	if err := session.Query("SELECT release_version FROM system.local").ScanContext(ctx, &version); err != nil {
		return "", fmt.Errorf("select release_version: %w", err)
	}
	stmts := []string{
		`CREATE KEYSPACE IF NOT EXISTS stackprobe WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
		`CREATE TABLE IF NOT EXISTS stackprobe.t (k text PRIMARY KEY, v text)`,
	}
	for _, s := range stmts {
		if err := session.Query(s).ExecContext(ctx); err != nil {
			return "", fmt.Errorf("%s: %w", s[:strings.Index(s, " IF")], err)
		}
	}
	want := time.Now().UTC().Format(time.RFC3339Nano)
	if err := session.Query(`INSERT INTO stackprobe.t (k, v) VALUES ('probe', ?)`, want).Consistency(gocql.One).ExecContext(ctx); err != nil {
		return "", fmt.Errorf("insert: %w", err)
	}
	var got string
	if err := session.Query(`SELECT v FROM stackprobe.t WHERE k = 'probe'`).Consistency(gocql.One).ScanContext(ctx, &got); err != nil {
		return "", fmt.Errorf("select: %w", err)
	}
	if got != want {
		return "", fmt.Errorf("read back %q, wrote %q", got, want)
	}
	return "Cassandra " + version, nil
}

func probePostgres(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return "", fmt.Errorf("select version(): %w", err)
	}
	if i := strings.Index(version, " on "); i > 0 {
		version = version[:i]
	}
	return version, nil
}

// probeS3 uses the AWS SDK the way pinpipe does: static keys, a custom endpoint, path-style addressing.
func probeS3(ctx context.Context, endpoint string) (string, error) {
	bucket := env("PINPIPE_S3_BUCKET", "pinpipe")
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(env("AWS_REGION", "us-east-1")),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			env("AWS_ACCESS_KEY_ID", "pinpipe"), env("AWS_SECRET_ACCESS_KEY", "pinpipe-secret-key"), "")),
	)
	if err != nil {
		return "", err
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1
	})
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		if _, cerr := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); cerr != nil {
			return "", fmt.Errorf("head bucket %s: %v; create: %w", bucket, err, cerr)
		}
	}
	out, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return "", fmt.Errorf("list buckets: %w", err)
	}
	found := false
	for _, b := range out.Buckets {
		found = found || aws.ToString(b.Name) == bucket
	}
	if !found {
		return "", fmt.Errorf("bucket %s not listed", bucket)
	}
	// A put with the SDK's default (CRC32) checksum and a read back: the calls pinpipe's landing makes.
	key := "_stackprobe/probe.txt"
	body := fmt.Sprintf("probe %d", time.Now().UnixNano())
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		return "", fmt.Errorf("put object: %w", err)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", fmt.Errorf("get object: %w", err)
	}
	data, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || string(data) != body {
		return "", fmt.Errorf("get object: read %q, %v", data, err)
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		return "", fmt.Errorf("delete object: %w", err)
	}
	return fmt.Sprintf("S3 API ok (%d buckets, bucket %s)", len(out.Buckets), bucket), nil
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func probePrometheus(ctx context.Context, base string) (string, error) {
	if _, err := httpGet(ctx, base+"/-/ready"); err != nil {
		return "", err
	}
	body, err := httpGet(ctx, base+"/api/v1/status/buildinfo")
	if err != nil {
		return "", err
	}
	var info struct {
		Data struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		return "", fmt.Errorf("buildinfo: %w", err)
	}
	return "Prometheus " + info.Data.Version, nil
}

// metricLine returns the first sample line of the metric family name in a Prometheus text exposition.
func metricLine(body, name string) string {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			return line
		}
	}
	return ""
}

func probePostgresExporter(ctx context.Context, base string) (string, error) {
	body, err := httpGet(ctx, base+"/metrics")
	if err != nil {
		return "", err
	}
	up := metricLine(body, "pg_up")
	if !strings.HasSuffix(up, " 1") {
		return "", fmt.Errorf("postgres-exporter cannot reach Postgres: %q", up)
	}
	v := metricLine(body, "postgres_exporter_build_info")
	return "postgres-exporter " + labelValue(v, "version") + ", pg_up 1", nil
}

func probeJMXExporter(ctx context.Context, base string) (string, error) {
	body, err := httpGet(ctx, base+"/metrics")
	if err != nil {
		return "", err
	}
	if metricLine(body, "jvm_memory_used_bytes") == "" && metricLine(body, "jvm_memory_bytes_used") == "" {
		return "", errors.New("no JVM metrics yet")
	}
	if !strings.Contains(body, "cassandra_") {
		return "", errors.New("no cassandra_ metrics yet")
	}
	v := metricLine(body, "jmx_exporter_build_info")
	return "jmx_exporter " + labelValue(v, "version"), nil
}

func labelValue(line, label string) string {
	i := strings.Index(line, "{"+label+`="`)
	if i < 0 {
		i = strings.Index(line, ","+label+`="`)
	}
	if i < 0 {
		return "?"
	}
	rest := line[i+len(label)+3:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return "?"
}
