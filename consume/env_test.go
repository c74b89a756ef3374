package consume_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/broker"
	"pinpipe/consume"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
)

// await is how long a test waits for a condition before failing: long
// enough for a consumer group to form on a busy machine.
const await = 60 * time.Second

// quick retries a failing handler without the lanes' longer waits.
var quick = retry.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

// partitions are the topic's partitions, as testenv.Kafka makes it.
var partitions = func() []int {
	ps := make([]int, broker.Partitions)
	for i := range ps {
		ps[i] = i
	}
	return ps
}()

// env is one test's topic and consumer group, with a kafka-go client that
// reads the group's state from the broker.
type env struct {
	t       *testing.T
	brokers []string
	topic   string
	group   string
	// transport is the test's own: kafka-go's shared default caches the
	// metadata of a shared real broker and then reports a topic created
	// after that as unknown.
	transport *kafka.Transport
	client    *kafka.Client
}

func newEnv(t *testing.T) *env {
	brokers, topic := testenv.Kafka(t)
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, brokers: brokers, topic: topic, group: testenv.Name("consume-"), transport: tr,
		client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}}
}

// options returns Options for the env's topic and group.
func (e *env) options(maxRecords int, maxWait time.Duration) consume.Options {
	return consume.Options{Brokers: e.brokers, Topic: e.topic, Group: e.group,
		MaxRecords: maxRecords, MaxWait: maxWait, Store: quick, Log: testenv.Log(e.t)}
}

// produce writes n records to partition with acks=all, in one request; the
// values say where they were meant to go.
func (e *env) produce(partition, n int) {
	e.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, RequiredAcks: kafka.RequireAll,
		Balancer:  kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition }),
		BatchSize: n, BatchTimeout: 5 * time.Millisecond, Transport: e.transport}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "p%d-%d", partition, i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce %d records to partition %d: %v", n, partition, err)
	}
}

// committed returns the group's committed offset per partition (-1 where
// it committed none).
func (e *env) committed() (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: e.group,
		Topics: map[string][]int{e.topic: partitions}})
	if err != nil {
		return nil, err
	}
	if res.Error != nil && !errors.Is(res.Error, kafka.GroupIdNotFound) {
		return nil, res.Error
	}
	out := map[int]int64{}
	for _, p := range res.Topics[e.topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// awaitCommitted waits until the group's committed offsets are want for
// every partition in want.
func (e *env) awaitCommitted(want map[int]int64) {
	e.t.Helper()
	testenv.Eventually(e.t, await, func() (bool, string) {
		got, err := e.committed()
		if err != nil {
			return false, err.Error()
		}
		for p, o := range want {
			if got[p] != o {
				return false, fmt.Sprintf("committed offsets %v, want %v", got, want)
			}
		}
		return true, ""
	})
}

// members returns the group's members' assigned partitions of the topic,
// sorted, once the group is stable.
func (e *env) members() ([][]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{e.group}})
	if err != nil {
		return nil, err
	}
	if len(res.Groups) != 1 {
		return nil, fmt.Errorf("%d groups described, want 1", len(res.Groups))
	}
	g := res.Groups[0]
	if g.Error != nil {
		return nil, g.Error
	}
	if g.GroupState != "Stable" {
		return nil, fmt.Errorf("group is %s", g.GroupState)
	}
	var out [][]int
	for _, m := range g.Members {
		var ps []int
		for _, tp := range m.MemberAssignments.Topics {
			if tp.Topic == e.topic {
				ps = append(ps, tp.Partitions...)
			}
		}
		sort.Ints(ps)
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out, nil
}

// awaitMembers waits until the group is stable with n members that each
// own at least one partition and together own every partition exactly
// once. Returns each member's partitions.
func (e *env) awaitMembers(n int) [][]int {
	e.t.Helper()
	var got [][]int
	testenv.Eventually(e.t, await, func() (bool, string) {
		var err error
		got, err = e.members()
		if err != nil {
			return false, err.Error()
		}
		var all []int
		for _, ps := range got {
			if len(ps) == 0 {
				return false, fmt.Sprintf("a member owns no partition: %v", got)
			}
			all = append(all, ps...)
		}
		slices.Sort(all)
		if len(got) != n || !slices.Equal(all, partitions) {
			return false, fmt.Sprintf("members own %v, want %d members splitting %v", got, n, partitions)
		}
		return true, ""
	})
	return got
}

// consumer is one running consume.Run.
type consumer struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs consume.Run until stop; the test's end stops it too.
func (e *env) start(o consume.Options, h consume.Handler) *consumer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- consume.Run(ctx, o, h) }()
	e.t.Cleanup(func() { c.stop(e.t) })
	return c
}

// stop cancels Run and waits for it to return, failing the test unless it
// returned nil.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err, ok := <-c.done:
		if ok && err != nil {
			t.Errorf("Run returned %v on shutdown, want nil", err)
		}
		if ok {
			close(c.done)
		}
	case <-time.After(await):
		t.Errorf("Run did not return within %s of shutdown", await)
	}
}

// assertWaits fails the test if Run returns within d: called after
// cancel while a batch is being stored, it gives Run the chance to return
// early, which it must not. Correct code passes however slow the machine.
func (c *consumer) assertWaits(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-c.done:
		close(c.done)
		t.Fatalf("Run returned %v while a batch was being stored", err)
	case <-time.After(d):
	}
}

// call is one Handle call.
type call struct {
	consumer  string
	partition int
	offsets   []int64
	err       error
}

// recorder remembers every Handle call of every consumer of a test.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

// handler returns a Handler named name that runs f (nil: succeed) and
// records the call with f's result.
func (r *recorder) handler(name string, f func(ctx context.Context, b consume.Batch) error) consume.Handler {
	return consume.HandlerFunc(func(ctx context.Context, b consume.Batch) error {
		var err error
		if f != nil {
			err = f(ctx, b)
		}
		c := call{consumer: name, partition: b.Partition, err: err}
		for _, m := range b.Messages {
			c.offsets = append(c.offsets, m.Offset)
		}
		r.mu.Lock()
		r.calls = append(r.calls, c)
		r.mu.Unlock()
		return err
	})
}

// all returns every call so far, in order.
func (r *recorder) all() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// stored returns the calls that returned nil, in order.
func (r *recorder) stored() []call {
	var out []call
	for _, c := range r.all() {
		if c.err == nil {
			out = append(out, c)
		}
	}
	return out
}

// count returns how often each (partition, offset) was stored, overall and
// by consumer.
func (r *recorder) count() (all map[[2]int64]int, by map[string]map[[2]int64]int) {
	all, by = map[[2]int64]int{}, map[string]map[[2]int64]int{}
	for _, c := range r.stored() {
		if by[c.consumer] == nil {
			by[c.consumer] = map[[2]int64]int{}
		}
		for _, o := range c.offsets {
			k := [2]int64{int64(c.partition), o}
			all[k]++
			by[c.consumer][k]++
		}
	}
	return all, by
}

// awaitStored waits until n distinct records were stored.
func (r *recorder) awaitStored(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, await, func() (bool, string) {
		all, _ := r.count()
		return len(all) >= n, fmt.Sprintf("%d of %d records stored", len(all), n)
	})
}

// assertExactlyOnce fails unless every offset below ends[p] of each
// partition p was stored exactly once, and nothing else was.
func (r *recorder) assertExactlyOnce(t *testing.T, ends map[int]int64) {
	t.Helper()
	all, _ := r.count()
	want := 0
	for p, end := range ends {
		for o := range end {
			if n := all[[2]int64{int64(p), o}]; n != 1 {
				t.Errorf("partition %d offset %d stored %d times, want once", p, o, n)
			}
		}
		want += int(end)
	}
	if len(all) != want {
		t.Errorf("%d distinct records stored, want %d", len(all), want)
	}
}
