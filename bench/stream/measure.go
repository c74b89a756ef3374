package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"sync"
	"time"

	"pinpipe/pin"

	"github.com/prometheus/client_golang/prometheus"
)

// statsOf reads GET /stream/stats.
func statsOf(addr string) (pin.Stats, error) {
	var st pin.Stats
	resp, err := http.Get("http://" + addr + "/stream/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /stream/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitStored polls until Postgres holds at least want pins and the lane's
// lag is 0, and returns how long that took; ok is false after timeout.
func waitStored(addr string, want int64, timeout time.Duration) (took time.Duration, ok bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if st, err := statsOf(addr); err == nil && st.Total >= want && st.Lag == 0 {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}

// histogram is a snapshot of a Prometheus histogram: cumulative counts per
// upper bound.
type histogram struct {
	bounds []float64
	counts []uint64
	total  uint64
}

// snapshot reads the histogram name from reg (zero when absent).
func snapshot(reg prometheus.Gatherer, name string) histogram {
	var h histogram
	mfs, err := reg.Gather()
	if err != nil {
		return h
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0].GetHistogram()
		for _, b := range m.GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, b.GetCumulativeCount())
		}
		h.total = m.GetSampleCount()
	}
	return h
}

// since returns the observations made between before and h.
func (h histogram) since(before histogram) histogram {
	d := histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts)), total: h.total - before.total}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(before.counts) {
			d.counts[i] -= before.counts[i]
		}
	}
	return d
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile does:
// linear within the bucket that holds it. Returns +Inf when it lies past
// the last bound, NaN without observations.
func (h histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return math.NaN()
	}
	rank := q * float64(h.total)
	lower, below := 0.0, uint64(0)
	for i, c := range h.counts {
		if float64(c) >= rank {
			in := float64(c - below)
			return lower + (h.bounds[i]-lower)*(rank-float64(below))/max(in, 1)
		}
		lower, below = h.bounds[i], c
	}
	return math.Inf(1)
}

// share returns the fraction of observations at or below bound (which must
// be one of the bucket bounds).
func (h histogram) share(bound float64) float64 {
	for i, b := range h.bounds {
		if b == bound && h.total > 0 {
			return float64(h.counts[i]) / float64(h.total)
		}
	}
	return math.NaN()
}

// progress prints one line a second while a phase runs, and keeps the
// lane's own freshness percentiles (over its last 8192 pins) it saw.
type progress struct {
	addr  string
	phase string
	start time.Time
	l     *loader

	mu   sync.Mutex
	p50s []float64
	p99s []float64
	lag  int64 // the largest lag seen
}

func watch(ctx context.Context, addr, phase string, l *loader) *progress {
	pr := &progress{addr: addr, phase: phase, start: time.Now(), l: l}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				pr.report()
			}
		}
	}()
	return pr
}

func (pr *progress) report() {
	el := time.Since(pr.start).Truncate(time.Second)
	var accepted int64
	if pr.l != nil {
		accepted = pr.l.accepted.Load()
	}
	st, err := statsOf(pr.addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "[%s %5s] accepted %8d   stream stats: %v\n", pr.phase, el, accepted, err)
		return
	}
	pr.mu.Lock()
	pr.p50s = append(pr.p50s, st.Freshness.P50)
	pr.p99s = append(pr.p99s, st.Freshness.P99)
	pr.lag = max(pr.lag, st.Lag)
	pr.mu.Unlock()
	fmt.Fprintf(os.Stderr, "[%s %5s] accepted %8d   in postgres %8d   lag %7d   freshness p50 %.3fs p99 %.3fs\n",
		pr.phase, el, accepted, st.Total, st.Lag, st.Freshness.P50, st.Freshness.P99)
}

// worstP99 returns the largest p99 the lane reported during the phase.
func (pr *progress) worstP99() float64 {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	w := 0.0
	for _, v := range pr.p99s {
		w = max(w, v)
	}
	return w
}

func (pr *progress) maxLag() int64 {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.lag
}
