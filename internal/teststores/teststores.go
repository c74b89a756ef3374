// Package teststores opens, for tests, the stores a lane writes to: the
// real service when the stack's environment names one (through testenv),
// else the embedded stand-in, each over a fresh keyspace, database or
// directory that is closed when the test ends. It is for external test
// packages only: it imports the lanes it opens stores for.
package teststores

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the embedded engine of SQLEngines
	_ "github.com/jackc/pgx/v5/stdlib" // Postgres for SQLEngines

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/batch/standin"
	"pinpipe/internal/testenv"
	"pinpipe/stream"
)

// Serving returns the serving store: a fresh keyspace on the real Cassandra
// when PINPIPE_CASSANDRA_HOSTS is set, else the embedded stand-in in a
// temporary directory.
func Serving(t testing.TB) batch.ServingStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var s batch.ServingStore
	var err error
	if hosts, ks := testenv.Cassandra(t); hosts != nil {
		s, err = cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
	} else {
		s, err = standin.Open(ctx, t.TempDir(), 256<<20, nil)
	}
	testenv.Must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// StreamSinks returns the embedded stream stand-in under "embedded" and, when
// the stack is configured, a fresh Postgres database under "postgres".
func StreamSinks(t testing.TB) map[string]stream.Sink {
	t.Helper()
	ctx := context.Background()
	out := map[string]stream.Sink{}
	d, err := stream.OpenDuckDB(ctx, t.TempDir(), testenv.Log(t))
	testenv.Must(t, err)
	t.Cleanup(func() { d.Close() })
	out["embedded"] = d
	if url := testenv.Postgres(t); url != "" {
		p, err := stream.OpenPostgres(ctx, url, testenv.Log(t))
		testenv.Must(t, err)
		t.Cleanup(func() { p.Close() })
		testenv.Must(t, p.Check(ctx))
		out["postgres"] = p
	}
	return out
}

// SQLEngines returns the SQL engines that must agree on pinpipe's version
// SQL: an in-memory DuckDB under "duckdb" and, when the stack names one, a
// fresh Postgres database under "postgres". They close when the test ends.
func SQLEngines(t testing.TB) map[string]*sql.DB {
	t.Helper()
	out := map[string]*sql.DB{}
	duck, err := sql.Open("duckdb", "")
	testenv.Must(t, err)
	t.Cleanup(func() { _ = duck.Close() })
	out["duckdb"] = duck
	if url := testenv.Postgres(t); url != "" {
		pg, err := sql.Open("pgx", url)
		testenv.Must(t, err)
		t.Cleanup(func() { _ = pg.Close() })
		out["postgres"] = pg
	}
	return out
}
