package cassandra_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"pinpipe/batch/cassandra"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// TestTwoPinpipesNeverRunOneDayAtOnce opens the same keyspace twice, as a
// server and `pinpipe batch` would, and checks that the second cannot take
// a day the first holds, and can once it is released.
func TestTwoPinpipesNeverRunOneDayAtOnce(t *testing.T) {
	hosts, ks := testenv.Cassandra(t)
	if hosts == nil {
		t.Skip("one process owns the embedded stand-in's file; set PINPIPE_CASSANDRA_HOSTS (scripts/stack env) to run this against Cassandra")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func() *cassandra.Store {
		s, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
		testenv.Must(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	server, cli := open(), open()

	unlock, err := server.LockDay(ctx, "2026-11-24", "run-a")
	testenv.Must(t, err)
	if _, err := cli.LockDay(ctx, "2026-11-24", "run-b"); pin.ErrorCode(err) != pin.ECONFLICT || !strings.Contains(pin.ErrorMessage(err), "run-a") {
		t.Fatalf("a second pinpipe took a held day: %v, want a conflict naming run-a", err)
	}
	other, err := cli.LockDay(ctx, "2026-11-23", "run-c")
	testenv.Must(t, err) // another day is free
	other()

	unlock()
	again, err := cli.LockDay(ctx, "2026-11-24", "run-b")
	if err != nil {
		t.Fatalf("the day stayed held after its run released it: %v", err)
	}
	again()
}
