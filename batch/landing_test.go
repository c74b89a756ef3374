package batch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/consume"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/synth"
)

// landingEnv is one test's topic, bucket and consumer group.
type landingEnv struct {
	t       *testing.T
	brokers []string
	topic   string
	group   string
	lake    *lake.Store
	s3      lake.Options
	// landLake, when set, is the landing's own way to the bucket (through
	// a proxy the test can cut); nil: lake.
	landLake *lake.Store
	// transport is the test's own: kafka-go's shared default caches the
	// metadata of a shared real broker and then reports a topic created
	// after that as unknown.
	transport *kafka.Transport
	sent      map[string]string // unique_id → the message's bytes
	gen       *synth.Generator
}

func newLandingEnv(t *testing.T) *landingEnv {
	brokers, topic := testenv.Kafka(t)
	opts := testenv.S3(t)
	s, err := lake.Open(context.Background(), opts)
	testenv.Must(t, err)
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &landingEnv{t: t, brokers: brokers, topic: topic, group: testenv.Name("landing-"),
		lake: s, s3: opts, transport: tr, sent: map[string]string{}, gen: synth.New(7)}
}

// pins returns n synthetic pins as messages keyed by unique_id, stamped at ts
// when ts is not zero (else Kafka stamps them).
func (e *landingEnv) pins(n int, ts time.Time) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		p := e.gen.Next()
		v, err := json.Marshal(p)
		testenv.Must(e.t, err)
		msgs[i] = kafka.Message{Key: []byte(p["unique_id"].(string)), Value: v, Time: ts}
	}
	return msgs
}

// produce writes msgs with acks=all through bal (nil: hash of the key), in
// order, and remembers them.
func (e *landingEnv) produce(bal kafka.Balancer, msgs ...kafka.Message) {
	if bal == nil {
		bal = &kafka.Hash{}
	}
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, Balancer: bal,
		RequiredAcks: kafka.RequireAll, BatchSize: 500, BatchTimeout: 5 * time.Millisecond, Transport: e.transport}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Errorf("produce %d pins: %v", len(msgs), err) // Errorf: also called off the test goroutine
		return
	}
	for _, m := range msgs {
		e.sent[string(m.Key)] = string(m.Value)
	}
}

// start runs a landing until the returned stop is called; stop waits for
// RunLanding to return and fails the test unless it returned nil.
func (e *landingEnv) start(maxRecords int, interval time.Duration, reg prometheus.Registerer, hooks landingHooks) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	store := e.lake
	if e.landLake != nil {
		store = e.landLake
	}
	go func() {
		done <- runLanding(ctx, LandingOptions{Brokers: e.brokers, Topic: e.topic, Group: e.group, Lake: store,
			MaxRecords: maxRecords, Interval: interval, Log: testenv.Log(e.t), Registry: reg}, hooks)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("RunLanding returned %v on shutdown, want nil", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// awaitLanded waits until the raw zone's object names cover n distinct
// records.
func (e *landingEnv) awaitLanded(n int) {
	e.t.Helper()
	// Generous: the 25 MB object of the part-size test took over 90 s to
	// land when other suites filled both cores.
	testenv.Eventually(e.t, 4*time.Minute, func() (bool, string) {
		objs, err := RawObjects(context.Background(), e.lake, "")
		if err != nil {
			return false, err.Error()
		}
		seen := map[[2]int64]bool{}
		for _, o := range objs {
			for off := o.First; off <= o.Last; off++ {
				seen[[2]int64{int64(o.Partition), off}] = true
			}
		}
		return len(seen) >= n, fmt.Sprintf("the raw zone holds %d of %d records in %d objects", len(seen), n, len(objs))
	})
}

// assertLandedExactlyOnce reads every raw object back and checks it holds
// exactly what was produced: each record once, byte-equal, under a name that
// matches its contents. Returns the objects.
func (e *landingEnv) assertLandedExactlyOnce() []RawObject {
	e.t.Helper()
	ctx := context.Background()
	objs, err := RawObjects(ctx, e.lake, "")
	testenv.Must(e.t, err)
	at := map[[2]int64]string{} // (partition, offset) → object key
	total := 0
	for _, o := range objs {
		recs, err := LoadRaw(ctx, e.lake, o.Key)
		testenv.Must(e.t, err)
		if len(recs) == 0 {
			e.t.Fatalf("%s is empty", o.Key)
		}
		if first, last := recs[0], recs[len(recs)-1]; layout.RawKey(o.DT, int(first.Partition), first.Offset, last.Offset) != o.Key {
			e.t.Errorf("%s holds partition %d offsets %d-%d", o.Key, first.Partition, first.Offset, last.Offset)
		}
		for i, r := range recs {
			id := [2]int64{int64(r.Partition), r.Offset}
			if prev, dup := at[id]; dup {
				e.t.Errorf("partition %d offset %d is in %s and %s", r.Partition, r.Offset, prev, o.Key)
			}
			at[id] = o.Key
			if i > 0 && r.Offset <= recs[i-1].Offset {
				e.t.Errorf("%s: offset %d follows %d", o.Key, r.Offset, recs[i-1].Offset)
			}
			if int(r.Partition) != o.Partition || r.Topic != e.topic || r.Timestamp.UTC().Format(time.DateOnly) != o.DT {
				e.t.Errorf("%s holds a record of %s/%d at %s", o.Key, r.Topic, r.Partition, r.Timestamp)
			}
			if want, ok := e.sent[r.Key]; !ok || r.Value != want {
				e.t.Errorf("%s offset %d: key %q value differs from what was produced", o.Key, r.Offset, r.Key)
			}
		}
		total += len(recs)
	}
	if total != len(e.sent) || len(at) != len(e.sent) {
		e.t.Errorf("the raw zone holds %d records (%d distinct), produced %d", total, len(at), len(e.sent))
	}
	e.assertCheckpoints(objs)
	return objs
}

// assertCheckpoints checks each partition's checkpoint against the raw
// zone: Next is one past its last landed offset, Newest the latest
// timestamp landed, and nothing is pending.
func (e *landingEnv) assertCheckpoints(objs []RawObject) {
	e.t.Helper()
	ctx := context.Background()
	next, newest := map[int]int64{}, map[int]time.Time{}
	for _, o := range objs {
		next[o.Partition] = max(next[o.Partition], o.Last+1)
		recs, err := LoadRaw(ctx, e.lake, o.Key)
		testenv.Must(e.t, err)
		for _, r := range recs {
			if r.Timestamp.After(newest[o.Partition]) {
				newest[o.Partition] = r.Timestamp
			}
		}
	}
	for p, n := range next {
		cp, err := ReadCheckpoint(ctx, e.lake, e.topic, p)
		testenv.Must(e.t, err)
		if cp.Next != n || !cp.Newest.Equal(newest[p]) || len(cp.Pending) != 0 || cp.Topic != e.topic || cp.Partition != p {
			e.t.Errorf("checkpoint of partition %d: %+v; want next %d, newest %s, nothing pending", p, cp, n, newest[p])
		}
	}
}

// metric returns the sum of a gathered metric's series.
func metric(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	testenv.Must(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestLandingWritesEveryRecordOnceAcrossObjects(t *testing.T) {
	e := newLandingEnv(t)
	const n = 2500
	e.produce(nil, e.pins(n, time.Time{})...)
	reg := prometheus.NewRegistry()
	stop := e.start(1000, 200*time.Millisecond, reg, landingHooks{})
	e.awaitLanded(n)
	stop()

	objs := e.assertLandedExactlyOnce()
	if len(objs) < broker.Partitions {
		t.Errorf("%d objects for %d partitions", len(objs), broker.Partitions)
	}
	for _, o := range objs {
		if o.Last-o.First+1 > 1000 {
			t.Errorf("%s holds more than MaxRecords", o.Key)
		}
	}
	if got := metric(t, reg, "pinpipe_batch_landing_records_total"); got != n {
		t.Errorf("records_total = %v, want %d", got, n)
	}
	if got := metric(t, reg, "pinpipe_batch_landing_objects_total"); got != float64(len(objs)) {
		t.Errorf("objects_total = %v, want %d", got, len(objs))
	}
	if got := metric(t, reg, "pinpipe_batch_landing_upload_seconds"); got != float64(len(objs)) {
		t.Errorf("upload_seconds observed %v uploads, want %d", got, len(objs))
	}
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	if got := metric(t, reg, "pinpipe_batch_landing_bytes_total"); got != float64(size) {
		t.Errorf("bytes_total = %v, the objects hold %d", got, size)
	}
	if got := metric(t, reg, "pinpipe_batch_landing_lag_messages"); got != 0 {
		t.Errorf("lag = %v after landing everything", got)
	}
}

// errCrash stands for the process dying between an upload and its commit.
var errCrash = errors.New("crashed after the upload, before the commit")

func TestLandingResumesFromRawZoneAfterCrashBeforeCommit(t *testing.T) {
	e := newLandingEnv(t)
	const n = 2000
	e.produce(nil, e.pins(n, time.Time{})...)

	// The third batch is stored, then the landing dies before consume.Run
	// can commit it.
	var (
		mu      sync.Mutex
		calls   int
		crashed consume.Batch
	)
	ctx, crash := context.WithCancel(context.Background())
	defer crash()
	isCrashed := func(b consume.Batch) bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 3 && b.Partition == crashed.Partition && b.Messages[0].Offset == crashed.Messages[0].Offset
	}
	wrap := func(h consume.Handler) consume.Handler {
		return consume.HandlerFunc(func(hctx context.Context, b consume.Batch) error {
			if isCrashed(b) {
				return errCrash // the retry of the crashed batch: the process is gone
			}
			if err := h.Handle(hctx, b); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if calls++; calls == 3 {
				crashed = b
				crash()
				return errCrash
			}
			return nil
		})
	}
	stop := e.start(300, 200*time.Millisecond, nil, landingHooks{wrap: wrap})
	testenv.Eventually(t, 90*time.Second, func() (bool, string) { return ctx.Err() != nil, "no third batch was stored" })
	stop()

	// The crashed batch is in the raw zone, past the group's committed offset.
	committed := e.committed(crashed.Partition)
	if committed > crashed.Messages[0].Offset {
		t.Fatalf("partition %d committed %d, but the crashed batch starts at %d", crashed.Partition, committed, crashed.Messages[0].Offset)
	}
	objs, err := RawObjects(context.Background(), e.lake, "")
	testenv.Must(t, err)
	if !containsObject(objs, crashed.Partition, crashed.Messages[0].Offset, crashed.Last()) {
		t.Fatalf("the crashed batch %d-%d is not in the raw zone: %+v", crashed.Messages[0].Offset, crashed.Last(), objs)
	}

	stop = e.start(300, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(n)
	stop()
	e.assertLandedExactlyOnce()
}

// TestLandingResumesAfterCrashBetweenUploadAndCheckpoint: the landing dies
// after storing an object and before the checkpoint that follows it. The
// checkpoint written before the upload lists the object as pending, so the
// next landing resumes after it, even though it closes its batches at
// other offsets (a re-landed record would be in two objects).
func TestLandingResumesAfterCrashBetweenUploadAndCheckpoint(t *testing.T) {
	e := newLandingEnv(t)
	const n = 2000
	e.produce(nil, e.pins(n, time.Time{})...)

	var (
		mu      sync.Mutex
		uploads int
		crashed string // key of the object stored just before the crash
	)
	ctx, crash := context.WithCancel(context.Background())
	defer crash()
	dead := func() bool { mu.Lock(); defer mu.Unlock(); return crashed != "" }
	hooks := landingHooks{
		wrap: func(h consume.Handler) consume.Handler {
			return consume.HandlerFunc(func(hctx context.Context, b consume.Batch) error {
				if dead() {
					return errCrash // the process is gone
				}
				return h.Handle(hctx, b)
			})
		},
		afterUpload: func(key string) error {
			mu.Lock()
			defer mu.Unlock()
			if crashed != "" {
				return errCrash
			}
			if uploads++; uploads == 3 {
				crashed = key
				crash()
				return errCrash
			}
			return nil
		},
	}
	stop := e.start(300, 200*time.Millisecond, nil, hooks)
	testenv.Eventually(t, 90*time.Second, func() (bool, string) { return ctx.Err() != nil, "no third object was stored" })
	stop()

	k, ok := layout.Parse(crashed)
	if !ok || k.Kind != layout.RawPart {
		t.Fatalf("crashed after %q, not a raw part", crashed)
	}
	cp, err := ReadCheckpoint(context.Background(), e.lake, e.topic, k.Partition)
	testenv.Must(t, err)
	if cp.Next > k.First || len(cp.Pending) == 0 || cp.Pending[len(cp.Pending)-1].Key != crashed && cp.Pending[0].Key != crashed {
		t.Fatalf("checkpoint after the crash: %+v; want next ≤ %d with %s pending", cp, k.First, crashed)
	}
	if c := e.committed(k.Partition); c > k.First {
		t.Fatalf("partition %d committed %d, past the crashed object's first offset %d", k.Partition, c, k.First)
	}

	// Other batch bounds than before the crash: re-landing the crashed
	// object's records would put them in a second object.
	stop = e.start(170, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(n)
	stop()
	e.assertLandedExactlyOnce()
}

// TestLandingCheckpointsARawZoneLandedWithoutThem: a raw zone an older
// pinpipe landed has no checkpoints; the landing finds where each
// partition stands by listing it once, then goes on with checkpoints.
func TestLandingCheckpointsARawZoneLandedWithoutThem(t *testing.T) {
	e := newLandingEnv(t)
	ctx := context.Background()
	e.produce(nil, e.pins(600, time.Time{})...)
	stop := e.start(250, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(600)
	stop()
	cps, err := e.lake.List(ctx, layout.CheckpointPrefix(e.topic))
	testenv.Must(t, err)
	if len(cps) != broker.Partitions {
		t.Fatalf("%d checkpoints for %d partitions: %+v", len(cps), broker.Partitions, cps)
	}
	for _, o := range cps {
		testenv.Must(t, e.lake.Delete(ctx, o.Key))
	}

	// A new group too, so only the raw zone knows where each partition is.
	e.group = testenv.Name("landing-")
	e.produce(nil, e.pins(400, time.Time{})...)
	stop = e.start(250, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(1000)
	stop()
	e.assertLandedExactlyOnce()
}

func TestLandingResumesFromRawZoneUnderANewGroup(t *testing.T) {
	e := newLandingEnv(t)
	e.produce(nil, e.pins(600, time.Time{})...)
	stop := e.start(250, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(600)
	stop()

	// A new group has no committed offsets; the raw zone says where to go on.
	e.group = testenv.Name("landing-")
	e.produce(nil, e.pins(400, time.Time{})...)
	stop = e.start(250, 200*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(1000)
	stop()
	e.assertLandedExactlyOnce()
}

func TestLandingSplitsABatchThatSpansMidnight(t *testing.T) {
	e := newLandingEnv(t)
	// Around the last UTC midnight, so a real Kafka's retention keeps them.
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	before, after := e.pins(3, midnight.Add(-3*time.Millisecond)), e.pins(4, midnight)
	for i := range before {
		before[i].Time = before[i].Time.Add(time.Duration(i) * time.Millisecond)
		after[i].Time = after[i].Time.Add(time.Duration(i) * time.Millisecond)
	}
	toPartition0 := kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })
	e.produce(toPartition0, append(before, after...)...)

	// MaxRecords closes the batch at exactly the 7 records.
	stop := e.start(7, time.Minute, nil, landingHooks{})
	e.awaitLanded(7)
	stop()

	objs := e.assertLandedExactlyOnce()
	want := []string{
		layout.RawKey(midnight.Add(-time.Hour).Format(time.DateOnly), 0, 0, 2),
		layout.RawKey(midnight.Format(time.DateOnly), 0, 3, 6),
	}
	if len(objs) != len(want) || objs[0].Key != want[0] || objs[1].Key != want[1] {
		t.Fatalf("objects %+v, want %v", objs, want)
	}
}

func TestLandingLandsEveryRecordOnceAcrossARestart(t *testing.T) {
	e := newLandingEnv(t)
	const n, chunk = 3000, 100
	msgs := e.pins(n, time.Time{})
	produced := make(chan struct{})
	var mu sync.Mutex // e.sent is written by the producer, read at the end
	go func() {
		defer close(produced)
		for i := 0; i < n; i += chunk {
			mu.Lock()
			e.produce(nil, msgs[i:i+chunk]...)
			mu.Unlock()
		}
	}()

	stop := e.start(200, 100*time.Millisecond, nil, landingHooks{})
	e.awaitLanded(1)
	stop() // mid-stream: the producer is still going

	stop = e.start(200, 100*time.Millisecond, nil, landingHooks{})
	<-produced
	e.awaitLanded(n)
	stop()
	mu.Lock()
	defer mu.Unlock()
	e.assertLandedExactlyOnce()
}

func TestLandingUploadsAnObjectPastThePartSizeInParts(t *testing.T) {
	e := newLandingEnv(t)
	// 28 records of 900 KB of base64 noise (under Kafka's 1 MB default
	// message limit), which zstd hardly shrinks: past lake's 16 MiB part size.
	msgs := make([]kafka.Message, 28)
	for i := range msgs {
		noise := make([]byte, 675<<10)
		_, _ = rand.Read(noise)
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "big-%d", i), Value: []byte(base64.StdEncoding.EncodeToString(noise))}
	}
	e.produce(kafka.BalancerFunc(func(kafka.Message, ...int) int { return 1 }), msgs...)

	stop := e.start(len(msgs), time.Minute, nil, landingHooks{})
	e.awaitLanded(len(msgs))
	stop()

	objs := e.assertLandedExactlyOnce()
	if len(objs) != 1 || objs[0].Size <= 16<<20 {
		t.Fatalf("want one object past 16 MiB, got %+v", objs)
	}
	// S3 names a multipart object's ETag after its parts: "<md5>-<parts>".
	// gofakes3 lists every object with its whole MD5, so only a real S3
	// server shows it.
	if _, parts, ok := strings.Cut(objs[0].ETag, "-"); os.Getenv("PINPIPE_S3_ENDPOINT") != "" && (!ok || parts == "1") {
		t.Errorf("%s (%d bytes) has ETag %q: not a multipart upload", objs[0].Key, objs[0].Size, objs[0].ETag)
	}
}

func TestDayRunsKeepsOffsetOrderWhenClocksDisagree(t *testing.T) {
	d1 := time.Date(2024, 5, 1, 23, 59, 59, 0, time.UTC)
	d2 := d1.Add(2 * time.Second)
	msgs := []kafka.Message{{Offset: 0, Time: d1}, {Offset: 1, Time: d2}, {Offset: 2, Time: d1}, {Offset: 3, Time: d2}, {Offset: 4, Time: d2}}
	runs := dayRuns(msgs)
	want := [][2]int64{{0, 0}, {1, 1}, {2, 2}, {3, 4}}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d", len(runs), len(want))
	}
	for i, r := range runs {
		if r[0].Offset != want[i][0] || r[len(r)-1].Offset != want[i][1] {
			t.Errorf("run %d holds %d-%d, want %d-%d", i, r[0].Offset, r[len(r)-1].Offset, want[i][0], want[i][1])
		}
	}
}

// committed returns the group's committed offset of partition, or -1 when
// it has none.
func (e *landingEnv) committed(partition int) int64 {
	e.t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 30 * time.Second, Transport: e.transport}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: e.group, Topics: map[string][]int{e.topic: {partition}}})
	testenv.Must(e.t, err)
	for _, p := range res.Topics[e.topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

func containsObject(objs []RawObject, partition int, first, last int64) bool {
	for _, o := range objs {
		if o.Partition == partition && o.First == first && o.Last == last {
			return true
		}
	}
	return false
}
