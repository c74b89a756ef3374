package query

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/lake"
)

// settingsChild marks the process TestEveryConnectionHasTheEngineSettings
// starts under another time zone.
const settingsChild = "PINPIPE_TEST_SETTINGS_CHILD"

// TestEveryConnectionHasTheEngineSettings checks each connection a query
// can run on, not only the one the settings were applied through: DuckDB's
// SET without GLOBAL sets a session-scoped option (TimeZone,
// parquet_metadata_cache) for that connection alone. It runs in a child
// process whose host time zone is not UTC, as DuckDB reads the zone once.
func TestEveryConnectionHasTheEngineSettings(t *testing.T) {
	if os.Getenv(settingsChild) == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestEveryConnectionHasTheEngineSettings$", "-test.v")
		cmd.Env = append(os.Environ(), settingsChild+"=1", "TZ=America/New_York")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("under TZ=America/New_York: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestEveryConnectionHasTheEngineSettings") {
			t.Fatalf("the child process ran no test:\n%s", out)
		}
		return
	}
	ctx := context.Background()
	o := testenv.S3(t)
	store, err := lake.Open(ctx, o)
	testenv.Must(t, err)
	dir := t.TempDir()
	m, err := NewMirror(store, MirrorOptions{Dir: filepath.Join(dir, "mirror"), MaxBytes: 1 << 20, Staleness: time.Second, Log: testenv.Log(t)})
	testenv.Must(t, err)
	defer m.Close()
	e, err := Open(ctx, Options{Mirror: m, Bucket: o.Bucket, TempDir: filepath.Join(dir, "spill"), Timeout: 10 * time.Second, Threads: 1, MaxConcurrent: 4, Log: testenv.Log(t)})
	testenv.Must(t, err)
	defer e.Close()

	if len(e.pool.idle) != 4 {
		t.Fatalf("%d idle connections, want 4", len(e.pool.idle))
	}
	for i, c := range e.pool.idle {
		// 03:00 UTC is the evening before in New York.
		var zone, cache, day, late string
		err := c.c.QueryRowContext(ctx, `SELECT current_setting('TimeZone'), current_setting('parquet_metadata_cache')::VARCHAR,
			CAST(CAST(TIMESTAMPTZ '2026-03-01 03:00:00+00' AS DATE) AS VARCHAR), current_setting('late_materialization_max_rows')::VARCHAR`).Scan(&zone, &cache, &day, &late)
		testenv.Must(t, err)
		if zone != "UTC" || cache != "true" || day != "2026-03-01" || late != "1000" {
			t.Errorf("connection %d: TimeZone %q, parquet_metadata_cache %s, the day of 2026-03-01 03:00 UTC %s, late_materialization_max_rows %s; want UTC, true, 2026-03-01, 1000",
				i, zone, cache, day, late)
		}
	}
}
