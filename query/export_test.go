package query

import (
	"context"
	"fmt"
	"testing"
)

// EngineState returns, for tests, the engine settings a query must never
// change, read on the gate's private connection.
func EngineState(t *testing.T, e *Engine) string {
	t.Helper()
	var threads, external, logging, profiling string
	var databases int
	err := e.gate.c.QueryRowContext(context.Background(), `SELECT
		current_setting('threads')::VARCHAR, current_setting('enable_external_access')::VARCHAR,
		current_setting('enable_logging')::VARCHAR, coalesce(current_setting('enable_profiling')::VARCHAR, ''),
		(SELECT count(*) FROM duckdb_databases() WHERE NOT internal)`).Scan(&threads, &external, &logging, &profiling, &databases)
	if err != nil {
		t.Fatalf("read the engine's settings: %v", err)
	}
	return fmt.Sprintf("threads=%s external=%s databases=%d logging=%s profiling=%q", threads, external, databases, logging, profiling)
}

// RunUnchecked runs text on one of the engine's query connections without
// the gate, for tests of the fences DuckDB's own settings put up.
func RunUnchecked(t *testing.T, e *Engine, text string) error {
	t.Helper()
	c := e.pool.get()
	if c == nil {
		t.Fatal("no idle connection")
	}
	defer e.pool.put(c)
	rows, err := c.c.QueryContext(context.Background(), text)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}
