package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
)

const dashboardFile = "../deploy/grafana/dashboards/pinpipe.json"

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int        `json:"id"`
		Type       string     `json:"type"`
		Title      string     `json:"title"`
		Datasource datasource `json:"datasource"`
		Targets    []struct {
			RefID      string     `json:"refId"`
			Expr       string     `json:"expr"`
			Datasource datasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	testenv.Must(t, err)
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s does not parse: %v", dashboardFile, err)
	}
	return d
}

// TestDashboardPanelsUseTheDatasourceVariable: a dashboard imported into
// a Grafana whose Prometheus has another uid still works, because every
// panel and query names the ${datasource} variable, and every pinpipe
// series is filtered by the instance variable.
func TestDashboardPanelsUseTheDatasourceVariable(t *testing.T) {
	d := readDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Fatalf("template variables %v, want datasource (type datasource) and instance (type query)", vars)
	}
	want := datasource{Type: "prometheus", UID: "${datasource}"}
	pinpipeSeries := regexp.MustCompile(`\bpinpipe_\w+(\{[^}]*\})?`)
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource != want {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != want {
				t.Errorf("panel %q query %s: datasource %+v, want %+v", p.Title, tg.RefID, tg.Datasource, want)
			}
			for _, m := range pinpipeSeries.FindAllStringSubmatch(tg.Expr, -1) {
				if !strings.Contains(m[1], `instance=~"$instance"`) {
					t.Errorf("panel %q query %s: %s is not filtered by instance=~\"$instance\"", p.Title, tg.RefID, m[0])
				}
			}
		}
	}
}

// TestEveryDashboardPanelReturnsSeriesFromARealPrometheus runs pinpipe,
// gives every metric family samples (pins accepted and refused, the stream
// lane, a batch run, queries), has a Prometheus of the test's own scrape it
// every second, and evaluates every query of every panel of the Grafana
// dashboard: each must return at least one series with a number (not NaN).
//
// The Postgres and Cassandra panels read the exporters of the real stack
// (scripts/stack), which export the schema and keyspace pinpipe uses in
// production (pinterest): against real services this pinpipe therefore
// uses keyspace pinterest and the database of PINPIPE_POSTGRES_URL itself,
// not a fresh one. Those panels are exempt only when their exporter is not
// scraped, which is on the embedded defaults (there is no Postgres or
// Cassandra to export); the test names each one it skips.
//
// It needs a prometheus binary (Debian's prometheus package, which
// scripts/stack installs); without one it skips, unless
// PINPIPE_REQUIRE_REAL=1.
func TestEveryDashboardPanelReturnsSeriesFromARealPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if testenv.RequireReal() {
			t.Fatal("PINPIPE_REQUIRE_REAL=1 but there is no prometheus binary on PATH: apt-get install prometheus (scripts/stack up installs it)")
		}
		t.Skip("no prometheus binary on PATH (apt-get install prometheus)")
	}
	d := readDashboard(t)
	ctx := context.Background()
	cfg := testenv.Config(t)
	exporters := map[string]string{} // job → address
	if cfg.PostgresURL != "" {
		cfg.PostgresURL = os.Getenv("PINPIPE_POSTGRES_URL")
		exporters["postgres"] = stackExporter(t, "PINPIPE_STACK_POSTGRES_EXPORTER")
	}
	if len(cfg.CassandraHosts) > 0 {
		cfg.CassandraKeyspace = "pinterest"
		exporters["cassandra"] = stackExporter(t, "PINPIPE_STACK_CASSANDRA_EXPORTER")
	}
	p, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(ctx)
	base := "http://" + p.Addr

	prom := startPrometheus(t, promBin, p.Addr, exporters)

	// Samples for every family: accepted and refused pins, a 404, a query,
	// the stream lane (it stores what was accepted), and a batch run of the
	// day the pins landed on.
	ndjson, _ := synthPins(7, 50)
	postPins(t, base, ndjson)
	resp, err := http.Post(base+"/pins", "application/json", strings.NewReader(`[{"index":"x","unique_id":1,"category":""}]`))
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an invalid pin got %s, want 400", resp.Status)
	}
	getJSON(t, base+"/pins/00000000-0000-4000-8000-000000000000", http.StatusNotFound, nil)
	var raw int
	var dt string
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		recs := readRawZone(t, p.Lake)
		raw = len(recs)
		if raw > 0 {
			dt = pin.DT(recs[0].Timestamp)
		}
		return raw == 50, fmt.Sprintf("the raw zone holds %d of 50 pins", raw)
	})
	run := waitRun(t, base, startRun(t, base, dt, http.StatusAccepted)["id"].(string))
	if run.Status != "succeeded" {
		t.Fatalf("batch run %+v, want succeeded", run)
	}

	// Requests go on while the panels are evaluated, so the rate panels
	// see traffic in their window whatever the machine's pace.
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	go keepTraffic(trafficCtx, base)

	for job, a := range exporters {
		if a == "" {
			continue
		}
		// Two good scrapes, so the rate panels have two samples.
		testenv.Eventually(t, 3*time.Minute, func() (bool, string) {
			v, err := promValues(prom, fmt.Sprintf(`sum_over_time(up{job=%q}[2m])`, job))
			return err == nil && len(v) == 1 && v[0] >= 2, fmt.Sprintf("the %s exporter at %s: good scrapes in 2m = %v, %v", job, a, v, err)
		})
	}
	// Await scrapes that saw the run's gauges.
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		n, err := promValues(prom, `count_over_time(pinpipe_batch_last_run_timestamp_seconds[1m])`)
		return err == nil && len(n) > 0 && n[0] >= 3, fmt.Sprintf("samples of the last run's gauge: %v %v", n, err)
	})

	vars := map[string]string{
		// As Grafana writes a regex value into a PromQL string: escaped,
		// then its backslashes doubled.
		"instance":        strings.ReplaceAll(regexp.QuoteMeta(p.Addr), `\`, `\\`),
		"__rate_interval": "2m",
		"keyspace":        cfg.CassandraKeyspace,
	}
	variable := regexp.MustCompile(`\$\{?(\w+)\}?`)
	checked := 0
	for _, panel := range d.Panels {
		for _, tg := range panel.Targets {
			expr := variable.ReplaceAllStringFunc(tg.Expr, func(m string) string {
				name := variable.FindStringSubmatch(m)[1]
				v, ok := vars[name]
				if !ok {
					t.Fatalf("panel %q query %s uses $%s, which the test does not know", panel.Title, tg.RefID, name)
				}
				return v
			})
			if job := exporterJob(expr); job != "" && exporters[job] == "" {
				t.Logf("EXEMPT panel %q query %s: the %s exporter is not scraped (embedded defaults): %s", panel.Title, tg.RefID, job, expr)
				continue
			}
			testenv.Eventually(t, 30*time.Second, func() (bool, string) {
				vals, err := promValues(prom, expr)
				var refused *refusedError
				if errors.As(err, &refused) {
					t.Fatalf("panel %q query %s: %v", panel.Title, tg.RefID, err)
				} else if err != nil {
					return false, err.Error()
				}
				for _, v := range vals {
					if !math.IsNaN(v) && !math.IsInf(v, 0) {
						return true, ""
					}
				}
				return false, fmt.Sprintf("panel %q query %s returns %d series and no number (%v): %s", panel.Title, tg.RefID, len(vals), vals, expr)
			})
			checked++
		}
	}
	t.Logf("%d panel queries returned series", checked)
}

// stackExporter returns the address in env, failing the test when it is
// unset while real services are required.
func stackExporter(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" && testenv.RequireReal() {
		t.Fatalf("PINPIPE_REQUIRE_REAL=1 but %s is unset: eval \"$(scripts/stack env)\"", env)
	}
	return v
}

// exporterJob returns "postgres" or "cassandra" when expr reads that
// exporter's series, else "".
func exporterJob(expr string) string {
	switch {
	case exporterSeries["postgres"].MatchString(expr):
		return "postgres"
	case exporterSeries["cassandra"].MatchString(expr):
		return "cassandra"
	}
	return ""
}

// exporterSeries match the series names of each exporter (not
// pinpipe_batch_cassandra_…, pinpipe's own).
var exporterSeries = map[string]*regexp.Regexp{
	"postgres":  regexp.MustCompile(`\bpg_`),
	"cassandra": regexp.MustCompile(`\bcassandra_`),
}

// keepTraffic posts a pin and runs a query twice a second until ctx ends.
func keepTraffic(ctx context.Context, base string) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := uint64(1000); ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		body, _ := synthPins(i, 1)
		for _, r := range []struct{ path, ct, body string }{
			{"/pins", "application/x-ndjson", string(body)},
			{"/query", "application/json", `{"sql":"SELECT count(*) FROM pins"}`},
		} {
			req, _ := http.NewRequestWithContext(ctx, "POST", base+r.path, strings.NewReader(r.body))
			req.Header.Set("Content-Type", r.ct)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
}

// startPrometheus runs a Prometheus of the test's own (its own port and
// data directory) that scrapes pinpipe at addr and the exporters every
// second, and returns its base URL once it answers. It stops with the test.
func startPrometheus(t *testing.T, bin, addr string, exporters map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var conf bytes.Buffer
	conf.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	fmt.Fprintf(&conf, "  - job_name: pinpipe\n    static_configs:\n      - targets: [%q]\n", addr)
	for job, a := range exporters {
		if a != "" {
			// Cassandra's JMX agent can take 15 s to answer on a busy machine.
			fmt.Fprintf(&conf, "  - job_name: %s\n    scrape_interval: 30s\n    scrape_timeout: 30s\n    static_configs:\n      - targets: [%q]\n", job, a)
		}
	}
	testenv.Must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), conf.Bytes(), 0o644))
	listen := freeAddr(t)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	testenv.Must(t, err)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	testenv.Must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	prom := "http://" + listen
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus exited: %v\n%s", err, b)
		default:
		}
		v, err := promValues(prom, `up{job="pinpipe"}`)
		return err == nil && len(v) == 1 && v[0] == 1, fmt.Sprintf("up{job=\"pinpipe\"} = %v, %v", v, err)
	})
	return prom
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// promValues evaluates expr now and returns the value of each series (one
// for a scalar). Returns an error when Prometheus refuses the query.
func promValues(prom, expr string) ([]float64, error) {
	resp, err := http.Get(prom + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus: %s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return nil, &refusedError{expr, body.Error}
	}
	var samples [][2]any
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		for _, s := range vec {
			samples = append(samples, s.Value)
		}
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return nil, err
		}
		samples = append(samples, s)
	default:
		return nil, fmt.Errorf("%s gives a %s, want a vector or scalar", expr, body.Data.ResultType)
	}
	out := make([]float64, len(samples))
	for i, s := range samples {
		str, _ := s[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v: %w", expr, s[1], err)
		}
		out[i] = v
	}
	return out, nil
}

// refusedError is a query Prometheus refuses (a syntax error): asking
// again cannot help.
type refusedError struct{ expr, why string }

func (e *refusedError) Error() string { return "prometheus refused " + e.expr + ": " + e.why }
