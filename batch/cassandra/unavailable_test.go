package cassandra

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"pinpipe/pin"
)

// gocql answers "context canceled" for a query in flight on a connection
// that closed under it: while the caller still waits, that is Cassandra
// unavailable (503), not the caller leaving; once the caller's context
// ended, its error is passed on as it is.
func TestACanceledQueryIsUnavailableUnlessTheCallerLeft(t *testing.T) {
	c := &Store{o: Options{Hosts: []string{"127.0.0.1:9042"}}}
	gone := fmt.Errorf("gocql: %w", context.Canceled)

	var pe *pin.Error
	if err := c.unavailable(context.Background(), "read pin", gone); !errors.As(err, &pe) || pe.Code != pin.EUNAVAILABLE {
		t.Fatalf("caller still waiting: %v, want an %s error", err, pin.EUNAVAILABLE)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.unavailable(ctx, "read pin", gone); !errors.Is(err, context.Canceled) || errors.As(err, &pe) {
		t.Fatalf("caller gone: %v, want context.Canceled as it is", err)
	}
}
