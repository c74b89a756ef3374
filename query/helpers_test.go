package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
	"pinpipe/query"
	"pinpipe/server"
	"pinpipe/synth"
)

// stack is a query lane under test: a real lake (S3 server), the mirror,
// the engine, and pinpipe's HTTP layer in front of them.
type stack struct {
	t        testing.TB
	s3       lake.Options
	lake     *lake.Store
	mirror   *query.Mirror
	engine   *query.Engine
	srv      *httptest.Server
	registry *prometheus.Registry
	dataDir  string
}

// newStack starts a query lane over a new bucket. tweak, when not nil,
// adjusts the engine's options before it opens.
func newStack(t testing.TB, tweak func(*query.Options)) *stack {
	t.Helper()
	o := testenv.S3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := lake.Open(ctx, o)
	testenv.Must(t, err)
	st := &stack{t: t, s3: o, lake: store, registry: prometheus.NewRegistry(), dataDir: t.TempDir()}
	st.mirror, err = query.NewMirror(store, query.MirrorOptions{
		Dir: filepath.Join(st.dataDir, "mirror"), MaxBytes: 1 << 30, Staleness: time.Millisecond,
		Registry: st.registry, Log: testenv.Log(t),
	})
	testenv.Must(t, err)
	t.Cleanup(func() { st.mirror.Close() })
	opts := query.Options{
		Mirror: st.mirror, Bucket: o.Bucket, TempDir: filepath.Join(st.dataDir, "spill"),
		Timeout: 20 * time.Second, MemoryLimit: "1GB", Threads: 2, MaxConcurrent: 4,
		Registry: st.registry, Log: testenv.Log(t),
	}
	if tweak != nil {
		tweak(&opts)
	}
	st.engine, err = query.Open(ctx, opts)
	testenv.Must(t, err)
	t.Cleanup(func() { st.engine.Close() })
	st.srv = httptest.NewServer(server.New(server.Options{
		Log: testenv.Log(t), Registry: prometheus.NewRegistry(), Query: st.engine, MaxBodyBytes: 1 << 20,
	}))
	t.Cleanup(st.srv.Close)
	return st
}

// answer is a decoded POST /query response: the JSON answer, or the
// problem.
type answer struct {
	Status  int
	Body    string
	Result  pin.QueryResponse
	Problem server.Problem
}

// post sends POST /query {"sql": sql, "limit": limit} (limit 0: none).
func (st *stack) post(sql string, limit int) answer {
	st.t.Helper()
	req := map[string]any{"sql": sql}
	if limit > 0 {
		req["limit"] = limit
	}
	body, _ := json.Marshal(req)
	resp, err := http.Post(st.srv.URL+"/query", "application/json", bytes.NewReader(body))
	testenv.Must(st.t, err)
	return st.read(resp)
}

// get sends GET /query?sql=… with the Accept header accept ("" for none).
func (st *stack) get(sql, accept string) (*http.Response, string) {
	st.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, st.srv.URL+"/query?sql="+url.QueryEscape(sql), nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	testenv.Must(st.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testenv.Must(st.t, err)
	return resp, string(b)
}

func (st *stack) read(resp *http.Response) answer {
	st.t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	testenv.Must(st.t, err)
	a := answer{Status: resp.StatusCode, Body: string(b)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if resp.StatusCode == http.StatusOK {
		err = dec.Decode(&a.Result)
	} else {
		err = dec.Decode(&a.Problem)
	}
	if err != nil {
		st.t.Fatalf("POST /query answered %d with a body that does not decode: %v\n%s", resp.StatusCode, err, b)
	}
	return a
}

// ok posts sql and fails the test unless it answers 200; returns the rows.
func (st *stack) ok(sql string) [][]any {
	st.t.Helper()
	a := st.post(sql, query.MaxLimit)
	if a.Status != http.StatusOK {
		st.t.Fatalf("%s: status %d: %s", sql, a.Status, a.Body)
	}
	return a.Result.Rows
}

// counts runs a two-column query (text, count) and returns it as a map.
func (st *stack) counts(sql string) map[string]int64 {
	st.t.Helper()
	out := map[string]int64{}
	for _, r := range st.ok(sql) {
		n, err := r[1].(json.Number).Int64()
		testenv.Must(st.t, err)
		out[fmt.Sprint(r[0])] = n
	}
	return out
}

// putCurated stores pins as part n of run's curated objects for day dt,
// named as the batch job names them.
func (st *stack) putCurated(dt, run string, n int, pins []pin.Cleaned) string {
	st.t.Helper()
	var buf bytes.Buffer
	testenv.Must(st.t, batch.WriteCurated(&buf, pins))
	key := layout.CuratedKey(dt, run, n)
	testenv.Must(st.t, st.lake.Put(context.Background(), key, &buf))
	return key
}

// putRaw stores recs as one raw-zone object, named as the landing names it.
func (st *stack) putRaw(dt string, recs []batch.RawRecord) string {
	st.t.Helper()
	var buf bytes.Buffer
	testenv.Must(st.t, batch.WriteRaw(&buf, recs))
	key := layout.RawKey(dt, int(recs[0].Partition), recs[0].Offset, recs[len(recs)-1].Offset)
	testenv.Must(st.t, st.lake.Put(context.Background(), key, &buf))
	return key
}

// day is one day of posted pins: what the landing would have written to
// the raw zone and what the batch job would make of it.
type day struct {
	dt      string
	raw     []batch.RawRecord
	cleaned []pin.Cleaned
}

// pinsOf returns n synthetic pins accepted on dt, spread over partitions
// 0..2 in offset order, as raw records and cleaned pins.
func pinsOf(t testing.TB, seed uint64, dt string, n int) day {
	t.Helper()
	at, err := time.Parse(time.DateOnly, dt)
	testenv.Must(t, err)
	g := synth.New(seed)
	d := day{dt: dt}
	for i := range n {
		raw, err := json.Marshal(g.Next())
		testenv.Must(t, err)
		rec := batch.RawRecord{
			Topic: "pins", Partition: int32(i % 3), Offset: int64(i / 3),
			Timestamp: at.Add(time.Duration(i) * time.Second).UTC(), Value: string(raw),
		}
		c, err := pin.CleanRaw(raw, pin.Lineage{IngestedAt: rec.Timestamp, Partition: rec.Partition, Offset: rec.Offset})
		testenv.Must(t, err)
		d.raw = append(d.raw, rec)
		d.cleaned = append(d.cleaned, c)
	}
	return d
}

// land stores a day as the lanes would: one raw object per partition, and
// the cleaned pins as run's curated objects of at most perPart rows.
func (st *stack) land(d day, run string, perPart int) {
	st.t.Helper()
	byPart := map[int32][]batch.RawRecord{}
	for _, r := range d.raw {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, recs := range byPart {
		st.putRaw(d.dt, recs)
	}
	for n := 0; n*perPart < len(d.cleaned); n++ {
		st.putCurated(d.dt, run, n, d.cleaned[n*perPart:min((n+1)*perPart, len(d.cleaned))])
	}
}

// categories counts cleaned pins by category.
func categories(pins []pin.Cleaned) map[string]int64 {
	out := map[string]int64{}
	for _, p := range pins {
		out[p.Category]++
	}
	return out
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// noPaths fails the test when text shows a server path.
func (st *stack) noPaths(text string) {
	st.t.Helper()
	if strings.Contains(text, st.dataDir) || strings.Contains(text, st.mirror.Dir()) {
		st.t.Fatalf("the answer shows a server path (%s): %s", st.dataDir, text)
	}
}
