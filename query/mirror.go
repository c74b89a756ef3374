package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"pinpipe/batch"
	"pinpipe/internal/dirlock"
	"pinpipe/lake"
	"pinpipe/pin"
)

// Store is what the mirror reads of the lake; *lake.Store is one.
type Store interface {
	// List returns every object whose key starts with prefix.
	List(ctx context.Context, prefix string) ([]lake.Object, error)
	// Get opens an object; returns lake.ErrNotFound when it is gone.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// MirrorOptions configure a Mirror.
type MirrorOptions struct {
	Dir       string        // local directory of the copies; the mirror owns it
	MaxBytes  int64         // disk the copies may use (PINPIPE_MIRROR_MAX_BYTES)
	Staleness time.Duration // how old a listing may be when a query starts (PINPIPE_MIRROR_STALENESS)
	Registry  prometheus.Registerer
	Log       *slog.Logger
}

// Mirror keeps local copies of the lake's raw and curated zones for DuckDB,
// which cannot read S3 here. It lists the lake at most once per staleness
// window (queries arriving together share one refresh), downloads new or
// changed objects (by ETag) into temporary names and renames them into
// place, and deletes copies of objects that are gone once no running query
// reads them. Each query reads a Snapshot: the files of one listing, so it
// never sees a day half replaced by the batch job.
type Mirror struct {
	store Store
	o     MirrorOptions
	log   *slog.Logger
	lock  io.Closer

	ctx    context.Context // ends with Close; refreshes run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	files    map[string]*localFile // by path relative to Dir, slash-separated
	current  *Snapshot
	gen      uint64
	listedAt time.Time // when the last successful refresh listed the lake; zero: never
	inflight *refreshCall
	used     map[string]time.Time // date → when a query named it, or the day was first seen
	left     map[string]bool      // dates left out of the mirror by the disk budget
	lastErr  string               // the last refresh error logged, to log each outage once
	// commits caches the commit markers read, by key: a marker is written
	// once and never changes.
	commits map[string]batch.Commit

	bytes         prometheus.Gauge
	refreshes     prometheus.Histogram
	downloads     prometheus.Counter
	failures      prometheus.Counter
	cleans        prometheus.Counter
	cleanFailures prometheus.Counter
	cleanTime     prometheus.Histogram
}

// localFile is one object's copy on disk.
type localFile struct {
	object
	snaps int // live snapshots that list it; 0: deletable
}

// refreshCall is one refresh that queries wait for together.
type refreshCall struct {
	done chan struct{}
	err  error
}

// Snapshot is the set of local files one query reads: one listing's view of
// the lake. Its files stay on disk until Release.
type Snapshot struct {
	Gen     uint64   // changes whenever the set of files does
	Curated []string // absolute paths, sorted
	Raw     []string
	// LiveCurated are the curated files of the days pins_live takes from
	// the curated zone (current days); LiveCleaned the cleaned copies of the
	// raw objects of the other days.
	LiveCurated []string
	LiveCleaned []string

	m     *Mirror
	files []*localFile
	live  string // the days read from cleaned copies, sorted, comma-separated
	refs  int    // queries reading it, plus one while it is the mirror's current snapshot
}

// ErrMirrorLocked is returned by NewMirror when another process owns the
// mirror directory.
var ErrMirrorLocked = errors.New("mirror: the directory is in use by another pinpipe process")

// NewMirror opens the mirror directory, taking it over from an earlier run:
// copies already on disk are reused (a restart downloads nothing that did
// not change) and half-downloaded files are removed. Returns
// ErrMirrorLocked when another process holds the directory.
func NewMirror(store Store, o MirrorOptions) (*Mirror, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	o.Dir = dir
	lock, err := dirlock.Lock(dir)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("%w (%s)", ErrMirrorLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	f := promauto.With(o.Registry)
	m := &Mirror{
		store: store, o: o, log: o.Log, lock: lock,
		files: map[string]*localFile{}, used: map[string]time.Time{}, left: map[string]bool{}, commits: map[string]batch.Commit{},
		bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "pinpipe_query_mirror_bytes", Help: "Bytes of lake objects copied to the local mirror.",
		}),
		refreshes: f.NewHistogram(prometheus.HistogramOpts{
			Name: "pinpipe_query_mirror_refresh_seconds", Help: "Time to list the lake and download what changed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		downloads: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_query_mirror_downloads_total", Help: "Lake objects downloaded into the mirror.",
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_query_mirror_refresh_errors_total", Help: "Mirror refreshes that failed (the last good snapshot is served).",
		}),
		cleans: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_query_mirror_cleaned_objects_total", Help: "Raw objects cleaned into the mirror's copies for pins_live.",
		}),
		cleanFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_query_mirror_clean_errors_total", Help: "Raw objects pins_live leaves out because they are not raw-zone Parquet objects.",
		}),
		cleanTime: f.NewHistogram(prometheus.HistogramOpts{
			Name: "pinpipe_query_mirror_clean_seconds", Help: "Time a refresh spent cleaning new raw objects for pins_live.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	found, err := m.scan()
	if err != nil {
		lock.Close()
		return nil, err
	}
	m.mu.Lock()
	m.publishLocked(choose(found), m.liveOnDiskLocked())
	m.cleanupLocked()
	m.mu.Unlock()
	return m, nil
}

// Dir returns the absolute path of the mirror directory.
func (m *Mirror) Dir() string { return m.o.Dir }

// Warm starts a refresh without waiting for it, so the first query finds
// the mirror already filled.
func (m *Mirror) Warm() {
	m.mu.Lock()
	m.startRefreshLocked()
	m.mu.Unlock()
}

// Snapshot returns the files a query should read, refreshing the mirror
// first when its listing is older than the staleness window or the query
// names a date (days, YYYY-MM-DD) that the disk budget left out. The caller
// must Release it. If the refresh fails, the last good snapshot is returned
// and the failure logged; returns EUNAVAILABLE when there is none, and
// ctx's error when ctx ends first (the refresh goes on for the next query).
func (m *Mirror) Snapshot(ctx context.Context, days []string) (*Snapshot, error) {
	m.mu.Lock()
	now := time.Now()
	stale := m.listedAt.IsZero() || now.Sub(m.listedAt) > m.o.Staleness
	for _, d := range days {
		m.used[d] = now
		stale = stale || m.left[d]
	}
	if stale {
		call := m.startRefreshLocked()
		m.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m.mu.Lock()
		if call.err != nil && m.listedAt.IsZero() && len(m.current.files) == 0 {
			m.mu.Unlock()
			return nil, pin.Errorf(pin.EUNAVAILABLE,
				"The lake could not be read, so there is nothing to query yet: %v. Check S3 (GET /readyz) and retry.", call.err)
		}
	}
	s := m.current
	s.refs++
	m.mu.Unlock()
	return s, nil
}

// Release ends a query's use of the snapshot; files no snapshot lists any
// more are deleted once the last query reading them releases.
func (s *Snapshot) Release() {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(s)
}

func (m *Mirror) releaseLocked(s *Snapshot) {
	if s.refs--; s.refs > 0 {
		return
	}
	for _, f := range s.files {
		f.snaps--
	}
	m.cleanupLocked()
}

// startRefreshLocked returns the refresh in flight, starting one if none
// is. m.mu must be held.
func (m *Mirror) startRefreshLocked() *refreshCall {
	if m.inflight != nil {
		return m.inflight
	}
	call := &refreshCall{done: make(chan struct{})}
	m.inflight = call
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		start := time.Now()
		err := m.refresh(m.ctx)
		m.refreshes.Observe(time.Since(start).Seconds())
		m.mu.Lock()
		m.inflight = nil
		call.err = err
		switch {
		case err == nil:
			m.listedAt = start
			if m.lastErr != "" {
				m.log.Info("mirror: the lake is readable again")
			}
			m.lastErr = ""
		case m.ctx.Err() == nil:
			m.failures.Inc()
			if err.Error() != m.lastErr {
				m.log.Warn("mirror: refresh failed; queries read the last good snapshot", slog.Any("err", err))
			}
			m.lastErr = err.Error()
		}
		m.cleanupLocked()
		m.mu.Unlock()
		close(call.done)
	}()
	return call
}

// cleanupLocked deletes the copies no live snapshot lists. It waits while a
// refresh is downloading: its new files are not in a snapshot yet.
func (m *Mirror) cleanupLocked() {
	if m.inflight != nil {
		return
	}
	for rel, f := range m.files {
		if f.snaps > 0 {
			continue
		}
		if err := m.remove(rel); err != nil {
			m.log.Warn("mirror: remove stale copy", slog.String("file", rel), slog.Any("err", err))
			continue
		}
		delete(m.files, rel)
	}
	m.updateBytesLocked()
}

func (m *Mirror) updateBytesLocked() {
	var n int64
	for _, f := range m.files {
		n += f.Size
	}
	m.bytes.Set(float64(n))
}

// Close stops a refresh in flight and releases the directory. The copies
// stay on disk for the next start.
func (m *Mirror) Close() error {
	m.cancel()
	m.wg.Wait()
	return m.lock.Close()
}
