package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/server"
)

// Small fakes of the lanes, so route tests run the real server in
// milliseconds and see exactly what reached each lane.

// fakeProducer accepts every pin and counts them.
type fakeProducer struct {
	mu       sync.Mutex
	accepted int
}

func (p *fakeProducer) Produce(_ context.Context, recs []pin.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted += len(recs)
	return nil
}

func (p *fakeProducer) Rejected(pin.Counts) {}

func (p *fakeProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// fakeBatch queues every run it is asked for.
type fakeBatch struct {
	mu   sync.Mutex
	runs []pin.Run
}

func (b *fakeBatch) StartRun(_ context.Context, date, trigger string) (pin.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := pin.Run{ID: date + "-" + trigger, Date: date, Trigger: trigger, Status: pin.RunQueued}
	b.runs = append(b.runs, r)
	return r, nil
}

func (b *fakeBatch) Runs(context.Context, int) ([]pin.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]pin.Run(nil), b.runs...), nil
}

func (b *fakeBatch) Run(_ context.Context, id string) (pin.Run, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.runs {
		if r.ID == id {
			return r, nil
		}
	}
	return pin.Run{}, pin.Errorf(pin.ENOTFOUND, "no run %s", id)
}

// StartBackfill queues a run per day of from..to; a range whose end is
// before its start is refused, as the batch lane refuses it.
func (b *fakeBatch) StartBackfill(ctx context.Context, from, to, trigger string) (pin.Backfill, error) {
	if to < from {
		return pin.Backfill{}, pin.Errorf(pin.EINVALID, "from is after to")
	}
	out := pin.Backfill{From: from, To: to, Skipped: []pin.SkippedDay{}}
	f, _ := time.Parse(time.DateOnly, from)
	t, _ := time.Parse(time.DateOnly, to)
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		r, _ := b.StartRun(ctx, d.Format(time.DateOnly), trigger)
		out.Runs = append(out.Runs, r)
	}
	return out, nil
}

// Days answers one day per run, each complete, the newest stale.
func (b *fakeBatch) Days(_ context.Context, n int) ([]pin.BatchDay, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	days := []pin.BatchDay{}
	for i := len(b.runs) - 1; i >= 0 && len(days) < n; i-- {
		r := b.runs[i]
		days = append(days, pin.BatchDay{Day: r.Date, Over: true, Complete: true, Stale: len(days) == 0, Behind: []pin.PartitionBehind{}, Run: &r})
	}
	return days, nil
}

func (b *fakeBatch) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.runs)
}

// fakeServing answers the serving reads from fixed pins, and err instead
// when set; wait, when set, makes every read wait for its request's
// context to end and return what the stores return then.
type fakeServing struct {
	pins []pin.Cleaned
	err  error
	wait bool

	mu   sync.Mutex
	asks []string // "category date n" of each TopByCategory
}

func (s *fakeServing) Pin(ctx context.Context, id string) (pin.Cleaned, error) {
	if err := s.fail(ctx); err != nil {
		return pin.Cleaned{}, err
	}
	for _, p := range s.pins {
		if p.UniqueID == id {
			return p, nil
		}
	}
	return pin.Cleaned{}, pin.Errorf(pin.ENOTFOUND, "No pin has unique_id %q.", id)
}

func (s *fakeServing) TopByCategory(ctx context.Context, category, date string, n int) ([]pin.Cleaned, error) {
	s.mu.Lock()
	s.asks = append(s.asks, fmt.Sprintf("%s %s %d", category, date, n))
	s.mu.Unlock()
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	var out []pin.Cleaned
	for _, p := range s.pins {
		if p.Category == category && len(out) < n {
			out = append(out, p)
		}
	}
	return out, nil
}

// fail returns the error a read ends with, nil for none.
func (s *fakeServing) fail(ctx context.Context) error {
	if s.wait {
		<-ctx.Done()
		// As a store does: its driver's error, wrapped as unavailable.
		return fmt.Errorf("%w (%v)", pin.Errorf(pin.EUNAVAILABLE, "The store is not reachable."), ctx.Err())
	}
	return s.err
}

func (s *fakeServing) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asks...)
}

// fakeStream answers the real-time view with fixed pins.
type fakeStream struct{ pins []pin.Cleaned }

func (s *fakeStream) Recent(_ context.Context, n int) ([]pin.Cleaned, error) {
	return s.pins[:min(n, len(s.pins))], nil
}

func (s *fakeStream) Stats(context.Context) (pin.Stats, error) {
	by := map[string]int64{}
	for _, p := range s.pins {
		by[p.Category]++
	}
	return pin.Stats{Total: int64(len(s.pins)), ByCategory: by, Lag: 3, Freshness: pin.Freshness{P50: 0.2, P99: 0.9}}, nil
}

// fakeQuerier behaves like the query engine where slots are concerned: it
// holds one of its slots while it hands rows to out, answers ETOOMANY when
// none is free, and stops at the first error out returns. Each query
// answers rows rows of columns (i BIGINT, v VARCHAR); rowValues, when
// set, gives each row instead.
type fakeQuerier struct {
	slots     chan struct{}
	rows      int
	cell      string
	rowValues [][]any
	columns   []string
	// exportMaxRows, when set, is the most rows Export answers.
	exportMaxRows int

	mu   sync.Mutex
	sqls []string
}

func newFakeQuerier(slots, rows int, cell string) *fakeQuerier {
	return &fakeQuerier{slots: make(chan struct{}, slots), rows: rows, cell: cell}
}

func (q *fakeQuerier) Query(ctx context.Context, sql string, limit int, out pin.QueryResult) (bool, error) {
	return q.QueryAt(ctx, sql, 0, limit, out)
}

// Export answers as Query, every row; ETOOLARGE past exportMaxRows (when
// set), as the engine does.
func (q *fakeQuerier) Export(ctx context.Context, sql string, out pin.QueryResult) error {
	limit := q.rows
	if q.exportMaxRows > 0 {
		limit = q.exportMaxRows
	}
	truncated, err := q.QueryAt(ctx, sql, 0, limit, out)
	if err == nil && truncated {
		err = pin.Errorf(pin.ETOOLARGE, "more than %d rows (PINPIPE_EXPORT_MAX_ROWS)", limit)
	}
	return err
}

// QueryAt answers rows offset… of the fake's answer.
func (q *fakeQuerier) QueryAt(ctx context.Context, sql string, offset, limit int, out pin.QueryResult) (bool, error) {
	select {
	case q.slots <- struct{}{}:
	default:
		return false, pin.Errorf(pin.ETOOMANY, "%d queries are already running; retry in a moment.", cap(q.slots))
	}
	defer func() { <-q.slots }()
	q.mu.Lock()
	q.sqls = append(q.sqls, sql)
	q.mu.Unlock()
	cols := q.columns
	if cols == nil {
		cols = []string{"i", "v"}
	}
	types := make([]string, len(cols))
	for i := range types {
		types[i] = "VARCHAR"
	}
	if err := out.Columns(cols, types); err != nil {
		return false, err
	}
	if q.rowValues != nil {
		for _, r := range q.rowValues {
			if err := out.Row(r); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	for i := offset; i < min(q.rows, offset+limit); i++ {
		if err := out.Row([]any{int64(i), q.cell}); err != nil {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	return q.rows > offset+limit, nil
}

func (q *fakeQuerier) received() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.sqls...)
}

// fakes are the lanes one test server uses.
type fakes struct {
	producer *fakeProducer
	batch    *fakeBatch
	serving  *fakeServing
	stream   *fakeStream
	query    *fakeQuerier
}

// serve starts a server.Server over fresh fakes (o's lanes, when set, are
// kept) on 127.0.0.1 and returns its base URL; it stops when the test
// ends. tune, when not nil, is called on the server before it serves.
func serve(t *testing.T, o server.Options, tune func(*server.Server)) (string, *fakes) {
	t.Helper()
	f := &fakes{producer: &fakeProducer{}, batch: &fakeBatch{}, serving: &fakeServing{}, stream: &fakeStream{}, query: newFakeQuerier(4, 3, "x")}
	if o.Log == nil {
		o.Log = testenv.Log(t)
	}
	o.Registry = prometheus.NewRegistry()
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Producer == nil {
		o.Producer = f.producer
	}
	if o.Batch == nil {
		o.Batch = f.batch
	}
	if o.Serving == nil {
		o.Serving = f.serving
	} else if sv, ok := o.Serving.(*fakeServing); ok {
		f.serving = sv
	}
	if o.Stream == nil {
		o.Stream = f.stream
	}
	if o.Query == nil {
		o.Query = f.query
	} else if q, ok := o.Query.(*fakeQuerier); ok {
		f.query = q
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	if o.Addr == "" {
		o.Addr = ln.Addr().String()
	}
	s := server.New(o)
	if tune != nil {
		tune(s)
	}
	hs := s.HTTPServer()
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String(), f
}

// req is one request of a route test.
type req struct {
	method, path, contentType, body string
	header                          map[string]string
	host                            string // "" for the URL's
}

// send makes r against base and returns the answer; it fails the test
// only when no answer came.
func send(t *testing.T, base string, r req) answer {
	t.Helper()
	hr, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
	testenv.Must(t, err)
	if r.body == "" {
		hr.Body, hr.ContentLength = http.NoBody, 0
	}
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(hr)
	testenv.Must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s %s: reading the answer: %v", r.method, r.path, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), data}
}

// problemDetail returns the detail of a problem answer, failing the test
// when a is not application/problem+json with status.
func problemDetail(t *testing.T, a answer, status int) string {
	t.Helper()
	if a.status != status || a.contentType != "application/problem+json" {
		t.Fatalf("answer %d %q %s, want a %d problem", a.status, a.contentType, a.body, status)
	}
	var p server.Problem
	testenv.Must(t, json.Unmarshal(a.body, &p))
	if p.Status != status || p.Detail == "" {
		t.Fatalf("problem %+v, want status %d with a detail", p, status)
	}
	return p.Detail
}
