package consume_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pinpipe/consume"
	"pinpipe/internal/testenv"
)

// TestTwoConsumersSplitThePartitionsAndTheSurvivorTakesOver runs two
// consumers of one group: they split the partitions, and when one stops in
// the middle of a batch, it stores and commits that batch and the other
// carries on right after it. Every record is stored exactly once.
func TestTwoConsumersSplitThePartitionsAndTheSurvivorTakesOver(t *testing.T) {
	e := newEnv(t)
	var rec recorder
	ends := map[int]int64{}
	produce := func(n int) {
		for _, p := range partitions {
			e.produce(p, n)
			ends[p] += int64(n)
		}
	}

	// One consumer alone owns every partition.
	var holdA, holding atomic.Bool
	inFlight, unblock := make(chan int, 1), make(chan struct{})
	release := sync.OnceFunc(func() { close(unblock) })
	t.Cleanup(release)
	a := e.start(e.options(4, 50*time.Millisecond), rec.handler("a", func(ctx context.Context, b consume.Batch) error {
		// Hold the first new batch of one partition only.
		if holdA.Load() && b.Messages[0].Offset >= 10 && holding.CompareAndSwap(false, true) {
			inFlight <- b.Partition
			// Like a real store, give up when ctx ends.
			select {
			case <-unblock:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}))
	e.awaitMembers(1)
	produce(10)
	e.awaitCommitted(ends)

	// A second consumer joins: the two split the partitions between them.
	b := e.start(e.options(4, 50*time.Millisecond), rec.handler("b", nil))
	split := e.awaitMembers(2)
	t.Logf("partitions split %v", split)

	// Each new record is stored by the consumer that owns its partition;
	// a holds its first new batch of one partition.
	holdA.Store(true)
	produce(10)
	var held int
	select {
	case held = <-inFlight:
	case <-time.After(await):
		t.Fatalf("consumer a stored no new batch within %s", await)
	}
	testenv.Eventually(t, await, func() (bool, string) {
		all, _ := rec.count()
		for _, p := range partitions {
			for o := int64(10); o < 20 && p != held; o++ {
				if all[[2]int64{int64(p), o}] == 0 {
					return false, fmt.Sprintf("partition %d offset %d not stored yet", p, o)
				}
			}
		}
		return true, ""
	})
	_, by := rec.count()
	owned := map[string][]int{}
	for _, p := range partitions {
		for _, c := range []string{"a", "b"} {
			if by[c][[2]int64{int64(p), 10}] > 0 || (p == held && c == "a") {
				owned[c] = append(owned[c], p)
			}
		}
	}
	got := [][]int{owned["a"], owned["b"]}
	slices.SortFunc(got, func(x, y []int) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
	if fmt.Sprint(got) != fmt.Sprint(split) {
		t.Errorf("a stored partitions %v and b %v; want the group's split %v", owned["a"], owned["b"], split)
	}

	// a stops while that batch is being stored; it finishes the batch,
	// and b takes over every partition from where a left it.
	a.cancel()
	a.assertWaits(t, 300*time.Millisecond)
	release()
	a.stop(t)
	e.awaitMembers(1)
	produce(10)
	e.awaitCommitted(ends)
	b.stop(t)

	rec.assertExactlyOnce(t, ends)
	_, by = rec.count()
	for _, p := range owned["a"] {
		if by["b"][[2]int64{int64(p), 20}] != 1 {
			t.Errorf("partition %d: b did not take over after a stopped", p)
		}
	}
}
