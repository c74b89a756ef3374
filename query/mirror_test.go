package query_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/pin"
	"pinpipe/query"
)

// countingStore counts the lake calls the mirror makes, and can fail them.
type countingStore struct {
	*lake.Store
	lists, gets atomic.Int64
	down        atomic.Bool
}

var errDown = errors.New("S3 is down")

func (s *countingStore) List(ctx context.Context, prefix string) ([]lake.Object, error) {
	s.lists.Add(1)
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.List(ctx, prefix)
}

func (s *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.gets.Add(1)
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.Get(ctx, key)
}

// mirrorEnv is a mirror over a new bucket.
type mirrorEnv struct {
	t     testing.TB
	store *countingStore
	dir   string
	reg   *prometheus.Registry
	m     *query.Mirror
}

func newMirror(t testing.TB, maxBytes int64, staleness time.Duration) *mirrorEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := lake.Open(ctx, testenv.S3(t))
	testenv.Must(t, err)
	e := &mirrorEnv{t: t, store: &countingStore{Store: s}, dir: filepath.Join(t.TempDir(), "mirror")}
	e.open(maxBytes, staleness)
	return e
}

func (e *mirrorEnv) open(maxBytes int64, staleness time.Duration) {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	m, err := query.NewMirror(e.store, query.MirrorOptions{Dir: e.dir, MaxBytes: maxBytes, Staleness: staleness, Registry: e.reg, Log: testenv.Log(e.t)})
	testenv.Must(e.t, err)
	e.m = m
	e.t.Cleanup(func() { m.Close() })
}

func (e *mirrorEnv) put(key, body string) {
	e.t.Helper()
	testenv.Must(e.t, e.store.Put(context.Background(), key, strings.NewReader(body)))
}

func (e *mirrorEnv) snapshot(days ...string) *query.Snapshot {
	e.t.Helper()
	s, err := e.m.Snapshot(context.Background(), days)
	testenv.Must(e.t, err)
	return s
}

// names returns the lake keys a snapshot's files are copies of.
func (e *mirrorEnv) names(s *query.Snapshot) []string {
	var out []string
	for _, p := range append(append([]string{}, s.Curated...), s.Raw...) {
		rel, _ := filepath.Rel(e.dir, p)
		rel = filepath.ToSlash(rel)
		i, j := strings.LastIndexByte(rel, '~'), strings.LastIndexByte(rel, '.')
		out = append(out, rel[:i]+rel[j:])
	}
	return out
}

func (e *mirrorEnv) downloads() float64 {
	return testutil.ToFloat64(counter(e.t, e.reg, "pinpipe_query_mirror_downloads_total"))
}

func counter(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	testenv.Must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			for _, m := range mf.GetMetric() {
				if m.GetCounter() != nil {
					c.Add(m.GetCounter().GetValue())
				} else if m.GetGauge() != nil {
					c.Add(m.GetGauge().GetValue())
				}
			}
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func same(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestMirrorDownloadsWhatIsNewOrChangedAndDropsWhatIsGone(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	e.put("raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet", "raw one")
	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "curated one")
	e.put("curated/dt=2026-11-20/_SUCCESS", "not parquet")
	e.put("rejected/dt=2026-11-20/20261121T080000Z.parquet", "not a zone the mirror reads")
	s1 := e.snapshot()
	want := []string{"curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet"}
	if got := e.names(s1); !same(got, want) || e.downloads() != 2 {
		t.Fatalf("first snapshot %v after %v downloads", got, e.downloads())
	}
	s1.Release()

	s2 := e.snapshot() // nothing changed: nothing fetched, same generation
	if s2.Gen != s1.Gen || e.downloads() != 2 {
		t.Fatalf("an unchanged lake gave generation %d (was %d) after %v downloads", s2.Gen, s1.Gen, e.downloads())
	}
	s2.Release()

	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "curated one, rewritten") // new ETag
	s3 := e.snapshot()
	if e.downloads() != 3 || len(s3.Curated) != 1 {
		t.Fatalf("a rewritten object: %v downloads, %v", e.downloads(), s3.Curated)
	}
	if b, _ := os.ReadFile(s3.Curated[0]); string(b) != "curated one, rewritten" {
		t.Fatalf("the copy holds %q", b)
	}
	if _, err := os.Stat(s1.Curated[0]); !os.IsNotExist(err) {
		t.Fatalf("the copy of the old version is still there: %v", err)
	}
	s3.Release()

	testenv.Must(t, e.store.Delete(context.Background(), "raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet"))
	s4 := e.snapshot()
	defer s4.Release()
	if len(s4.Raw) != 0 {
		t.Fatalf("a deleted object is still in the snapshot: %v", s4.Raw)
	}
	if _, err := os.Stat(s3.Raw[0]); !os.IsNotExist(err) {
		t.Fatalf("the copy of a deleted object is still on disk: %v", err)
	}
}

func TestMirrorListsOnceForQueriesArrivingTogether(t *testing.T) {
	e := newMirror(t, 1<<30, time.Hour)
	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "x")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.snapshot().Release()
		}()
	}
	wg.Wait()
	if n := e.store.lists.Load(); n != 2 { // one list per zone
		t.Fatalf("20 queries within the staleness window made %d list calls, want 2 (one refresh)", n)
	}
	e.snapshot().Release()
	if n := e.store.lists.Load(); n != 2 {
		t.Fatalf("a fresh listing was listed again: %d list calls", n)
	}
}

func TestMirrorKeepsFilesAQueryReadsUntilItEnds(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "old run")
	running := e.snapshot() // a query reading the old run

	e.put("curated/dt=2026-11-20/part-20261122T080000Z-0000.parquet", "new run")
	testenv.Must(t, e.store.Delete(context.Background(), "curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet"))
	next := e.snapshot()
	defer next.Release()
	if got := e.names(next); !same(got, []string{"curated/dt=2026-11-20/part-20261122T080000Z-0000.parquet"}) {
		t.Fatalf("the next query reads %v", got)
	}
	if b, err := os.ReadFile(running.Curated[0]); err != nil || string(b) != "old run" {
		t.Fatalf("the running query's file went away: %q %v", b, err)
	}
	running.Release()
	if _, err := os.Stat(running.Curated[0]); !os.IsNotExist(err) {
		t.Fatalf("the old run's copy outlived its last reader: %v", err)
	}
}

func TestMirrorEvictsTheLeastRecentlyUsedDaysBeyondItsBudget(t *testing.T) {
	e := newMirror(t, 250, time.Millisecond)
	body := strings.Repeat("x", 100)
	for _, dt := range []string{"2026-11-18", "2026-11-19", "2026-11-20"} {
		e.put("curated/dt="+dt+"/part-20261121T080000Z-0000.parquet", body)
	}
	s := e.snapshot()
	if got := e.names(s); !same(got, []string{
		"curated/dt=2026-11-19/part-20261121T080000Z-0000.parquet",
		"curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet",
	}) {
		t.Fatalf("with room for two days the mirror holds %v, want the two latest", got)
	}
	s.Release()

	s = e.snapshot("2026-11-18") // a query names the left-out day: it comes back
	defer s.Release()
	if got := e.names(s); !same(got, []string{
		"curated/dt=2026-11-18/part-20261121T080000Z-0000.parquet",
		"curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet",
	}) {
		t.Fatalf("after a query named 2026-11-18 the mirror holds %v", got)
	}
	if n := testutil.ToFloat64(counter(t, e.reg, "pinpipe_query_mirror_bytes")); n != 200 {
		t.Fatalf("pinpipe_query_mirror_bytes = %v, want 200", n)
	}
}

func TestMirrorReusesItsCopiesAfterARestart(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "one")
	e.put("raw/dt=2026-11-20/part-1-00000000000000000000-00000000000000000001.parquet", "two")
	e.snapshot().Release()
	testenv.Must(t, e.m.Close())
	os.WriteFile(filepath.Join(e.dir, "curated", "dt=2026-11-20", ".download-123"), []byte("half"), 0o644)

	e.open(1<<30, time.Millisecond)
	s := e.snapshot()
	defer s.Release()
	if e.downloads() != 0 || len(e.names(s)) != 2 {
		t.Fatalf("after a restart: %v downloads, snapshot %v", e.downloads(), e.names(s))
	}
	if _, err := os.Stat(filepath.Join(e.dir, "curated", "dt=2026-11-20", ".download-123")); !os.IsNotExist(err) {
		t.Fatalf("a half-downloaded file survived the restart: %v", err)
	}
}

func TestMirrorServesTheLastSnapshotWhileTheLakeIsDown(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	e.put("curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", "one")
	good := e.snapshot()
	good.Release()
	e.store.down.Store(true)
	s := e.snapshot()
	if s.Gen != good.Gen || len(s.Curated) != 1 {
		t.Fatalf("with S3 down the query reads generation %d %v", s.Gen, s.Curated)
	}
	s.Release()
	e.store.down.Store(false)
	e.put("curated/dt=2026-11-21/part-20261122T080000Z-0000.parquet", "two")
	if s := e.snapshot(); len(s.Curated) != 2 {
		t.Fatalf("after S3 came back: %v", s.Curated)
	}
}

func TestMirrorWithoutALakeEverReadIsUnavailable(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	e.store.down.Store(true)
	_, err := e.m.Snapshot(context.Background(), nil)
	if pin.ErrorCode(err) != pin.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
}

func TestMirrorDirectoryBelongsToOneProcess(t *testing.T) {
	e := newMirror(t, 1<<30, time.Millisecond)
	_, err := query.NewMirror(e.store, query.MirrorOptions{Dir: e.dir, MaxBytes: 1, Staleness: time.Second})
	if !errors.Is(err, query.ErrMirrorLocked) {
		t.Fatalf("a second mirror on the same directory: %v", err)
	}
}
