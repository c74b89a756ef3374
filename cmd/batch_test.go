package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/cmd"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/synth"
)

// batchEnv returns the environment of a pinpipe whose lake is a fresh
// test bucket and whose serving store is a fresh keyspace (or the
// stand-in under dataDir), and that bucket.
func batchEnv(t *testing.T, dataDir string) (func(string) string, *lake.Store) {
	t.Helper()
	o := testenv.S3(t)
	hosts, ks := testenv.Cassandra(t)
	env := map[string]string{
		"PINPIPE_DATA_DIR": dataDir, "PINPIPE_S3_ENDPOINT": o.Endpoint, "PINPIPE_S3_BUCKET": o.Bucket,
		"AWS_ACCESS_KEY_ID": o.AccessKey, "AWS_SECRET_ACCESS_KEY": o.SecretKey, "AWS_REGION": o.Region,
		"PINPIPE_CASSANDRA_HOSTS": strings.Join(hosts, ","), "PINPIPE_CASSANDRA_KEYSPACE": ks,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := lake.Open(ctx, o)
	testenv.Must(t, err)
	return func(k string) string { return env[k] }, s
}

func TestBatchCommandRunsADayAndExitsNonZeroWhenRefused(t *testing.T) {
	getenv, s := batchEnv(t, t.TempDir())
	g := synth.New(3)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]batch.RawRecord, 50)
	for i := range recs {
		v, _ := json.Marshal(g.Next())
		recs[i] = batch.RawRecord{Topic: "pins", Partition: 0, Offset: int64(i), Timestamp: at, Value: string(v)}
	}
	var obj bytes.Buffer
	testenv.Must(t, batch.WriteRaw(&obj, recs))
	testenv.Must(t, s.Put(context.Background(), layout.RawKey("2024-05-01", 0, 0, 49), &obj))

	var stdout, stderr bytes.Buffer
	env := cmd.Env{Stdout: &stdout, Stderr: &stderr, Getenv: getenv}
	if code := cmd.Main(context.Background(), env, []string{"batch", "--date", "2024-05-01", "--quiet"}); code != 0 {
		t.Fatalf("pinpipe batch: exit %d, stderr:\n%s", code, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "for 2024-05-01 succeeded") || !strings.Contains(out, "50 rows in, 50 out, 0 rejected") {
		t.Fatalf("pinpipe batch printed %q", out)
	}
	objs, err := s.List(context.Background(), layout.Curated.DayPrefix("2024-05-01"))
	testenv.Must(t, err)
	if len(objs) != 2 {
		t.Fatalf("the curated zone of the day holds %d objects, want one part and its run's commit marker", len(objs))
	}

	stdout.Reset()
	stderr.Reset()
	future := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	if code := cmd.Main(context.Background(), env, []string{"batch", "--date", future, "--quiet"}); code != 1 {
		t.Fatalf("pinpipe batch for a future day: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "is in the future") {
		t.Fatalf("pinpipe batch for a future day said %q", stderr.String())
	}
}

func TestBatchCommandBackfillsARangeOneRunPerDay(t *testing.T) {
	getenv, s := batchEnv(t, t.TempDir())
	g := synth.New(4)
	want := map[string]int{"2024-05-01": 3, "2024-05-03": 5}
	for dt, n := range want {
		at, _ := time.Parse(time.DateOnly, dt)
		recs := make([]batch.RawRecord, n)
		for i := range recs {
			v, _ := json.Marshal(g.Next())
			recs[i] = batch.RawRecord{Topic: "pins", Partition: 0, Offset: int64(i), Timestamp: at.Add(time.Hour), Value: string(v)}
		}
		var obj bytes.Buffer
		testenv.Must(t, batch.WriteRaw(&obj, recs))
		testenv.Must(t, s.Put(context.Background(), layout.RawKey(dt, 0, 0, int64(n-1)), &obj))
	}
	var stdout, stderr bytes.Buffer
	env := cmd.Env{Stdout: &stdout, Stderr: &stderr, Getenv: getenv}
	if code := cmd.Main(context.Background(), env, []string{"batch", "--from", "2024-05-01", "--to", "2024-05-03", "--batch-concurrency", "2"}); code != 0 {
		t.Fatalf("pinpipe batch --from --to: exit %d, stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, line := range []string{"for 2024-05-01 succeeded: 3 rows in, 3 out", "for 2024-05-03 succeeded: 5 rows in, 5 out",
		"2024-05-02 skipped: The raw zone holds no pins", "backfill 2024-05-01 to 2024-05-03: 2 days run, 0 failed, 1 skipped"} {
		if !strings.Contains(out, line) {
			t.Errorf("pinpipe batch --from --to printed %q, which lacks %q", out, line)
		}
	}
	if !strings.Contains(stderr.String(), "backfilling 2024-05-01 to 2024-05-03") || !strings.Contains(stderr.String(), "2/2") {
		t.Errorf("the progress bar: %q", stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := cmd.Main(context.Background(), env, []string{"batch", "--from", "2023-01-01", "--to", "2024-05-03", "--quiet"}); code != 1 ||
		!strings.Contains(stderr.String(), "at most 366") {
		t.Fatalf("a range of 489 days: exit %d, stderr %q; want 1 and the bound", code, stderr.String())
	}
	stderr.Reset()
	if code := cmd.Main(context.Background(), env, []string{"batch", "--from", "2024-05-01", "--quiet"}); code != 2 || !strings.Contains(stderr.String(), "both --from and --to") {
		t.Fatalf("--from without --to: exit %d, stderr %q; want 2 (usage) saying how to give a range", code, stderr.String())
	}
}
