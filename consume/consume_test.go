package consume_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"pinpipe/consume"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
)

func TestRunRefusesNonPositiveLimits(t *testing.T) {
	for _, o := range []consume.Options{{MaxRecords: 0, MaxWait: time.Second}, {MaxRecords: 10, MaxWait: 0}} {
		o.Group = "g"
		if err := consume.Run(context.Background(), o, consume.HandlerFunc(nil)); err == nil {
			t.Errorf("Run with MaxRecords %d, MaxWait %s = nil, want an error", o.MaxRecords, o.MaxWait)
		}
	}
}

func TestOffsetIsCommittedOnlyAfterTheHandlerStoredTheBatch(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 30)
	var rec recorder
	var failures atomic.Int32
	var mu sync.Mutex
	var seen []string // commits the handler saw too early
	h := rec.handler("a", func(ctx context.Context, b consume.Batch) error {
		c, err := e.committed()
		if err != nil {
			return fmt.Errorf("read committed offsets: %w", err)
		}
		// Nothing of this batch may be committed before it is stored.
		if first := b.Messages[0].Offset; c[0] > first {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("offset %d committed before storing %d-%d", c[0], first, b.Last()))
		}
		// The batch after the first fails three times.
		if b.Messages[0].Offset > 0 && failures.Add(1) <= 3 {
			return errors.New("store down")
		}
		return nil
	})
	e.start(e.options(10, 50*time.Millisecond), h)
	e.awaitCommitted(map[int]int64{0: 30})

	mu.Lock()
	for _, s := range seen {
		t.Error(s)
	}
	mu.Unlock()
	rec.assertExactlyOnce(t, map[int]int64{0: 30})
	// The failing batch came back whole each time: its first offset
	// follows the stored batch before it, nothing skipped.
	calls := rec.all()
	var failed [][]int64
	for _, c := range calls {
		if c.err != nil {
			failed = append(failed, c.offsets)
		}
	}
	if len(failed) != 3 {
		t.Fatalf("%d failed calls, want 3", len(failed))
	}
	next := calls[0].offsets
	if calls[0].err != nil {
		t.Fatalf("the first batch failed: %v", calls[0].err)
	}
	for i, f := range failed {
		if f[0] != next[len(next)-1]+1 || !slices.Equal(f, calls[4].offsets) {
			t.Errorf("failed call %d had offsets %v; want the batch after %v, as stored at last (%v)", i, f, next, calls[4].offsets)
		}
	}
	stored := rec.stored()
	for i := 1; i < len(stored); i++ {
		prev, cur := stored[i-1].offsets, stored[i].offsets
		if cur[0] != prev[len(prev)-1]+1 {
			t.Errorf("stored batch %d starts at %d, want %d", i, cur[0], prev[len(prev)-1]+1)
		}
	}
}

func TestBatchTheHandlerCannotStoreIsReplayedAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.produce(1, 5)
	var rec recorder
	failing := make(chan struct{})
	var once atomic.Bool
	down := rec.handler("down", func(ctx context.Context, b consume.Batch) error {
		if once.CompareAndSwap(false, true) {
			close(failing)
		}
		return errors.New("store down")
	})
	c := e.start(e.options(100, 50*time.Millisecond), down)
	<-failing
	// Shutdown gives the in-flight batch a grace period to be stored; it
	// never is, so nothing may be committed.
	c.stop(t)
	got, err := e.committed()
	testenv.Must(t, err)
	if got[1] >= 0 {
		t.Fatalf("partition 1 committed at %d although its batch was never stored", got[1])
	}
	if s := rec.stored(); len(s) != 0 {
		t.Fatalf("stored %v, want nothing", s)
	}

	e.start(e.options(100, 50*time.Millisecond), rec.handler("up", nil))
	e.awaitCommitted(map[int]int64{1: 5})
	rec.assertExactlyOnce(t, map[int]int64{1: 5})
}

func TestBatchIsRedeliveredWhenTheStorePolicyGivesUp(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 5)
	var rec recorder
	var calls atomic.Int32
	o := e.options(100, 50*time.Millisecond)
	// The policy gives up on the batch several times before the store
	// comes back; each time the partition is read again from its
	// committed offset.
	o.Store = retry.Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, MaxElapsed: 30 * time.Millisecond}
	e.start(o, rec.handler("a", func(context.Context, consume.Batch) error {
		if calls.Add(1) <= 20 {
			return errors.New("store down")
		}
		return nil
	}))
	e.awaitCommitted(map[int]int64{0: 5})
	rec.assertExactlyOnce(t, map[int]int64{0: 5})
	for _, c := range rec.all() {
		if c.offsets[0] != 0 {
			t.Errorf("a call got offsets %v, want every retry and redelivery to start at 0", c.offsets)
		}
	}
}

func TestShutdownStoresTheInFlightBatchAndHandlesNothingAfterIt(t *testing.T) {
	e := newEnv(t)
	e.produce(2, 30)
	var rec recorder
	inFlight, release := make(chan struct{}), make(chan struct{})
	var ctxEnded atomic.Bool
	h := rec.handler("a", func(ctx context.Context, b consume.Batch) error {
		if b.Messages[0].Offset == 10 {
			close(inFlight)
			<-release
			// The batch being stored keeps a live context through the
			// grace period.
			ctxEnded.Store(ctx.Err() != nil)
		}
		return nil
	})
	c := e.start(e.options(10, 50*time.Millisecond), h)
	select {
	case <-inFlight:
	case <-time.After(await):
		t.Fatalf("the second batch was not handled within %s", await)
	}
	c.cancel()
	c.assertWaits(t, 300*time.Millisecond)
	close(release)
	c.stop(t)

	if ctxEnded.Load() {
		t.Error("the in-flight batch's context ended at shutdown, want it live for the grace period")
	}
	// Read right after Run returned: the commit is part of the shutdown.
	got, err := e.committed()
	testenv.Must(t, err)
	if got[2] != 20 {
		t.Errorf("partition 2 committed at %d after shutdown, want 20 (the in-flight batch stored and committed)", got[2])
	}
	rec.assertExactlyOnce(t, map[int]int64{2: 20})
}

func TestBatchClosesAtMaxRecords(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 25)
	var rec recorder
	// MaxWait outlasts the test: only the size can close these batches.
	e.start(e.options(10, time.Hour), rec.handler("a", nil))
	rec.awaitStored(t, 20)
	for _, c := range rec.stored() {
		if len(c.offsets) != 10 {
			t.Errorf("batch of %d records (%v), want 10", len(c.offsets), c.offsets)
		}
	}
}

func TestBatchClosesMaxWaitAfterItsFirstRecord(t *testing.T) {
	e := newEnv(t)
	var rec recorder
	// MaxRecords is never reached: only the time can close the batch.
	e.start(e.options(1000, 2*time.Second), rec.handler("a", nil))
	e.awaitMembers(1)
	// Records that follow the first within MaxWait join its batch.
	for range 5 {
		e.produce(1, 1)
		time.Sleep(20 * time.Millisecond)
	}
	rec.awaitStored(t, 5)
	if s := rec.stored(); len(s) != 1 || !slices.Equal(s[0].offsets, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("stored %+v, want one batch of offsets 0-4", s)
	}
}

func TestLingerClosesABatchWhenTheRecordsPause(t *testing.T) {
	e := newEnv(t)
	var rec recorder
	// MaxWait outlasts the test: only a pause of Linger closes a batch.
	o := e.options(1000, time.Hour)
	o.Linger = 100 * time.Millisecond
	e.start(o, rec.handler("a", nil))
	e.awaitMembers(1)
	// Records produced together are stored together, and each pause
	// closes the batch it follows.
	e.produce(0, 5)
	rec.awaitStored(t, 5)
	e.produce(0, 3)
	rec.awaitStored(t, 8)
	s := rec.stored()
	if len(s) != 2 || !slices.Equal(s[0].offsets, []int64{0, 1, 2, 3, 4}) || !slices.Equal(s[1].offsets, []int64{5, 6, 7}) {
		t.Fatalf("stored %+v, want offsets 0-4, then 5-7", s)
	}
}

func TestFlushClosesOpenBatchesBeforeMaxWait(t *testing.T) {
	e := newEnv(t)
	var rec recorder
	// Neither limit can close a batch within the test: only Flush can.
	o := e.options(1000, time.Hour)
	o.Flush = &consume.Flush{}
	e.start(o, rec.handler("a", nil))
	e.awaitMembers(1)
	e.produce(0, 5)
	e.produce(1, 3)
	// A flush only closes batches already open, so it is asked for again
	// until the records were fetched and stored.
	testenv.Eventually(t, await, func() (bool, string) {
		o.Flush.Now()
		all, _ := rec.count()
		return len(all) == 8, fmt.Sprintf("%d of 8 records stored", len(all))
	})
	rec.assertExactlyOnce(t, map[int]int64{0: 5, 1: 3})
}

func TestStartOffsetDecidesWhereAPartitionIsRead(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 10)
	var rec recorder
	var given atomic.Int64
	var tries atomic.Int32
	o := e.options(100, 50*time.Millisecond)
	o.StartOffset = func(_ context.Context, partition int, committed int64) (int64, error) {
		if partition != 0 {
			return committed, nil
		}
		// A failing look-up is retried, not skipped.
		if tries.Add(1) == 1 {
			return 0, errors.New("raw zone down")
		}
		given.Store(committed)
		return 4, nil
	}
	e.start(o, rec.handler("a", nil))
	e.awaitCommitted(map[int]int64{0: 10})
	if g := given.Load(); g != kafka.FirstOffset {
		t.Errorf("StartOffset was given committed %d, want kafka.FirstOffset for a group that committed nothing", g)
	}
	all, _ := rec.count()
	for o := range int64(10) {
		if want := map[bool]int{true: 1}[o >= 4]; all[[2]int64{0, o}] != want {
			t.Errorf("offset %d stored %d times, want %d", o, all[[2]int64{0, o}], want)
		}
	}
}
