//go:build cluster

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/internal/instance"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/synth"
)

const (
	// partitions of the suite's topic: enough that both lane instances
	// own several.
	partitions = 6
	// drain is each instance's PINPIPE_SHUTDOWN_DRAIN.
	drain = 2 * time.Second
	// stopTimeout bounds a SIGTERM stop: the drain, then the lanes' last
	// batches.
	stopTimeout = drain + 45*time.Second
)

// cluster is the suite's three pinpipes and what they share.
type cluster struct {
	t     *testing.T
	cfg   *config.Config
	lake  *lake.Store
	raw   *rawZone
	stack string // scripts/stack
	procs []*instance.Process
	a, b  *instance.Process // api,query and api,landing,stream,batch
	c     *instance.Process // landing,stream,batch
}

// TestThreePinpipesLoseAndDoubleNothingThroughKillsABrokerLossAndRestarts
// runs three pinpipes with different roles on one replicated topic, bucket,
// keyspace and database — A: api,query; B: api,landing,stream,batch; C:
// landing,stream,batch — while a client that fails over between A and B
// posts pins without pause. Meanwhile it kills C with SIGKILL (its
// partitions move to B) and starts it again, kills the Kafka broker leading
// a partition with SIGKILL and starts it again, then restarts A, B and C one
// by one with SIGTERM. The schedule fires every minute, for yesterday, whose
// pins the suite writes to the topic itself.
//
// Afterwards: the raw zone is the topic, every partition/offset once; every
// accepted pin is in Postgres once; after a run of each day, in the curated
// zone and Cassandra once; every firing of the schedule was run by exactly
// one instance; and the client saw no answer but 202 while one broker was
// down (two replicas stay in sync, min.insync.replicas=2) and while
// instances restarted.
//
// It needs the real stack with three or more brokers (scripts/stack up
// --kafka-brokers 3) and PINPIPE_REQUIRE_REAL=1, and runs with -tags
// cluster, as it stops a broker of the shared stack for a while.
func TestThreePinpipesLoseAndDoubleNothingThroughKillsABrokerLossAndRestarts(t *testing.T) {
	c := setup(t)
	yesterday := c.writeYesterday(40)

	// A first: it creates the keyspace's tables. Three first starts at once
	// make three concurrent schema changes, which a busy Cassandra may not
	// answer within the driver's timeout; pinpipe then exits (an
	// orchestrator would start it again).
	testenv.Must(t, c.a.Start())
	c.awaitReady(c.a)
	testenv.Must(t, c.b.Start())
	testenv.Must(t, c.c.Start())
	c.awaitReady(c.b, c.c)
	// The window in which every firing of the schedule must be run once
	// opens once yesterday's pins are landed: before, a firing finds no
	// raw zone for yesterday and records nothing, by design.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		keys, _ := c.raw.keys(t)
		n, one := missing(yesterday, keys)
		return n == 0, fmt.Sprintf("%d of yesterday's %d pins not landed (one: %s)", n, len(yesterday), one)
	})
	windowOpen := time.Now()

	post := newPoster([]string{c.a.URL(), c.b.URL()})
	stop := make(chan struct{})
	var posting sync.WaitGroup
	posting.Add(1)
	go func() { defer posting.Done(); post.run(stop, 2, 10, uint64(time.Now().UnixNano()), 2*time.Minute) }()
	stopPosting := sync.OnceFunc(func() { close(stop); posting.Wait() })
	t.Cleanup(stopPosting)

	post.setPhase("steady")
	c.awaitAccepted(post, 500)
	// C must own partitions of both groups before it is killed.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		m := metrics(c.c.URL())
		return m["pinpipe_batch_landing_records_total"] > 0 && m["pinpipe_stream_pins_total"] > 0,
			fmt.Sprintf("C landed %v and streamed %v records", m["pinpipe_batch_landing_records_total"], m["pinpipe_stream_pins_total"])
	})

	// Kill C: B's landing and stream consumers must take its partitions.
	post.setPhase("lane-kill")
	killedAt := time.Now()
	testenv.Must(t, c.c.Kill())
	t.Logf("killed C (SIGKILL) with %d pins accepted", post.count())
	before := post.snapshot()
	c.awaitLanded(before, 2*time.Minute, "after C was killed")
	c.awaitStreamed(before, 2*time.Minute, "after C was killed")
	testenv.Must(t, c.c.Start())
	c.awaitReady(c.c)
	restartedAt := time.Now()
	c.awaitAccepted(post, post.count()+200)

	// Kill the broker leading partition 0 of the topic, and bring it back.
	post.setPhase("broker-kill")
	node := c.leader(0)
	c.killBroker(node)
	c.awaitAccepted(post, post.count()+300)
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		l := c.leader(0)
		return l != node, fmt.Sprintf("partition 0 is still led by broker %d", l)
	})
	c.startBroker(node)
	c.awaitAccepted(post, post.count()+300)
	if bad := post.answersIn("broker-kill"); len(bad) > 0 {
		t.Errorf("with one broker of three down (two replicas in sync, min.insync.replicas=2) the client got %d non-2xx answers:\n%s", len(bad), list(bad))
	}

	// Restart every instance one by one with SIGTERM.
	post.setPhase("rolling")
	for _, p := range c.procs {
		n := post.count()
		if err := p.Stop(stopTimeout); err != nil {
			t.Errorf("SIGTERM %s: %v; its log ends:\n%s", p.Name(), err, instance.Tail(c.logOf(p), 30))
		}
		testenv.Must(t, p.Start())
		c.awaitReady(p)
		c.awaitAccepted(post, n+200)
	}
	if bad := post.answersIn("rolling"); len(bad) > 0 {
		t.Errorf("while the instances restarted one by one, the failing-over client got %d non-2xx answers:\n%s", len(bad), list(bad))
	}
	post.setPhase("end")
	stopPosting()
	for _, l := range post.lost {
		t.Errorf("given up: %s", l)
	}
	if bad := post.answers; len(bad) > 0 {
		t.Logf("non-2xx answers in all (%d failovers on connection errors):\n%s", len(post.failovers), list(bad))
	}
	accepted := post.snapshot()
	for id, n := range post.accepted {
		if n != 1 {
			t.Fatalf("pin %s was accepted %d times: the client posts each pin until its first 202", id, n)
		}
	}
	t.Logf("accepted %d pins through A and B, plus %d of yesterday written to the topic directly; %d failovers",
		len(accepted), len(yesterday), len(post.failovers))
	all := maps(accepted, yesterday)

	c.checkRawZoneIsTheTopic(all)
	c.awaitStreamed(all, 3*time.Minute, "at the end")
	if msg := sameOnce(all, postgresIDs(t, c.cfg.PostgresURL)); msg != "" {
		t.Errorf("postgres: %s", msg)
	}

	// A run of each day the client's pins fell on (today, or two days
	// around midnight), on B; yesterday's pins are the schedule's.
	for _, dt := range c.days(accepted) {
		c.runDay(dt)
	}
	// The check below needs two firings of the every-minute schedule in
	// the window, however quickly the rest went: keep the instances up
	// until the second firing's run is recorded.
	c.awaitFiring(windowOpen.UTC().Truncate(time.Minute).Add(2*time.Minute), 3*time.Minute)
	windowClose := time.Now()
	for _, p := range c.procs {
		if err := p.Stop(stopTimeout); err != nil {
			t.Errorf("SIGTERM %s at the end: %v", p.Name(), err)
		}
	}
	if msg := sameOnce(all, curatedIDs(t, c.lake)); msg != "" {
		t.Errorf("curated zone: %s", msg)
	}
	if msg := sameOnce(all, cassandraIDs(t, c.cfg.CassandraHosts, c.cfg.CassandraKeyspace)); msg != "" {
		t.Errorf("cassandra: %s", msg)
	}
	c.checkOneRunPerFiring(windowOpen, windowClose, killedAt, restartedAt)
}

// setup builds pinpipe, makes the suite's topic, bucket, keyspace and
// database, and returns the three instances, not started yet. It skips the
// test unless the real stack with three or more brokers is there.
func setup(t *testing.T) *cluster {
	if !testenv.RequireReal() {
		t.Skip("the cluster suite runs on the real stack only: scripts/stack up --kafka-brokers 3, eval \"$(scripts/stack env)\", PINPIPE_REQUIRE_REAL=1")
	}
	if n := len(strings.Split(os.Getenv("PINPIPE_KAFKA_BROKERS"), ",")); n < 3 {
		t.Skipf("the cluster suite needs three or more Kafka brokers (scripts/stack up --kafka-brokers 3); PINPIPE_KAFKA_BROKERS names %d", n)
	}
	stack, err := filepath.Abs(filepath.Join("..", "scripts", "stack"))
	testenv.Must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := instance.Build(ctx, t.TempDir())
	testenv.Must(t, err)

	cfg := testenv.Config(t)
	// A topic of the suite's own, made as pinpipe makes it: 3 replicas.
	cfg.Topic, cfg.TopicPartitions, cfg.TopicReplication = testenv.Name("cluster-"), partitions, 3
	testenv.Must(t, broker.Ensure(ctx, cfg.KafkaBrokers, broker.Topic{Name: cfg.Topic, Partitions: partitions, Replication: 3}, testenv.Log(t)))
	cfg.BatchCron = "* * * * *"
	cfg.ShutdownDrain = drain
	cfg.LogLevel = "info"
	store, err := lake.Open(ctx, lake.Options{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.AWSRegion,
		AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey})
	testenv.Must(t, err)

	c := &cluster{t: t, cfg: cfg, lake: store, raw: &rawZone{lake: store, loaded: map[string][]batch.RawRecord{}}, stack: stack}
	logs := t.TempDir()
	for _, spec := range []struct {
		name  string
		roles config.Roles
	}{
		{"A", config.Roles{config.RoleAPI, config.RoleQuery}},
		{"B", config.Roles{config.RoleAPI, config.RoleLanding, config.RoleStream, config.RoleBatch}},
		{"C", config.Roles{config.RoleLanding, config.RoleStream, config.RoleBatch}},
	} {
		addr, err := instance.FreeAddr()
		testenv.Must(t, err)
		one := *cfg
		one.Addr, one.DataDir, one.Roles = addr, t.TempDir(), spec.roles
		p := instance.New(instance.Options{Name: spec.name, Bin: bin, Addr: addr, Env: instance.Env(&one),
			Log: filepath.Join(logs, spec.name+".log")})
		c.procs = append(c.procs, p)
	}
	c.a, c.b, c.c = c.procs[0], c.procs[1], c.procs[2]
	t.Cleanup(func() {
		for _, p := range c.procs {
			_ = p.Kill()
			if t.Failed() {
				t.Logf("----- the end of %s's log -----\n%s", p.Name(), instance.Tail(c.logOf(p), 80))
			}
		}
	})
	return c
}

func (c *cluster) logOf(p *instance.Process) string { return p.LogFile() }

// writeYesterday writes n pins to the topic stamped 24 hours ago, as if
// accepted yesterday, for the schedule's runs, and returns their
// unique_ids.
func (c *cluster) writeYesterday(n int) map[string]bool {
	t := c.t
	w := &kafka.Writer{Addr: kafka.TCP(c.cfg.KafkaBrokers...), Topic: c.cfg.Topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		// Its own transport: the shared one may have cached metadata from
		// before the topic existed.
		Transport: &kafka.Transport{MetadataTopics: []string{c.cfg.Topic}}}
	defer w.Close()
	g := synth.New(uint64(time.Now().UnixNano()) ^ 0x5eed)
	at := time.Now().Add(-24 * time.Hour)
	ids := map[string]bool{}
	var msgs []kafka.Message
	for range n {
		p := g.Next()
		id := strings.ToLower(p["unique_id"].(string))
		v, _ := json.Marshal(p)
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v, Time: at})
		ids[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testenv.Must(t, w.WriteMessages(ctx, msgs...))
	return ids
}

func (c *cluster) awaitReady(ps ...*instance.Process) {
	c.t.Helper()
	for _, p := range ps {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		err := p.WaitReady(ctx)
		cancel()
		testenv.Must(c.t, err)
	}
}

// awaitAccepted waits until the client has n pins accepted.
func (c *cluster) awaitAccepted(post *poster, n int) {
	c.t.Helper()
	testenv.Eventually(c.t, 3*time.Minute, func() (bool, string) {
		got := post.count()
		return got >= n, fmt.Sprintf("%d pins accepted, waiting for %d", got, n)
	})
}

// awaitLanded waits until the raw zone holds every pin of ids.
func (c *cluster) awaitLanded(ids map[string]bool, timeout time.Duration, when string) {
	c.t.Helper()
	testenv.Eventually(c.t, timeout, func() (bool, string) {
		keys, _ := c.raw.keys(c.t)
		n, one := missing(ids, keys)
		return n == 0, fmt.Sprintf("%s: %d of %d accepted pins not in the raw zone (one: %s)", when, n, len(ids), one)
	})
}

// awaitStreamed waits until Postgres holds every pin of ids.
func (c *cluster) awaitStreamed(ids map[string]bool, timeout time.Duration, when string) {
	c.t.Helper()
	testenv.Eventually(c.t, timeout, func() (bool, string) {
		n, one := missing(ids, postgresIDs(c.t, c.cfg.PostgresURL))
		return n == 0, fmt.Sprintf("%s: %d of %d accepted pins not in postgres (one: %s)", when, n, len(ids), one)
	})
}

// checkRawZoneIsTheTopic waits until the raw zone holds every record of
// the topic, and checks it holds each partition/offset once with the
// topic's key and value there, and that the topic holds every accepted pin
// and no other. A key twice in the topic is a producer retry (docs/kafka.md);
// it is logged, and both copies must be in the raw zone.
func (c *cluster) checkRawZoneIsTheTopic(accepted map[string]bool) {
	t := c.t
	topic := testenv.ReadTopic(t, c.cfg.KafkaBrokers, c.cfg.Topic)
	want := map[string]kafka.Message{}
	keys := map[string]int{}
	for _, m := range topic {
		want[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = m
		keys[string(m.Key)]++
	}
	if msg := sameOnceOrRetried(accepted, keys); msg != "" {
		t.Errorf("topic: %s", msg)
	}
	var recs []batch.RawRecord
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		_, n := c.raw.keys(t) // fails at once on a partition/offset twice
		recs = c.raw.records(t)
		return n >= len(topic), fmt.Sprintf("the raw zone holds %d records, the topic %d", n, len(topic))
	})
	for _, r := range recs {
		po := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
		m, ok := want[po]
		switch {
		case !ok:
			t.Errorf("the raw zone holds %s, which the topic does not", po)
		case string(m.Key) != r.Key || string(m.Value) != r.Value:
			t.Errorf("the raw zone's %s is key %s, the topic's %s", po, r.Key, m.Key)
		}
	}
	if len(recs) != len(topic) {
		t.Errorf("the raw zone holds %d records, the topic %d", len(recs), len(topic))
	}
	retried := 0
	for _, n := range keys {
		retried += n - 1
	}
	t.Logf("raw zone = topic: %d records at %d partition/offsets; %d extra copies from producer retries", len(recs), len(want), retried)
}

// sameOnceOrRetried is sameOnce for the topic, where a producer retry may
// have written a pin twice.
func sameOnceOrRetried(want map[string]bool, got map[string]int) string {
	once := make(map[string]int, len(got))
	for id := range got {
		once[id] = 1
	}
	return sameOnce(want, once)
}

// days returns the days (UTC) of the raw zone's records of ids.
func (c *cluster) days(ids map[string]bool) []string {
	set := map[string]bool{}
	for _, r := range c.raw.records(c.t) {
		if ids[r.Key] {
			set[r.Timestamp.UTC().Format(time.DateOnly)] = true
		}
	}
	var out []string
	for d := range set {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// runDay runs the daily job for dt on B and waits for it to succeed.
func (c *cluster) runDay(dt string) {
	t := c.t
	var id string
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		resp, err := http.Post(c.b.URL()+"/batch/runs", "application/json", strings.NewReader(`{"date":"`+dt+`"}`))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode == http.StatusConflict {
			return false, fmt.Sprintf("a run of %s is under way: %v", dt, out["detail"])
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /batch/runs %s: %s %v", dt, resp.Status, out)
		}
		id, _ = out["id"].(string)
		return true, ""
	})
	var run batch.Run
	testenv.Eventually(t, 3*time.Minute, func() (bool, string) {
		resp, err := http.Get(c.b.URL() + "/batch/runs/" + id)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&run)
		return run.Status == batch.StatusSucceeded || run.Status == batch.StatusFailed, "run " + id + " is " + run.Status
	})
	if run.Status != batch.StatusSucceeded {
		t.Fatalf("the run of %s failed: %s", dt, run.Error)
	}
	t.Logf("run %s of %s: %d rows in, %d out", id, dt, run.RowsIn, run.RowsOut)
}

// checkOneRunPerFiring reads the run history and checks that each firing
// of the every-minute schedule between open and close was run by exactly
// one instance. A firing while C was killed may have no run: C may have
// claimed it and died before recording it. A scheduled run may fail only
// by being interrupted (an instance stopping under it), never because
// another instance ran the same firing.
func (c *cluster) checkOneRunPerFiring(open, close, killed, restarted time.Time) {
	t := c.t
	s := c.runStore()
	defer s.Close()
	byMinute, err := scheduledRuns(s)
	testenv.Must(t, err)
	for _, runs := range byMinute {
		for _, r := range runs {
			if r.Status == batch.StatusFailed && !strings.Contains(r.Error, "interrupted") {
				t.Errorf("scheduled run %s of %s failed: %s", r.ID, r.Date, r.Error)
			}
		}
	}
	firings := 0
	for m := open.UTC().Truncate(time.Minute).Add(time.Minute); m.Before(close); m = m.Add(time.Minute) {
		firings++
		got := byMinute[m]
		mayMiss := !m.Before(killed.UTC().Truncate(time.Minute)) && !m.After(restarted)
		switch {
		case len(got) > 1:
			t.Errorf("the firing at %s was run %d times: %v", m.Format("15:04"), len(got), ids(got))
		case len(got) == 0 && !mayMiss:
			t.Errorf("the firing at %s was run by no instance", m.Format("15:04"))
		}
	}
	if firings < 2 {
		t.Errorf("only %d firings of the schedule fell within the suite; it checks nothing", firings)
	}
	t.Logf("%d firings of the schedule, %d scheduled runs recorded", firings, countRuns(byMinute))
}

// runStore opens the suite's Cassandra keyspace, where the run history is.
func (c *cluster) runStore() *cassandra.Store {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cassandra.Open(ctx, cassandra.Options{Hosts: c.cfg.CassandraHosts, Keyspace: c.cfg.CassandraKeyspace, Log: testenv.Log(c.t)})
	testenv.Must(c.t, err)
	return s
}

// scheduledRuns reads the run history in s: the schedule's runs by the
// minute of their firing (a run's ID starts with its start time).
func scheduledRuns(s *cassandra.Store) (map[time.Time][]batch.Run, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs, err := s.Runs(ctx, 1000)
	if err != nil {
		return nil, err
	}
	byMinute := map[time.Time][]batch.Run{}
	for _, r := range runs {
		if r.Trigger != batch.TriggerSchedule {
			continue
		}
		at, err := time.Parse("20060102T150405", r.ID[:15])
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
		byMinute[at.Truncate(time.Minute)] = append(byMinute[at.Truncate(time.Minute)], r)
	}
	return byMinute, nil
}

// awaitFiring waits until a run of the schedule's firing at minute m is
// recorded.
func (c *cluster) awaitFiring(m time.Time, timeout time.Duration) {
	s := c.runStore()
	defer s.Close()
	var asked time.Time
	testenv.Eventually(c.t, timeout, func() (bool, string) {
		if time.Now().Before(m) || time.Since(asked) < time.Second {
			return false, "no run of the firing at " + m.Format("15:04") + " yet"
		}
		asked = time.Now()
		byMinute, err := scheduledRuns(s)
		if err != nil {
			return false, err.Error()
		}
		return len(byMinute[m]) > 0, "no run of the firing at " + m.Format("15:04") + " recorded"
	})
}

func ids(runs []batch.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID+" "+r.Status)
	}
	return out
}

func countRuns(m map[time.Time][]batch.Run) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// leader returns the node ID of the broker leading partition p of the
// topic (scripts/stack numbers broker N's node N).
func (c *cluster) leader(p int) int {
	c.t.Helper()
	for _, b := range c.cfg.KafkaBrokers {
		conn, err := kafka.Dial("tcp", b)
		if err != nil {
			continue
		}
		ps, err := conn.ReadPartitions(c.cfg.Topic)
		_ = conn.Close()
		if err != nil {
			continue
		}
		for _, part := range ps {
			if part.ID == p {
				return part.Leader.ID
			}
		}
	}
	c.t.Fatalf("no broker of %v knows the leader of partition %d", c.cfg.KafkaBrokers, p)
	return 0
}

// killBroker kills broker node with SIGKILL through scripts/stack, and
// makes sure it is started again when the test ends.
func (c *cluster) killBroker(node int) {
	c.t.Helper()
	c.t.Cleanup(func() { _ = c.stackRun("kafka-start", strconv.Itoa(node)) })
	testenv.Must(c.t, c.stackRun("kafka-stop", strconv.Itoa(node), "--kill"))
}

// startBroker starts broker node again; scripts/stack returns once every
// replica is back in sync.
func (c *cluster) startBroker(node int) {
	c.t.Helper()
	testenv.Must(c.t, c.stackRun("kafka-start", strconv.Itoa(node)))
}

// stackRun runs scripts/stack with args, on the stack PINPIPE_STACK_DIR
// names (the repository's .stack when unset).
func (c *cluster) stackRun(args ...string) error {
	cmd := exec.Command(c.stack, args...)
	out, err := cmd.CombinedOutput()
	c.t.Logf("scripts/stack %s:\n%s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("scripts/stack %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// metrics returns the unlabelled samples of an instance's /metrics, summed
// by name; empty when it does not answer.
func metrics(base string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			out[name] += v
		}
	}
	return out
}

func maps(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func list(as []answer) string {
	var lines []string
	for _, a := range as[:min(20, len(as))] {
		lines = append(lines, "  "+a.String())
	}
	if len(as) > 20 {
		lines = append(lines, fmt.Sprintf("  … and %d more", len(as)-20))
	}
	return strings.Join(lines, "\n")
}
