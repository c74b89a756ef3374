package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/config"
	"pinpipe/ingest"
	"pinpipe/internal/sample"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
	"pinpipe/server"
)

// start runs a whole pinpipe for the test and stops it when the test ends.
func start(t *testing.T, cfg *config.Config) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p
}

type answer struct {
	status      int
	contentType string
	body        []byte
}

func do(t *testing.T, method, url, contentType string, body []byte, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), data}
}

func samplePins(t *testing.T) []byte {
	t.Helper()
	return sample.Pins(t)
}

func compactLines(t *testing.T, ndjson []byte) []string {
	t.Helper()
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(ndjson), []byte("\n")) {
		var c bytes.Buffer
		testenv.Must(t, json.Compact(&c, line))
		out = append(out, c.String())
	}
	sort.Strings(out)
	return out
}

func TestPostPinsProducesEverySamplePinKeyedByUniqueID(t *testing.T) {
	cfg := testenv.Config(t)
	p := start(t, cfg)
	sample := samplePins(t)

	a := do(t, "POST", "http://"+p.Addr+"/pins", "application/x-ndjson", sample)
	if a.status != http.StatusAccepted || strings.TrimSpace(string(a.body)) != `{"accepted":10}` {
		t.Fatalf("POST /pins = %d %s, want 202 {\"accepted\":10}", a.status, a.body)
	}
	msgs := testenv.ReadTopic(t, p.Brokers, cfg.Topic)
	var got []string
	for _, m := range msgs {
		var pn struct {
			UniqueID string `json:"unique_id"`
		}
		testenv.Must(t, json.Unmarshal(m.Value, &pn))
		if string(m.Key) != pn.UniqueID {
			t.Errorf("record at %d/%d has key %q, want its unique_id %q", m.Partition, m.Offset, m.Key, pn.UniqueID)
		}
		got = append(got, string(m.Value))
	}
	sort.Strings(got)
	want := compactLines(t, sample)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("topic holds\n%s\nwant the sample pins\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	metrics := do(t, "GET", "http://"+p.Addr+"/metrics", "", nil)
	if !bytes.Contains(metrics.body, []byte("pinpipe_ingest_pins_accepted_total 10\n")) {
		t.Errorf("/metrics lacks pinpipe_ingest_pins_accepted_total 10")
	}
}

func TestPostPinsAcceptsOneObjectAndAnArray(t *testing.T) {
	cfg := testenv.Config(t)
	p := start(t, cfg)
	lines := bytes.Split(bytes.TrimSpace(samplePins(t)), []byte("\n"))

	one := do(t, "POST", "http://"+p.Addr+"/pins", "application/json", lines[0])
	arr := do(t, "POST", "http://"+p.Addr+"/pins", "application/json", append(append([]byte("["), bytes.Join(lines[1:4], []byte(","))...), ']'))
	if one.status != 202 || strings.TrimSpace(string(one.body)) != `{"accepted":1}` {
		t.Errorf("one object: %d %s", one.status, one.body)
	}
	if arr.status != 202 || strings.TrimSpace(string(arr.body)) != `{"accepted":3}` {
		t.Errorf("array: %d %s", arr.status, arr.body)
	}
	if n := len(testenv.ReadTopic(t, p.Brokers, cfg.Topic)); n != 4 {
		t.Errorf("topic holds %d records, want 4", n)
	}
}

func TestPostPinsRefusesEachMalformedRequestAndProducesNothing(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.MaxBodyBytes = 4096
	p := start(t, cfg)
	good := `{"index":1,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		errors      []pin.FieldError // nil: not checked
		detail      string           // a part of the detail
	}{
		{"bad JSON", "application/json", `{"index":1,`, 400, nil, "JSON"},
		{"wrong type", "application/json", `{"index":"7","unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`, 400,
			[]pin.FieldError{{Record: 0, Field: "index"}}, "index"},
		{"missing required field", "application/json", `{"index":1,"category":"travel"}`, 400,
			[]pin.FieldError{{Record: 0, Field: "unique_id"}}, "unique_id"},
		{"one bad record among good ones", "application/json", "[" + good + `,{"index":2,"unique_id":"not-a-uuid","category":"travel"},` + good + "]", 400,
			[]pin.FieldError{{Record: 1, Field: "unique_id"}}, "nothing was accepted"},
		{"bad NDJSON line", "application/x-ndjson", good + "\n" + good + "\n{oops}\n", 400,
			[]pin.FieldError{{Record: 2, Line: 3}}, "line 3"},
		{"empty body", "application/json", ``, 400, nil, "no pins"},
		{"oversized body", "application/x-ndjson", strings.Repeat(good+"\n", 100), 413, nil, "PINPIPE_MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "POST", "http://"+p.Addr+"/pins", tt.contentType, []byte(tt.body))
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if a.contentType != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", a.contentType)
			}
			var prob struct {
				Status int              `json:"status"`
				Detail string           `json:"detail"`
				Errors []pin.FieldError `json:"errors"`
			}
			testenv.Must(t, json.Unmarshal(a.body, &prob))
			if prob.Status != tt.status || !strings.Contains(prob.Detail, tt.detail) {
				t.Errorf("problem %+v, want status %d and a detail mentioning %q", prob, tt.status, tt.detail)
			}
			if tt.errors != nil {
				if len(prob.Errors) != len(tt.errors) {
					t.Fatalf("errors %+v, want %d", prob.Errors, len(tt.errors))
				}
				for i, want := range tt.errors {
					got := prob.Errors[i]
					if got.Record != want.Record || got.Field != want.Field || (want.Line != 0 && got.Line != want.Line) || got.Message == "" {
						t.Errorf("error %d = %+v, want record %d field %q line %d with a message", i, got, want.Record, want.Field, want.Line)
					}
				}
			}
		})
	}
	if n := len(testenv.ReadTopic(t, p.Brokers, cfg.Topic)); n != 0 {
		t.Errorf("topic holds %d records after refused requests, want 0", n)
	}
}

func TestPostPinsAnswers503WithRetryAfterWhenKafkaIsUnreachable(t *testing.T) {
	reg := prometheus.NewRegistry()
	prod := ingest.NewProducer([]string{"127.0.0.1:1"}, "pins", reg)
	defer prod.Close()
	srv := server.New(server.Options{Log: testenv.Log(t), Registry: reg, MaxBodyBytes: 1 << 20, Producer: prod})
	body := `{"index":1,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`
	req, _ := http.NewRequest("POST", "/pins", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{header: http.Header{}}
	srv.ServeHTTP(rec, req)
	if rec.status != http.StatusServiceUnavailable || rec.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After: %s", rec.status, rec.header.Get("Retry-After"), rec.body.String())
	}
	if !strings.Contains(rec.body.String(), "Kafka") || !strings.Contains(rec.body.String(), "Retry") {
		t.Errorf("detail should name Kafka and say to retry: %s", rec.body.String())
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestAPIKeyGuardsEveryRouteButHealthMetricsDocsAndDashboard(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.APIKey = "s3cret"
	p := start(t, cfg)
	base := "http://" + p.Addr
	body := []byte(`{"index":1,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`)
	for _, path := range []string{"/stream/stats", "/batch/runs", "/query?sql=select+1"} {
		if a := do(t, "GET", base+path, "", nil); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a key = %d, want 401", path, a.status)
		}
	}
	if a := do(t, "POST", base+"/pins", "application/json", body); a.status != http.StatusUnauthorized || !strings.Contains(string(a.body), "PINPIPE_API_KEY") {
		t.Errorf("POST /pins without a key = %d %s, want 401 naming PINPIPE_API_KEY", a.status, a.body)
	}
	if a := do(t, "POST", base+"/pins", "application/json", body, "Authorization", "Bearer wrong"); a.status != http.StatusUnauthorized {
		t.Errorf("POST /pins with a wrong key = %d, want 401", a.status)
	}
	if a := do(t, "POST", base+"/pins", "application/json", body, "Authorization", "Bearer s3cret"); a.status != http.StatusAccepted {
		t.Errorf("POST /pins with the key = %d %s, want 202", a.status, a.body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/", "/openapi.json"} {
		if a := do(t, "GET", base+path, "", nil); a.status != http.StatusOK {
			t.Errorf("GET %s without a key = %d, want 200: %s", path, a.status, a.body)
		}
	}
}

func TestAcceptedPinsSurviveARestart(t *testing.T) {
	cfg := testenv.Config(t)
	if os.Getenv("PINPIPE_KAFKA_BROKERS") == "" {
		// pinpipe's own embedded broker, persisting under the data dir.
		cfg.KafkaBrokers = nil
	}
	p := start(t, cfg)
	a := do(t, "POST", "http://"+p.Addr+"/pins", "application/x-ndjson", samplePins(t))
	if a.status != http.StatusAccepted {
		t.Fatalf("POST /pins = %d %s", a.status, a.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Must(t, p.Stop(ctx))

	again := start(t, cfg)
	if n := len(testenv.ReadTopic(t, again.Brokers, cfg.Topic)); n != 10 {
		t.Fatalf("after a restart the topic holds %d records, want 10", n)
	}
}

func TestPostPinsRefusesAFieldLongerThanMaxFieldBytes(t *testing.T) {
	base, f := serve(t, server.Options{MaxFieldBytes: 100}, nil)
	long := strings.Repeat("x", 101)
	body := `[{"index":1,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"},` +
		`{"index":2,"unique_id":"0a7e1f4c-2f5e-4c8e-9d7a-3b1c2d4e5f60","category":"travel","title":"` + long + `"}]`
	a := send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: body})
	detail := problemDetail(t, a, 400)
	var p struct {
		Errors []pin.FieldError `json:"errors"`
	}
	testenv.Must(t, json.Unmarshal(a.body, &p))
	if len(p.Errors) != 1 || p.Errors[0].Record != 1 || p.Errors[0].Field != "title" ||
		!strings.Contains(p.Errors[0].Message, "PINPIPE_MAX_FIELD_BYTES") {
		t.Fatalf("errors %+v (detail %q), want one for record 1's title naming PINPIPE_MAX_FIELD_BYTES", p.Errors, detail)
	}
	if n := f.producer.count(); n != 0 {
		t.Fatalf("%d pins produced from a refused request", n)
	}
	short := strings.Replace(body, long, long[:100], 1)
	if a := send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: short}); a.status != 202 {
		t.Fatalf("a title of exactly the limit: %d %s, want 202", a.status, a.body)
	}
}
