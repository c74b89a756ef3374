package stream

import (
	"slices"
	"sync"

	"pinpipe/pin"
)

// freshnessSamples is how many recent pins Stats' freshness percentiles
// are over.
const freshnessSamples = 8192

// ring keeps the freshness of the most recent pins, in seconds.
type ring struct {
	mu   sync.Mutex
	buf  []float64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{buf: make([]float64, n)} }

func (r *ring) add(samples []float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range samples {
		r.buf[r.next] = s
		if r.next++; r.next == len(r.buf) {
			r.next, r.full = 0, true
		}
	}
}

// percentiles returns the p50 and p99 of the samples (nearest rank), or
// zeros when there are none yet.
func (r *ring) percentiles() pin.Freshness {
	r.mu.Lock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	s := slices.Clone(r.buf[:n])
	r.mu.Unlock()
	if len(s) == 0 {
		return pin.Freshness{}
	}
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return pin.Freshness{P50: rank(0.50), P99: rank(0.99)}
}
