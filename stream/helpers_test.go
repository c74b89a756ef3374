package stream_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// start runs a pinpipe for the test and stops it at the end (Stop is safe
// to call earlier).
func start(t *testing.T, cfg *config.Config) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	testenv.Must(t, err)
	t.Cleanup(func() { stop(t, p) })
	return p
}

func stop(t *testing.T, p *pipeline.Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// pins returns n synthetic pins as JSON objects.
func pins(g *synth.Generator, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b, err := json.Marshal(g.Next())
		if err != nil {
			panic(err)
		}
		out[i] = b
	}
	return out
}

// post sends the pins as one JSON array and returns the response status.
func post(addr string, objs [][]byte) (int, error) {
	body := append([]byte("["), bytes.Join(objs, []byte(","))...)
	body = append(body, ']')
	resp, err := http.Post("http://"+addr+"/pins", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// mustPost posts until pinpipe accepts, as a client heeding 503's
// Retry-After would (a fresh topic may not have its leaders yet). A retried
// request may have been produced in part, so the topic can hold more
// records than were posted.
func mustPost(t *testing.T, addr string, objs [][]byte) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		code, err := post(addr, objs)
		return err == nil && code == http.StatusAccepted, fmt.Sprintf("POST /pins: status %d, %v", code, err)
	})
}

// getJSON decodes GET addr+path into v and returns the status.
func getJSON(t *testing.T, addr, path string, v any) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	testenv.Must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusServiceUnavailable {
		testenv.Must(t, json.NewDecoder(resp.Body).Decode(v))
	}
	return resp.StatusCode
}

func stats(t *testing.T, addr string) (pin.Stats, bool) {
	t.Helper()
	var st pin.Stats
	return st, getJSON(t, addr, "/stream/stats", &st) == http.StatusOK
}

func recent(t *testing.T, addr string, n int) []pin.Cleaned {
	t.Helper()
	var out []pin.Cleaned
	if code := getJSON(t, addr, fmt.Sprintf("/stream/recent?n=%d", n), &out); code != http.StatusOK {
		t.Fatalf("GET /stream/recent: status %d", code)
	}
	return out
}

// postgresReady returns /readyz's verdict on postgres.
func postgresReady(t *testing.T, addr string) (ok bool, detail string) {
	t.Helper()
	var r struct {
		Checks map[string]struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	getJSON(t, addr, "/readyz", &r)
	c, found := r.Checks["postgres"]
	if !found {
		return false, "no postgres check"
	}
	return c.OK, c.Detail
}

// metric returns the value of a counter or gauge of reg, summed over its
// series (partitions); 0 when absent.
func metric(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

// openStore opens the lane's database for inspection: the real Postgres,
// or the embedded stand-in's file (only once its pinpipe has stopped).
func openStore(t *testing.T, cfg *config.Config) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", cfg.PostgresURL
	if dsn == "" {
		driver, dsn = "duckdb", filepath.Join(cfg.DataDir, "postgres", "stream.duckdb")
	}
	db, err := sql.Open(driver, dsn)
	testenv.Must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// assertAggregatesMatchRows checks that both aggregate tables equal counts
// over pinterest.pins, row for row.
func assertAggregatesMatchRows(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT category, count(*) AS n FROM pinterest.pins GROUP BY category) a
		 FULL JOIN (SELECT category, pins FROM pinterest.pins_by_category WHERE pins <> 0) b USING (category)
		 WHERE a.n IS DISTINCT FROM b.pins`,
		`SELECT count(*) FROM (SELECT date_trunc('minute', ingested_at) AS minute, count(*) AS n FROM pinterest.pins GROUP BY 1) a
		 FULL JOIN (SELECT minute, pins FROM pinterest.pins_by_minute WHERE pins <> 0) b USING (minute)
		 WHERE a.n IS DISTINCT FROM b.pins`,
	} {
		if n := count(t, db, q); n != 0 {
			t.Errorf("%d aggregate rows disagree with pinterest.pins: %s", n, q)
		}
	}
}

// expected returns the cleaned pin of a posted object, lineage unset.
func expected(t *testing.T, obj []byte) pin.Cleaned {
	t.Helper()
	p, err := pin.Validate(obj)
	testenv.Must(t, err)
	return pin.Clean(p, pin.Lineage{})
}

// withoutLineage returns c with its lineage fields zeroed.
func withoutLineage(c pin.Cleaned) pin.Cleaned {
	c.IngestedAt, c.KafkaPartition, c.KafkaOffset = time.Time{}, 0, 0
	return c
}
