package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
)

// TestPrometheusScrapesPinpipeThePostgresExporterAndCassandra runs pinpipe
// where the stack's Prometheus scrapes it and awaits up == 1 for each job.
func TestPrometheusScrapesPinpipeThePostgresExporterAndCassandra(t *testing.T) {
	prom := os.Getenv("PINPIPE_PROMETHEUS_URL")
	if prom == "" {
		if testenv.RequireReal() {
			t.Fatal("PINPIPE_REQUIRE_REAL=1 but PINPIPE_PROMETHEUS_URL is unset: start the stack with `scripts/stack up` and `eval \"$(scripts/stack env)\"`")
		}
		t.Skip("no Prometheus: PINPIPE_PROMETHEUS_URL is unset (scripts/stack up)")
	}
	cfg := testenv.Config(t)
	cfg.Addr = os.Getenv("PINPIPE_STACK_SCRAPE_ADDR")
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(context.Background())

	for _, job := range []string{"pinpipe", "postgres", "cassandra"} {
		testenv.Eventually(t, 60*time.Second, func() (bool, string) {
			v, err := promUp(prom, job)
			if err != nil {
				return false, err.Error()
			}
			return v == "1", fmt.Sprintf("Prometheus at %s reports up{job=%q} = %q", prom, job, v)
		})
	}
}

// promUp returns the value of up{job=…}, "" when Prometheus has no sample.
func promUp(prom, job string) (string, error) {
	q := url.Values{"query": {fmt.Sprintf(`up{job=%q}`, job)}}
	resp, err := http.Get(prom + "/api/v1/query?" + q.Encode())
	if err != nil {
		return "", fmt.Errorf("Prometheus at %s: %w", prom, err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if len(body.Data.Result) == 0 {
		return "", nil
	}
	v, _ := body.Data.Result[0].Value[1].(string)
	return v, nil
}
