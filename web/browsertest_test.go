package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// chromiumHint is what a person without a browser is told to do.
const chromiumHint = "install Debian's chromium (scripts/test does): apt-get install -y chromium"

// dashboard is a running pinpipe holding a known set of pins in every
// zone: the stream lane's Postgres view, the raw zone and, after a batch
// run for their day, the curated zone.
type dashboard struct {
	base  string           // http://host:port
	total int              // pins posted
	want  map[string]int64 // pins posted per category
}

// startDashboard starts a real pinpipe (real services when the stack's
// environment is present, else the embedded defaults), posts n synthetic
// pins, and returns once the stream view, the raw view and the curated
// view (after a batch run for the pins' day) each count exactly those pins.
func startDashboard(t *testing.T, n int) *dashboard {
	t.Helper()
	ctx := context.Background()
	p, err := pipeline.Start(ctx, testenv.Config(t), testenv.Log(t))
	if err != nil {
		t.Fatalf("pipeline.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("pipeline.Stop: %v", err)
		}
	})
	d := &dashboard{base: "http://" + p.Addr, total: n, want: map[string]int64{}}

	body := synth.New(42).NDJSON(n)
	for line := range bytes.Lines(body) {
		var pin struct {
			Category string `json:"category"`
		}
		testenv.Must(t, json.Unmarshal(line, &pin))
		d.want[pin.Category]++
	}
	firstDay := time.Now().UTC().Format(time.DateOnly)
	var accepted struct {
		Accepted int `json:"accepted"`
	}
	if status := d.call(t, "POST", "/pins", "application/x-ndjson", body, &accepted); status != http.StatusAccepted || accepted.Accepted != n {
		t.Fatalf("POST /pins = %d %+v, want 202 with accepted %d", status, accepted, n)
	}
	lastDay := time.Now().UTC().Format(time.DateOnly)

	testenv.Eventually(t, time.Minute, func() (bool, string) {
		var stats struct {
			Total int64 `json:"total"`
		}
		status := d.call(t, "GET", "/stream/stats", "", nil, &stats)
		return status == http.StatusOK && stats.Total == int64(n), fmt.Sprintf("GET /stream/stats = %d, total %d, want %d", status, stats.Total, n)
	})
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		rows, err := d.query(t, "SELECT count(*) FROM pins_raw")
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(rows) == fmt.Sprintf("[[%d]]", n), fmt.Sprintf("pins_raw count = %v, want %d", rows, n)
	})
	// A run for the day the pins were accepted on; two runs if the posting
	// straddled midnight UTC.
	for _, day := range slices.Compact([]string{firstDay, lastDay}) {
		d.runBatch(t, day)
	}
	testenv.Eventually(t, time.Minute, func() (bool, string) {
		rows, err := d.query(t, "SELECT category, count(*) FROM pins GROUP BY 1")
		if err != nil {
			return false, err.Error()
		}
		got := map[string]int64{}
		for _, r := range rows {
			var c int64
			fmt.Sscan(fmt.Sprint(r[1]), &c)
			got[fmt.Sprint(r[0])] = c
		}
		return fmt.Sprint(got) == fmt.Sprint(d.want), fmt.Sprintf("curated counts %v, want %v", got, d.want)
	})
	return d
}

// runBatch starts a batch run for day through the API and waits for it to
// succeed; a failed run fails the test with the run's error.
func (d *dashboard) runBatch(t *testing.T, day string) {
	t.Helper()
	var run struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	req, _ := json.Marshal(map[string]string{"date": day})
	if status := d.call(t, "POST", "/batch/runs", "application/json", req, &run); status != http.StatusAccepted || run.ID == "" {
		t.Fatalf("POST /batch/runs {date: %s} = %d %+v, want 202 with an id", day, status, run)
	}
	testenv.Eventually(t, 2*time.Minute, func() (bool, string) {
		status := d.call(t, "GET", "/batch/runs/"+url.PathEscape(run.ID), "", nil, &run)
		if run.Status == "failed" {
			t.Fatalf("batch run %s for %s failed: %s", run.ID, day, run.Error)
		}
		return status == http.StatusOK && run.Status == "succeeded", fmt.Sprintf("batch run %s = %d, status %q", run.ID, status, run.Status)
	})
}

// query runs sql through POST /query and returns its rows, numbers as
// json.Number. Returns an error carrying the status and body when the
// answer is not 200.
func (d *dashboard) query(t *testing.T, sql string) ([][]any, error) {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"sql": sql})
	resp, err := http.Post(d.base+"/query", "application/json", bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("POST /query %q: %w", sql, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /query %q = %d: %s", sql, resp.StatusCode, raw)
	}
	var out struct {
		Rows [][]any `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("POST /query %q: decode %s: %w", sql, raw, err)
	}
	return out.Rows, nil
}

// call sends one request and decodes a JSON answer into out when the
// status is 2xx. Returns the status; a transport error fails the test.
func (d *dashboard) call(t *testing.T, method, path, contentType string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, d.base+path, bytes.NewReader(body))
	testenv.Must(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	} else if resp.StatusCode/100 != 2 {
		t.Logf("%s %s = %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return resp.StatusCode
}

// chromium returns the path of Debian's chromium. Without one it skips the
// test, or fails it when PINPIPE_REQUIRE_REAL=1.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.RequireReal() {
		t.Fatal("no chromium on this machine: " + chromiumHint)
	}
	t.Skip("no chromium on this machine: " + chromiumHint)
	return ""
}

// newBrowser starts a headless chromium with a fresh profile that stops
// when the test ends, and returns its context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; its context must have no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v (%s)", err, chromiumHint)
	}
	return ctx
}

// tab is one browser tab and what its page wrote to the console.
type tab struct {
	ctx context.Context
	mu  sync.Mutex
	log []chromedp.ConsoleMessage
}

// newTab opens a tab in the browser and records its console from the
// start; the tab closes when the test ends.
func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	tb := &tab{ctx: ctx}
	messages := chromedp.Console(ctx) // opens the tab and subscribes at once
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.log = append(tb.log, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return tb
}

// do runs the steps in the tab, each group bounded by timeout, and fails
// the test naming what was being done.
func (tb *tab) do(t *testing.T, what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the tab and returns its value.
func eval[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// problems returns what the page wrote that a working page never writes:
// uncaught exceptions, console.error and console.warn calls (app.js warns
// about its own bugs), and browser log errors such as a failed load, except
// the expected answers to requests for paths in allowed (such as the 403 of
// a forbidden query).
func (tb *tab) problems(allowed ...string) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.log {
		bad := m.IsException() ||
			(m.Source == "" && (m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning)) ||
			(m.Source != "" && m.Type == chromedp.ConsoleError)
		if bad && m.Source == "network" {
			if u, err := url.Parse(m.URL); err == nil && slices.Contains(allowed, u.Path) {
				bad = false
			}
		}
		if bad {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
		}
	}
	return out
}

// saveArtifact writes a file under artifacts/ at the repository root
// (gitignored), where it outlives the test, and returns its path.
func saveArtifact(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir, err := os.Getwd()
	testenv.Must(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("artifacts: no go.mod above the test's directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "artifacts", name)
	testenv.Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	testenv.Must(t, os.WriteFile(path, data, 0o644))
	return path
}

// cellsText reads a table's body as trimmed cell texts, row by row.
const cellsText = `[...document.querySelectorAll(%q)].map((tr) => [...tr.cells].map((td) => td.textContent.trim()))`

// digits drops grouping separators from a formatted integer ("1,234" → "1234").
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
