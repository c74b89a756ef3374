package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// The pins_live view reads each day from one of two sources: the curated
// zone where the day's committed run is current, else cleaned copies of the
// day's raw objects, which the mirror makes once per raw object with the
// batch job's own cleaning function (batch.CleanObject) and keeps beside
// the raw copies. So the view is a union and a per-day dedupe by the
// version order (pin.NewestSQL), and the cleaning rules exist once, in Go.

// liveZone is the mirror's local directory of cleaned copies of raw
// objects: live/dt=YYYY-MM-DD/<raw name>~<raw ETag>.parquet. It is not a
// zone of the lake.
const liveZone layout.Zone = "live"

// cleanConcurrency bounds the raw objects cleaned at once: cleaning is CPU
// work, and queries share the cores.
var cleanConcurrency = max(1, min(4, runtime.GOMAXPROCS(0)/2))

// cleaned returns the object of o's cleaned copy, of size bytes: the same
// lake key and day, in liveZone. o must be a landed raw object.
func (o object) cleaned(size int64) object {
	c := o
	c.Zone, c.Size = liveZone, size
	c.Rel = liveZone.Prefix() + strings.TrimPrefix(o.Rel, layout.Raw.Prefix())
	return c
}

// readCommits returns, by day, what the newest commit marker of each day
// in the listing says (batch.ReadCommit), reading each marker once and
// caching it. Returns an error naming the marker when one cannot be read;
// one gone since the listing counts as a race with the batch job.
func (m *Mirror) readCommits(ctx context.Context, listing []lake.Object) (map[string]batch.Commit, error) {
	newest := map[string]lake.Object{}
	for _, lo := range listing {
		k, ok := layout.Parse(lo.Key)
		if !ok || k.Kind != layout.Commit {
			continue
		}
		if n, seen := newest[k.DT]; !seen || lo.Key > n.Key {
			newest[k.DT] = lo
		}
	}
	out := make(map[string]batch.Commit, len(newest))
	for dt, lo := range newest {
		m.mu.Lock()
		c, ok := m.commits[lo.Key]
		m.mu.Unlock()
		if !ok {
			k, _ := layout.Parse(lo.Key)
			var err error
			if c, err = batch.ReadCommit(ctx, m.store, dt, k.Run, lo.LastModified); err != nil {
				if errors.Is(err, lake.ErrNotFound) {
					return nil, fmt.Errorf("mirror: %w: %w", errRaced, err)
				}
				return nil, fmt.Errorf("mirror: %w", err)
			}
			m.mu.Lock()
			m.commits[lo.Key] = c
			m.mu.Unlock()
		}
		out[dt] = c
	}
	return out, nil
}

// liveDays returns the days pins_live reads from cleaned raw objects: the
// days of objs with landed raw objects and either no curated objects in
// objs (not curated yet, or left out of the mirror), or curated objects
// that are stale by batch.LateRaw, the batch lane's own rule, against the
// day's commit in commits (for curated objects without a marker, the
// newest curated object's time stands for the run's start). A day taken
// from raw records by mistake shows the same pins, only at a higher cost.
func liveDays(objs []object, commits map[string]batch.Commit) map[string]bool {
	curated := map[string]time.Time{}
	for _, o := range objs {
		if o.Zone == layout.Curated {
			if t, seen := curated[o.DT]; !seen || o.Modified.After(t) {
				curated[o.DT] = o.Modified
			}
		}
	}
	live := map[string]bool{}
	for _, o := range objs {
		if o.Zone != layout.Raw || !o.Landed || live[o.DT] {
			continue
		}
		newest, isCurated := curated[o.DT]
		if !isCurated {
			live[o.DT] = true
			continue
		}
		c, ok := commits[o.DT]
		if !ok {
			c = batch.Commit{Began: newest}
		}
		k, _ := layout.Parse(o.Key)
		if batch.LateRaw(c, k.Partition, k.Last, o.Modified) {
			live[o.DT] = true
		}
	}
	return live
}

// liveOnDisk returns the days that have cleaned copies on disk: the days
// pins_live read from raw objects when the mirror last ran, used until the
// first listing decides again. m.mu must be held.
func (m *Mirror) liveOnDiskLocked() map[string]bool {
	live := map[string]bool{}
	for _, f := range m.files {
		if f.Zone == liveZone {
			live[f.DT] = true
		}
	}
	return live
}

// uncleaned returns the landed raw objects of live days in objs that have
// no cleaned copy yet. m.mu must be held.
func (m *Mirror) uncleanedLocked(objs []object, live map[string]bool) []object {
	var out []object
	for _, o := range objs {
		if o.Landed && live[o.DT] && m.files[o.cleaned(0).Rel] == nil {
			out = append(out, o)
		}
	}
	return out
}

// cleanAll makes the cleaned copies of objs from their local raw copies, a
// few at a time, registering each as it is written. Returns the first
// error writing a copy; an object that is not a raw-zone Parquet object
// gets an empty copy and a warning, as the batch job would refuse it too.
func (m *Mirror) cleanAll(ctx context.Context, objs []object) error {
	if len(objs) == 0 {
		return nil
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cleanConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			c, err := m.clean(o)
			if err != nil {
				return err
			}
			m.mu.Lock()
			m.files[c.Rel] = &localFile{object: c}
			m.updateBytesLocked()
			m.mu.Unlock()
			m.cleans.Inc()
			return nil
		})
	}
	err := g.Wait()
	m.cleanTime.Observe(time.Since(start).Seconds())
	return err
}

// clean writes the cleaned copy of the landed raw object o, whose local
// copy must be on disk, through a temporary file. Returns the copy's
// object.
func (m *Mirror) clean(o object) (object, error) {
	src := filepath.Join(m.o.Dir, filepath.FromSlash(o.Rel))
	c := o.cleaned(0)
	dst := filepath.Join(m.o.Dir, filepath.FromSlash(c.Rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return c, fmt.Errorf("mirror: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return c, fmt.Errorf("mirror: clean %s: %w", o.Key, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), downloadPrefix+"*")
	if err != nil {
		return c, fmt.Errorf("mirror: %w", err)
	}
	res, err := batch.CleanObject(in, o.Size, tmp)
	if errors.Is(err, batch.ErrNotRaw) {
		// Not a raw-zone object: pins_live leaves it out, as the batch job
		// would stop at it. An empty copy remembers the verdict.
		m.cleanFailures.Inc()
		m.log.Warn("mirror: a raw object is not a raw-zone Parquet object; pins_live leaves it out",
			slog.String("key", o.Key), slog.Any("err", err))
		_, _ = tmp.Seek(0, 0)
		_ = tmp.Truncate(0)
		err = batch.WriteCurated(tmp, nil)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	var info os.FileInfo
	if err == nil {
		info, err = os.Stat(tmp.Name())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return c, fmt.Errorf("mirror: clean %s: %w", o.Key, err)
	}
	if res.Rejected > 0 {
		m.log.Debug("mirror: records that fail cleaning are left out of pins_live",
			slog.String("key", o.Key), slog.Int("rejected", res.Rejected))
	}
	c.Size = info.Size()
	return c, nil
}

// daysKey returns the sorted days of set joined by commas, to compare two
// snapshots' live days.
func daysKey(set map[string]bool) string {
	days := make([]string, 0, len(set))
	for d := range set {
		days = append(days, d)
	}
	sort.Strings(days)
	return strings.Join(days, ",")
}
