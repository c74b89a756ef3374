package cassandra_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/batch/cassandra"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
)

// realCassandra returns the real Cassandra's hosts and a fresh keyspace,
// or skips: the embedded stand-in has no schema to create.
func realCassandra(t *testing.T) ([]string, string) {
	t.Helper()
	hosts, ks := testenv.Cassandra(t)
	if hosts == nil {
		t.Skip("the embedded stand-in creates no keyspace; set PINPIPE_CASSANDRA_HOSTS (scripts/stack env) to run this against Cassandra")
	}
	return hosts, ks
}

// TestPinpipesStartingAtOnceAllOpenAFreshKeyspace opens one fresh keyspace
// from four stores at once, as pinpipes of a cluster starting together do:
// their concurrent CREATE … IF NOT EXISTS are retried, every open succeeds,
// and each store reads and writes the same run history.
func TestPinpipesStartingAtOnceAllOpenAFreshKeyspace(t *testing.T) {
	hosts, ks := realCassandra(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stores := make([]*cassandra.Store, 4)
	var g errgroup.Group
	for i := range stores {
		g.Go(func() (err error) {
			stores[i], err = cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
			return err
		})
	}
	err := g.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	testenv.Must(t, err)
	for i, s := range stores {
		unlock, err := s.LockDay(ctx, "2026-11-24", "run-"+string(rune('a'+i)))
		if err != nil {
			t.Fatalf("store %d cannot use the keyspace the others made: %v", i, err)
		}
		unlock()
	}
}

// TestOpenWaitsForCassandraToComeUp starts a store while Cassandra (behind
// a proxy) refuses connections: Open retries, and succeeds once it is up.
// With a short bound and Cassandra kept away, Open gives up with an error
// naming the hosts and the bound.
func TestOpenWaitsForCassandraToComeUp(t *testing.T) {
	hosts, ks := realCassandra(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	proxy := testenv.NewProxy(t, hosts[0])
	proxy.Down()
	opened := make(chan error, 1)
	go func() {
		s, err := cassandra.Open(ctx, cassandra.Options{Hosts: []string{proxy.Addr}, Keyspace: ks, Log: testenv.Log(t)})
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		opened <- err
	}()
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		return proxy.Refused() >= 2, "Open has not tried to connect twice yet"
	})
	proxy.Up()
	testenv.Must(t, <-opened)

	proxy.Down()
	_, err := cassandra.Open(ctx, cassandra.Options{Hosts: []string{proxy.Addr}, Keyspace: ks, Log: testenv.Log(t),
		Startup: retry.Policy{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: 2 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "cannot reach "+proxy.Addr) || !strings.Contains(err.Error(), "within 2s") {
		t.Fatalf("Open with Cassandra away: %v; want an error naming %s and the 2s bound", err, proxy.Addr)
	}
}
