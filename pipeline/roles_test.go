package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// readyz returns GET /readyz's status code and body.
func readyz(t *testing.T, base string) (int, struct {
	Status string                    `json:"status"`
	Roles  []string                  `json:"roles"`
	Checks map[string]map[string]any `json:"checks"`
}) {
	t.Helper()
	var body struct {
		Status string                    `json:"status"`
		Roles  []string                  `json:"roles"`
		Checks map[string]map[string]any `json:"checks"`
	}
	resp, err := http.Get(base + "/readyz")
	testenv.Must(t, err)
	defer resp.Body.Close()
	testenv.Must(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// synthPins returns n synthetic pins as NDJSON and their unique_ids.
func synthPins(seed uint64, n int) ([]byte, map[string]bool) {
	g := synth.New(seed)
	var b bytes.Buffer
	ids := map[string]bool{}
	for range n {
		p := g.Next()
		ids[strings.ToLower(p["unique_id"].(string))] = true
		line, _ := json.Marshal(p)
		b.Write(append(line, '\n'))
	}
	return b.Bytes(), ids
}

// TestAPIInstanceProducesAndALandingInstanceLandsIt runs two pipelines on
// one Kafka topic and one bucket: one with the api role only, which
// accepts pins and lands nothing (it has no landing consumer and no lake),
// and one with the landing role only, which lands every pin once and
// refuses POST /pins naming the role it lacks.
func TestAPIInstanceProducesAndALandingInstanceLandsIt(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	apiCfg, landCfg := *cfg, *cfg
	apiCfg.Roles, apiCfg.DataDir = config.Roles{config.RoleAPI}, t.TempDir()
	landCfg.Roles, landCfg.DataDir = config.Roles{config.RoleLanding}, t.TempDir()

	api, err := pipeline.Start(ctx, &apiCfg, testenv.Log(t))
	testenv.Must(t, err)
	defer api.Stop(ctx)
	apiURL := "http://" + api.Addr
	const n = 60
	body, ids := synthPins(7, n)
	postPins(t, apiURL, body)
	if got := len(testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic)); got != n {
		t.Fatalf("the topic holds %d records after the api instance accepted %d", got, n)
	}

	// The api instance cannot land: it opened no lake and runs no landing.
	if api.Lake != nil {
		t.Fatal("an instance with the api role only opened the lake")
	}
	code, rz := readyz(t, apiURL)
	if code != http.StatusOK || fmt.Sprint(rz.Roles) != "[api]" {
		t.Fatalf("/readyz of the api instance: %d %+v, want 200 with roles [api]", code, rz)
	}
	if _, ok := rz.Checks["s3"]; ok {
		t.Fatalf("/readyz of the api instance checks S3, which it does not use: %+v", rz.Checks)
	}
	if _, ok := rz.Checks["kafka"]; !ok {
		t.Fatalf("/readyz of the api instance does not check Kafka: %+v", rz.Checks)
	}
	metrics := getText(t, apiURL+"/metrics")
	if !strings.Contains(metrics, `pinpipe_roles{role="api"} 1`) || strings.Contains(metrics, `pinpipe_roles{role="landing"}`) {
		t.Fatalf("/metrics of the api instance lacks pinpipe_roles{role=\"api\"} 1 or has another role:\n%s", grepLines(metrics, "pinpipe_roles"))
	}
	if strings.Contains(metrics, "pinpipe_batch_landing_") {
		t.Fatalf("/metrics of the api instance has landing metrics:\n%s", grepLines(metrics, "pinpipe_batch_landing_"))
	}
	resp, err := http.Post(apiURL+"/query", "application/json", strings.NewReader(`{"sql":"SELECT 1"}`))
	testenv.Must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "query role") {
		t.Fatalf("POST /query on the api instance: %s %s, want 503 naming the query role", resp.Status, b)
	}

	land, err := pipeline.Start(ctx, &landCfg, testenv.Log(t))
	testenv.Must(t, err)
	defer land.Stop(ctx)
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		raw := readRawZone(t, land.Lake)
		seen := map[string]int{}
		for _, r := range raw {
			var p struct {
				UniqueID string `json:"unique_id"`
			}
			testenv.Must(t, json.Unmarshal([]byte(r.Value), &p))
			seen[strings.ToLower(p.UniqueID)]++
		}
		for id := range ids {
			if seen[id] != 1 {
				return false, fmt.Sprintf("the raw zone holds %d records; pin %s %d times", len(raw), id, seen[id])
			}
		}
		return len(raw) == n, fmt.Sprintf("the raw zone holds %d records, want %d", len(raw), n)
	})
	resp, err = http.Post("http://"+land.Addr+"/pins", "application/x-ndjson", bytes.NewReader(body))
	testenv.Must(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "api role") {
		t.Fatalf("POST /pins on the landing instance: %s %s, want 503 naming the api role", resp.Status, b)
	}
}

// TestStopTurnsReadyzUnreadyWhileStillAcceptingPins stops a pipeline with a
// drain period and checks that /readyz answers 503 "shutting down" while
// POST /pins is still accepted and produced, and that the server stops
// accepting once Stop returns.
func TestStopTurnsReadyzUnreadyWhileStillAcceptingPins(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	cfg.Roles = config.Roles{config.RoleAPI}
	cfg.ShutdownDrain = 5 * time.Second
	p, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	base := "http://" + p.Addr
	if code, rz := readyz(t, base); code != http.StatusOK {
		t.Fatalf("/readyz before stopping: %d %+v", code, rz)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		code, rz := readyz(t, base)
		return code == http.StatusServiceUnavailable && rz.Status == "shutting down",
			fmt.Sprintf("/readyz answers %d %q", code, rz.Status)
	})
	const n = 20
	body, _ := synthPins(11, n)
	postPins(t, base, body) // fails the test unless 202
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := len(testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic)); got != n {
		t.Fatalf("the topic holds %d records, want the %d accepted during the drain", got, n)
	}
	if resp, err := http.Post(base+"/pins", "application/x-ndjson", bytes.NewReader(body)); err == nil {
		resp.Body.Close()
		t.Fatalf("POST /pins after Stop returned: %s, want a refused connection", resp.Status)
	}
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
