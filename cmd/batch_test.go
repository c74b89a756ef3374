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
