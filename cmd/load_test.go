package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pinpipe/cmd"
	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// TestLoadFailsOverFromADeadURLAndCountsEachPinOnce posts through three
// URLs — one where nothing listens, one instance without the api role (it
// answers 503), one that accepts — and checks every pin was accepted and
// produced exactly once.
func TestLoadFailsOverFromADeadURLAndCountsEachPinOnce(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	cfg.Roles = config.Roles{config.RoleAPI}
	live, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer live.Stop(ctx)
	other := *cfg
	other.Roles, other.DataDir = config.Roles{config.RoleStream}, t.TempDir()
	noAPI, err := pipeline.Start(ctx, &other, testenv.Log(t))
	testenv.Must(t, err)
	defer noAPI.Stop(ctx)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()

	const n = 250
	g := synth.New(5)
	var file bytes.Buffer
	for range n {
		line, _ := json.Marshal(g.Next())
		file.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "pins.ndjson")
	testenv.Must(t, os.WriteFile(path, file.Bytes(), 0o644))

	var stdout, stderr bytes.Buffer
	env := cmd.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	args := []string{"load", "--quiet", "--batch", "50", "--concurrency", "2",
		"--url", dead + ",http://" + noAPI.Addr, "--url", "http://" + live.Addr, path}
	if code := cmd.Main(ctx, env, args); code != 0 {
		t.Fatalf("pinpipe load: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if want := fmt.Sprintf("accepted %d pins, rejected 0, failed 0", n); !strings.Contains(stdout.String(), want) {
		t.Fatalf("pinpipe load printed %q, want %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "failing over") {
		t.Fatalf("pinpipe load did not log a failover:\n%s", stderr.String())
	}
	recs := testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic)
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Key)]++
	}
	if len(recs) != n || len(seen) != n {
		t.Fatalf("the topic holds %d records of %d pins, want %d, each once", len(recs), len(seen), n)
	}
}
