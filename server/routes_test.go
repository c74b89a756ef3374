package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/server"
)

// Route tests over fakes: the real server, its routing, errors and
// metrics, with each lane a fake that records what reached it.

func cleaned(id, category string, followers int64) pin.Cleaned {
	return pin.Cleaned{IDIndex: followers, Category: category, UniqueID: id, FollowerCount: &followers, Tags: []string{},
		IngestedAt: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}
}

func decode[T any](t *testing.T, a answer, status int) T {
	t.Helper()
	var v T
	if a.status != status || !strings.HasPrefix(a.contentType, "application/json") {
		t.Fatalf("answer %d %q %s, want %d JSON", a.status, a.contentType, a.body, status)
	}
	testenv.Must(t, json.Unmarshal(a.body, &v))
	return v
}

func TestServingRoutesAnswerFromTheServingStore(t *testing.T) {
	sv := &fakeServing{pins: []pin.Cleaned{cleaned("a", "travel", 9), cleaned("b", "travel", 5), cleaned("c", "art", 1)}}
	base, _ := serve(t, server.Options{Serving: sv}, nil)

	if got := decode[pin.Cleaned](t, send(t, base, req{method: "GET", path: "/pins/b"}), 200); got.UniqueID != "b" || *got.FollowerCount != 5 {
		t.Errorf("GET /pins/b = %+v", got)
	}
	if d := problemDetail(t, send(t, base, req{method: "GET", path: "/pins/zzz"}), 404); !strings.Contains(d, "zzz") {
		t.Errorf("GET /pins/zzz: detail %q does not name the pin", d)
	}

	top := decode[[]pin.Cleaned](t, send(t, base, req{method: "GET", path: "/categories/travel/top?n=1&date=2026-11-24"}), 200)
	if len(top) != 1 || top[0].UniqueID != "a" {
		t.Errorf("GET /categories/travel/top?n=1 = %+v, want pin a", top)
	}
	if a := send(t, base, req{method: "GET", path: "/categories/none/top"}); a.status != 200 || strings.TrimSpace(string(a.body)) != "[]" {
		t.Errorf("GET /categories/none/top = %d %s, want 200 []", a.status, a.body)
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	if got, want := sv.asked(), []string{"travel 2026-11-24 1", "none " + yesterday + " 10"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the store was asked %q, want %q (date defaults to yesterday, n to 10)", got, want)
	}
	for _, path := range []string{"/categories/travel/top?date=24-11-2026", "/categories/travel/top?n=0", "/categories/travel/top?n=1001"} {
		problemDetail(t, send(t, base, req{method: "GET", path: path}), 400)
	}
	if len(sv.asked()) != 2 {
		t.Errorf("refused requests reached the store: %q", sv.asked())
	}
}

func TestBatchRoutesStartListAndShowRuns(t *testing.T) {
	base, f := serve(t, server.Options{}, nil)

	a := send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json", body: `{"date":"2026-11-24"}`})
	run := decode[pin.Run](t, a, 202)
	if run.Date != "2026-11-24" || run.Trigger != pin.TriggerAPI || run.Status != pin.RunQueued {
		t.Fatalf("POST /batch/runs = %+v", run)
	}
	// With no body the run is for yesterday.
	decode[pin.Run](t, send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json"}), 202)
	if d := problemDetail(t, send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json", body: `{"date":`}), 400); !strings.Contains(d, `{"date":"2026-11-24"}`) {
		t.Errorf("a malformed body: detail %q does not show a good one", d)
	}
	if f.batch.count() != 2 {
		t.Fatalf("%d runs reached the batch lane, want 2", f.batch.count())
	}

	if got := decode[pin.Run](t, send(t, base, req{method: "GET", path: "/batch/runs/" + run.ID}), 200); got != run {
		t.Errorf("GET /batch/runs/%s = %+v, want %+v", run.ID, got, run)
	}
	problemDetail(t, send(t, base, req{method: "GET", path: "/batch/runs/nope"}), 404)
	if runs := decode[[]pin.Run](t, send(t, base, req{method: "GET", path: "/batch/runs?limit=5"}), 200); len(runs) != 2 || runs[0] != run {
		t.Errorf("GET /batch/runs = %+v", runs)
	}
	problemDetail(t, send(t, base, req{method: "GET", path: "/batch/runs?limit=x"}), 400)
}

func TestBatchRoutesBackfillARangeAndListTheDays(t *testing.T) {
	base, f := serve(t, server.Options{}, nil)
	b := decode[pin.Backfill](t, send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json",
		body: `{"from":"2026-11-01","to":"2026-11-03"}`}), 202)
	if len(b.Runs) != 3 || b.Runs[0].Date != "2026-11-01" || b.Runs[2].Date != "2026-11-03" || b.Runs[1].Trigger != pin.TriggerAPI {
		t.Fatalf("POST /batch/runs with a range = %+v, want a run for each of 3 days", b)
	}
	for _, body := range []string{`{"from":"2026-11-01"}`, `{"to":"2026-11-01"}`, `{"date":"2026-11-01","from":"2026-11-01","to":"2026-11-02"}`} {
		if d := problemDetail(t, send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json", body: body}), 400); !strings.Contains(d, `"from"`) {
			t.Errorf("%s: detail %q does not say how to give a range", body, d)
		}
	}
	problemDetail(t, send(t, base, req{method: "POST", path: "/batch/runs", contentType: "application/json", body: `{"from":"2026-11-03","to":"2026-11-01"}`}), 400)
	if f.batch.count() != 3 {
		t.Fatalf("%d runs reached the batch lane, want 3", f.batch.count())
	}

	days := decode[[]pin.BatchDay](t, send(t, base, req{method: "GET", path: "/batch/days?n=2"}), 200)
	if len(days) != 2 || days[0].Day != "2026-11-03" || !days[0].Stale || days[0].Run == nil || days[0].Run.Trigger != pin.TriggerAPI {
		t.Fatalf("GET /batch/days?n=2 = %+v", days)
	}
	problemDetail(t, send(t, base, req{method: "GET", path: "/batch/days?n=91"}), 400)
}

func TestBatchRoutesListNoRunsAsAnEmptyList(t *testing.T) {
	base, _ := serve(t, server.Options{}, nil)
	if a := send(t, base, req{method: "GET", path: "/batch/runs"}); a.status != 200 || strings.TrimSpace(string(a.body)) != "[]" {
		t.Errorf("GET /batch/runs with no runs = %d %s, want 200 []", a.status, a.body)
	}
}

func TestStreamStatsAnswersTheLanesView(t *testing.T) {
	st := &fakeStream{pins: []pin.Cleaned{cleaned("a", "travel", 1), cleaned("b", "travel", 2), cleaned("c", "art", 3)}}
	base, _ := serve(t, server.Options{Stream: st}, nil)
	got := decode[pin.Stats](t, send(t, base, req{method: "GET", path: "/stream/stats"}), 200)
	if got.Total != 3 || got.ByCategory["travel"] != 2 || got.ByCategory["art"] != 1 || got.Lag != 3 || got.Freshness.P99 != 0.9 {
		t.Errorf("GET /stream/stats = %+v", got)
	}
	recent := decode[[]pin.Cleaned](t, send(t, base, req{method: "GET", path: "/stream/recent?n=2"}), 200)
	if len(recent) != 2 || recent[0].UniqueID != "a" {
		t.Errorf("GET /stream/recent?n=2 = %+v", recent)
	}
}

func TestQueryRoutesAnswerJSONAndCSV(t *testing.T) {
	base, f := serve(t, server.Options{}, nil)
	res := decode[pin.QueryResponse](t, send(t, base, req{method: "POST", path: "/query", contentType: "application/json",
		body: `{"sql":"SELECT 1","limit":2}`}), 200)
	if len(res.Columns) != 2 || res.Columns[0] != (pin.ResultColumn{Name: "i", Type: "VARCHAR"}) || res.RowCount != 2 || !res.Truncated {
		t.Errorf("POST /query = %+v, want 2 of 3 rows, truncated", res)
	}
	a := send(t, base, req{method: "GET", path: "/query?sql=SELECT+2&format=csv"})
	if a.status != 200 || a.contentType != "text/csv; charset=utf-8" || string(a.body) != "i,v\n0,x\n1,x\n2,x\n" {
		t.Errorf("GET /query?format=csv = %d %q %q", a.status, a.contentType, a.body)
	}
	if got := f.query.received(); fmt.Sprint(got) != "[SELECT 1 SELECT 2]" {
		t.Errorf("the query lane got %q", got)
	}
	problemDetail(t, send(t, base, req{method: "GET", path: "/query"}), 400)
	problemDetail(t, send(t, base, req{method: "GET", path: fmt.Sprintf("/query?sql=x&limit=%d", pin.QueryMaxLimit+1)}), 400)
}

func TestProbesMetricsAndTheOpenAPIDocument(t *testing.T) {
	var down error
	checks := []server.Check{
		{Name: "kafka", Embedded: true, Check: func(context.Context) error { return nil }},
		{Name: "postgres", Check: func(context.Context) error { return down }},
	}
	base, _ := serve(t, server.Options{Checks: checks}, nil)

	if got := decode[map[string]string](t, send(t, base, req{method: "GET", path: "/healthz"}), 200); got["status"] != "ok" {
		t.Errorf("GET /healthz = %v", got)
	}
	type ready struct {
		Status string                        `json:"status"`
		Checks map[string]server.CheckResult `json:"checks"`
	}
	r := decode[ready](t, send(t, base, req{method: "GET", path: "/readyz"}), 200)
	if r.Status != "ok" || r.Checks["kafka"].Default != "embedded" || r.Checks["postgres"].Default != "external" || !r.Checks["postgres"].OK {
		t.Errorf("GET /readyz with every check ok = %+v", r)
	}
	down = errors.New("connection refused")
	r = decode[ready](t, send(t, base, req{method: "GET", path: "/readyz"}), 503)
	if r.Status != "degraded" || r.Checks["postgres"].OK || !r.Checks["kafka"].OK {
		t.Errorf("GET /readyz with postgres down = %+v", r)
	}

	doc := decode[struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}](t, send(t, base, req{method: "GET", path: "/openapi.json"}), 200)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/pins/{unique_id}"] == nil {
		t.Errorf("GET /openapi.json: openapi %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}

	m := send(t, base, req{method: "GET", path: "/metrics"})
	if m.status != 200 || !strings.Contains(string(m.body), `pinpipe_http_requests_total{code="503",route="GET /readyz"} 1`) {
		t.Errorf("GET /metrics = %d, without the failed /readyz counted:\n%s", m.status, m.body)
	}
	if a := send(t, base, req{method: "GET", path: "/"}); a.status != 200 || !strings.HasPrefix(a.contentType, "text/html") {
		t.Errorf("GET / = %d %q, want the dashboard", a.status, a.contentType)
	}
}

// logBuffer is a slog handler's output, read while the server writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestEachErrorCodeMapsToOneStatusAndInternalErrorsKeepTheirCauseInTheLog(t *testing.T) {
	var logs logBuffer
	sv := &fakeServing{}
	base, _ := serve(t, server.Options{Serving: sv, Log: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	for _, c := range []struct {
		err         error
		status      int
		detail      string
		fieldErrors bool
	}{
		{pin.Errorf(pin.EINVALID, "bad"), 400, "bad", false},
		{pin.Errorf(pin.EUNAUTHORIZED, "who"), 401, "who", false},
		{pin.Errorf(pin.EFORBIDDEN, "no"), 403, "no", false},
		{pin.Errorf(pin.ENOTFOUND, "gone"), 404, "gone", false},
		{pin.Errorf(pin.ECONFLICT, "busy"), 409, "busy", false},
		{pin.Errorf(pin.ETOOLARGE, "big"), 413, "big", false},
		{pin.Errorf(pin.ETOOMANY, "many"), 429, "many", false},
		{pin.Errorf(pin.EUNAVAILABLE, "down"), 503, "down", false},
		{pin.Errorf(pin.ETIMEOUT, "slow"), 504, "slow", false},
		// Wrapped, as the lanes return them: errors.As finds the code.
		{fmt.Errorf("read pin: %w", pin.Errorf(pin.EUNAVAILABLE, "down")), 503, "down", false},
		{&pin.Error{Code: pin.EINVALID, Message: "bad", Detail: []pin.FieldError{{Message: "m"}}}, 400, "bad", true},
		{fmt.Errorf("parse: %w", &pin.Error{Code: pin.EINVALID, Message: "bad", Detail: []pin.FieldError{{Message: "m"}}}), 400, "bad", true},
		{errors.New("open /var/lib/secret: permission denied"), 500, "Internal error.", false},
		{pin.Errorf(pin.EINTERNAL, "stand-in file /var/lib/x is corrupt"), 500, "Internal error.", false},
		{pin.Errorf("made_up", "a code nobody maps"), 500, "Internal error.", false},
	} {
		sv.err = c.err
		a := send(t, base, req{method: "GET", path: "/pins/a"})
		if d := problemDetail(t, a, c.status); d != c.detail {
			t.Errorf("%v: detail %q, want %q", c.err, d, c.detail)
		}
		var p server.Problem
		testenv.Must(t, json.Unmarshal(a.body, &p))
		want := pin.ErrorCode(c.err)
		if c.status == 500 {
			want = pin.EINTERNAL
		}
		if p.Type != "https://pinpipe.dev/problems/"+want {
			t.Errorf("%v: type %q, want code %s", c.err, p.Type, want)
		}
		if (p.Errors != nil) != c.fieldErrors {
			t.Errorf("%v: errors %v, want them only with field errors", c.err, p.Errors)
		}
	}
	for _, cause := range []string{"/var/lib/secret: permission denied", "/var/lib/x is corrupt"} {
		if !strings.Contains(logs.String(), cause) {
			t.Errorf("the log lacks the internal error's cause %q:\n%s", cause, logs.String())
		}
	}
	if strings.Contains(logs.String(), "code=unavailable") {
		t.Errorf("a 503 was logged as a failed request:\n%s", logs.String())
	}
}

func TestAClientThatGoesAwayIsNeitherLoggedNorCountedAsAServerError(t *testing.T) {
	var logs logBuffer
	sv := &fakeServing{wait: true}
	base, _ := serve(t, server.Options{Serving: sv, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, "GET", base+"/categories/travel/top", nil)
	testenv.Must(t, err)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hr)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) { return len(sv.asked()) == 1, "the request has not reached the store" })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the canceled request: %v", err)
	}
	const counted = `pinpipe_http_requests_total{code="499",route="GET /categories/{category}/top"} 1`
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		m := send(t, base, req{method: "GET", path: "/metrics"})
		return strings.Contains(string(m.body), counted), "the metrics do not count it as 499 yet"
	})
	if m := send(t, base, req{method: "GET", path: "/metrics"}); strings.Contains(string(m.body), `code="503",route="GET /categories`) {
		t.Errorf("the client's going away was counted as a 503")
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the client's going away was logged as a failure:\n%s", logs.String())
	}
}
