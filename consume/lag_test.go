package consume_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pinpipe/consume"
	"pinpipe/internal/testenv"
)

func TestLagOnlyMovesForward(t *testing.T) {
	type report struct{ partition, lag, total int64 }
	var got []report
	l := consume.NewLag(func(p int, lag, total int64) { got = append(got, report{int64(p), lag, total}) })
	l.Observe(0, 10, 4)  // 6 behind
	l.Observe(1, 5, 5)   // caught up
	l.Observe(0, 8, 3)   // stale: changes nothing
	l.Observe(1, 7, 0)   // the end moved: 2 behind
	l.Observe(0, 10, 12) // stored past a stale end: not negative
	want := []report{{0, 6, 6}, {1, 0, 6}, {0, 6, 6}, {1, 2, 8}, {0, 0, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reports %v, want %v", got, want)
	}
	if l.Total() != 2 {
		t.Fatalf("Total = %d, want 2", l.Total())
	}
	if consume.NewLag(nil).Total() != 0 {
		t.Fatal("a new Lag's Total is not 0")
	}
}

// lags records the last lag reported per partition.
type lags struct {
	mu   sync.Mutex
	last map[int]int64
}

func (l *lags) report(p int, lag, _ int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[p] = lag
}

// await waits until the last reports are want for every partition.
func (l *lags) await(t *testing.T, tracker *consume.Lag, want map[int]int64) {
	t.Helper()
	var total int64
	for _, n := range want {
		total += n
	}
	testenv.Eventually(t, await, func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !maps.Equal(l.last, want) || tracker.Total() != total {
			return false, fmt.Sprintf("lag %v (total %d), want %v (total %d)", l.last, tracker.Total(), want, total)
		}
		return true, ""
	})
}

func TestLagIsEndMinusCommittedAndReachesZeroAfterCatchUp(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 7)
	e.produce(1, 3)
	rep := &lags{last: map[int]int64{}}
	tracker := consume.NewLag(rep.report)
	var down atomic.Bool
	down.Store(true)
	o := e.options(100, 50*time.Millisecond)
	o.Lag = tracker
	var rec recorder
	e.start(o, rec.handler("a", func(context.Context, consume.Batch) error {
		if down.Load() {
			return errors.New("store down")
		}
		return nil
	}))

	// Nothing is stored while the store is down: the lag is every record.
	rep.await(t, tracker, map[int]int64{0: 7, 1: 3, 2: 0})
	// It grows with what arrives while the lane is paused.
	e.produce(2, 5)
	rep.await(t, tracker, map[int]int64{0: 7, 1: 3, 2: 5})
	if s := rec.stored(); len(s) != 0 {
		t.Fatalf("stored %v while the store was down", s)
	}

	down.Store(false)
	rep.await(t, tracker, map[int]int64{0: 0, 1: 0, 2: 0})
	// And Kafka agrees: the group committed every partition's end.
	got, err := e.committed()
	testenv.Must(t, err)
	if want := map[int]int64{0: 7, 1: 3, 2: 5}; !maps.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
}

func TestLagCountsPartitionsAnotherConsumerCommits(t *testing.T) {
	e := newEnv(t)
	e.produce(0, 4)
	e.produce(1, 6)
	// Another member of the group stores everything.
	var rec recorder
	other := e.start(e.options(100, 50*time.Millisecond), rec.handler("other", nil))
	e.awaitCommitted(map[int]int64{0: 4, 1: 6})
	other.stop(t)

	// A consumer that has stored nothing itself reads the group's
	// committed offsets: nothing is behind.
	rep := &lags{last: map[int]int64{}}
	tracker := consume.NewLag(rep.report)
	o := e.options(100, 50*time.Millisecond)
	o.Lag = tracker
	var mine recorder
	e.start(o, mine.handler("mine", nil))
	rep.await(t, tracker, map[int]int64{0: 0, 1: 0, 2: 0})
	e.produce(1, 2)
	mine.awaitStored(t, 2)
	rep.await(t, tracker, map[int]int64{0: 0, 1: 0, 2: 0})
	if s := mine.stored(); len(s) != 1 || s[0].partition != 1 || s[0].offsets[0] != 6 {
		t.Fatalf("stored %+v, want the two new records of partition 1 from offset 6", s)
	}
}
