package server_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestServerNeedsNoDriver keeps the HTTP layer on its small interfaces:
// the server package may not link a database, Kafka or cloud driver, so
// its route tests run over fakes without any of them.
func TestServerNeedsNoDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "pinpipe/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps pinpipe/server: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "pinpipe/pin") {
		t.Fatalf("go list -deps pinpipe/server listed %d packages without pinpipe/pin; the check would see nothing", len(deps))
	}
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/duckdb/", "github.com/apache/cassandra-gocql-driver", "github.com/gocql/",
			"github.com/jackc/pgx", "github.com/segmentio/kafka-go", "github.com/twmb/franz-go", "github.com/aws/",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("server depends on %s; call the lane through an interface the server declares", dep)
			}
		}
	}
}
