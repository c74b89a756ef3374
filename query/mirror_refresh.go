package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// errRaced means an object changed or vanished between the listing and its
// download: the batch job replaced a day meanwhile. Listing again helps.
var errRaced = errors.New("the lake changed during the refresh")

// refresh lists the lake, downloads what the newest listing needs and makes
// it the current snapshot. A listing that raced with the batch job is
// retried a few times before giving up.
func (m *Mirror) refresh(ctx context.Context) error {
	var err error
	for range 3 {
		if err = m.refreshOnce(ctx); !errors.Is(err, errRaced) {
			return err
		}
	}
	return err
}

func (m *Mirror) refreshOnce(ctx context.Context) error {
	// Both zones at once: the listing is what a query waits for.
	lists := make([][]lake.Object, len(mirrorZones))
	g, gctx := errgroup.WithContext(ctx)
	for i, zone := range mirrorZones {
		g.Go(func() (err error) {
			if lists[i], err = m.store.List(gctx, zone.Prefix()); err != nil {
				return fmt.Errorf("mirror: list %s zone: %w", zone, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	listing := slices.Concat(lists...)
	want := choose(listing)
	commits, err := m.readCommits(ctx, listing)
	if err != nil {
		return err
	}

	m.mu.Lock()
	now := time.Now()
	inLake := make(map[string]bool, len(m.used))
	for _, o := range want {
		inLake[o.DT] = true
		if _, ok := m.used[o.DT]; !ok {
			m.used[o.DT] = now
		}
	}
	for dt := range m.used { // dates queries named that the lake does not hold
		if !inLake[dt] {
			delete(m.used, dt)
		}
	}
	want, left := withinBudget(want, m.o.MaxBytes, m.used, liveDays(want, commits))
	live := liveDays(want, commits)
	if len(left) > 0 && len(left) != len(m.left) {
		m.log.Warn("mirror: days left out of the mirror by the disk budget; queries do not see them unless they name the date",
			slog.Int("days", len(left)), slog.Int64("max_bytes", m.o.MaxBytes))
	}
	m.left = left
	var missing []object
	for _, o := range want {
		if _, ok := m.files[o.Rel]; !ok {
			missing = append(missing, o)
		}
	}
	m.mu.Unlock()

	if err := m.downloadAll(ctx, missing); err != nil {
		return err
	}
	m.mu.Lock()
	uncleaned := m.uncleanedLocked(want, live)
	m.mu.Unlock()
	if err := m.cleanAll(ctx, uncleaned); err != nil {
		return err
	}
	m.mu.Lock()
	m.publishLocked(want, live)
	m.mu.Unlock()
	return nil
}

// publishLocked makes the snapshot of objs current, with pins_live reading
// the days in live from the cleaned copies of their landed raw objects,
// unless it lists the same files and days as the current one. Every object
// of objs must be on disk; a cleaned copy that is not is left out.
func (m *Mirror) publishLocked(objs []object, live map[string]bool) {
	files := make([]*localFile, 0, len(objs))
	for _, o := range objs {
		f := m.files[o.Rel]
		if f == nil {
			continue
		}
		files = append(files, f)
		if o.Landed && live[o.DT] {
			if c := m.files[o.cleaned(0).Rel]; c != nil {
				files = append(files, c)
			}
		}
	}
	days := daysKey(live)
	if m.current != nil && m.current.live == days && sameFiles(m.current.files, files) {
		return
	}
	m.gen++
	s := &Snapshot{Gen: m.gen, m: m, files: files, live: days, refs: 1}
	for _, f := range files {
		f.snaps++
		abs := filepath.Join(m.o.Dir, filepath.FromSlash(f.Rel))
		switch f.Zone {
		case layout.Curated:
			s.Curated = append(s.Curated, abs)
			if !live[f.DT] {
				s.LiveCurated = append(s.LiveCurated, abs)
			}
		case layout.Raw:
			s.Raw = append(s.Raw, abs)
		case liveZone:
			s.LiveCleaned = append(s.LiveCleaned, abs)
		}
	}
	for _, l := range [][]string{s.Curated, s.Raw, s.LiveCurated, s.LiveCleaned} {
		sort.Strings(l)
	}
	old := m.current
	m.current = s
	if old != nil {
		m.log.Info("mirror: new snapshot", slog.Uint64("gen", s.Gen),
			slog.Int("curated_files", len(s.Curated)), slog.Int("raw_files", len(s.Raw)),
			slog.Int("cleaned_files", len(s.LiveCleaned)), slog.Int("live_days", len(live)))
		m.releaseLocked(old)
	}
}

func sameFiles(a, b []*localFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
