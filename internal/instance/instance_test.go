package instance_test

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"pinpipe/config"
	"pinpipe/internal/instance"
)

// TestEnvGivesAProcessTheSameConfig reads back, as a pinpipe process would,
// the environment Env makes for a configuration, and checks every setting
// Env passes on arrives unchanged.
func TestEnvGivesAProcessTheSameConfig(t *testing.T) {
	want := &config.Config{
		Addr: "127.0.0.1:18001", DataDir: t.TempDir(), KafkaBrokers: []string{"127.0.0.1:19092", "127.0.0.1:19094"},
		Topic: "pins-x", GroupPrefix: "g-x", S3Endpoint: "http://127.0.0.1:17070", S3Bucket: "b-x",
		AWSAccessKeyID: "k", AWSSecretKey: "s", AWSRegion: "eu-west-1", CassandraHosts: []string{"127.0.0.1:19042"},
		CassandraKeyspace: "ks_x", PostgresURL: "postgres://u:p@127.0.0.1:15432/db?sslmode=disable",
		BatchCron: "* * * * *", LandingMaxRecords: 123, LandingInterval: 1500 * time.Millisecond,
		StreamMaxRecords: 45, StreamInterval: 50 * time.Millisecond, MirrorStaleness: 100 * time.Millisecond,
		TopicPartitions: 6, TopicReplication: 3, Roles: config.Roles{config.RoleAPI, config.RoleQuery},
		ShutdownDrain: 2 * time.Second, LogLevel: "warn",
	}
	env := map[string]string{}
	for _, kv := range instance.Env(want) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	got, _, err := config.Load(fs, nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := range w.NumField() {
		if w.Field(i).IsZero() {
			continue
		}
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: the process reads %v, want %v", w.Type().Field(i).Name, g.Field(i), w.Field(i))
		}
	}
}

// TestReadUsageReadsThisProcess checks the /proc parsing on the test
// process itself, which has used some CPU and memory by now.
func TestReadUsageReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	// Spend CPU time the kernel can account (it counts in 10 ms ticks).
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = strings.Repeat("x", n%100)
	}
	u, err := instance.ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.PeakRSS < 1<<20 {
		t.Fatalf("usage of the running test: %+v, want some CPU time and at least 1 MiB peak RSS", u)
	}
}

// TestStartReadyStartsAnExitingProcessAgain starts a "pinpipe" that exits at
// once: StartReady must try it the number of times asked, then give up
// with the reason, and NewIn must have given it its own address and log.
func TestStartReadyStartsAnExitingProcessAgain(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1) here")
	}
	dir := t.TempDir()
	p, err := instance.NewIn(dir, "x", bin, config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.LogFile() != filepath.Join(dir, "x.log") || !strings.HasPrefix(p.URL(), "http://127.0.0.1:") {
		t.Fatalf("NewIn: log %s, url %s", p.LogFile(), p.URL())
	}
	again := 0
	err = p.StartReady(context.Background(), 3, time.Minute, func(string, ...any) { again++ })
	if err == nil || !strings.Contains(err.Error(), "exited while starting") {
		t.Fatalf("StartReady of a process that exits: %v", err)
	}
	if again != 3 {
		t.Fatalf("started %d times, want 3", again)
	}
}
