// Package ledger keeps what a client sent to pinpipe and what it was told,
// and checks the stores against it: every accepted pin once in each zone,
// nothing that was never sent, and each pin's winning version the same
// everywhere. The cluster suite and bench/chaos read the zones and check
// them with it.
//
// A pin's version is its title, "<prefix> v<N>"; a client sends the
// versions of one unique_id one after the other, each only once the one
// before was accepted, so the version order of every store (pin.Newer: the
// higher offset of the pin's partition) is the order they were sent in.
package ledger

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Outcome is what a client knows of a request after it gave up retrying.
type Outcome int

const (
	// Accepted: a 202; the pins must be in every zone exactly once.
	Accepted Outcome = iota
	// Refused: only 4xx answers; the pins must be nowhere.
	Refused
	// Unknown: no answer (the process died, the connection broke, a
	// timeout) or 5xx, and never a 202: the pins may be anywhere, or
	// nowhere, but never twice.
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"accepted", "refused", "unknown"}[o]
}

// Ledger is safe for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	pins map[string][]Version // unique_id → versions in the order sent
}

// Version is one version of a pin that was sent, and its outcome.
type Version struct {
	Title   string
	Outcome Outcome
}

// New returns an empty ledger.
func New() *Ledger { return &Ledger{pins: map[string][]Version{}} }

// Title returns the title that marks version n of a pin.
func Title(n int) string { return fmt.Sprintf("chaos v%d", n) }

// Record adds the outcome of one request whose pins were ids, each sent with
// the title it is mapped to. The ids must be lower case.
func (l *Ledger) Record(titles map[string]string, o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, title := range titles {
		l.pins[id] = append(l.pins[id], Version{Title: title, Outcome: o})
	}
}

// Counts returns how many pin versions had each outcome.
func (l *Ledger) Counts() map[Outcome]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[Outcome]int{}
	for _, vs := range l.pins {
		for _, v := range vs {
			out[v.Outcome]++
		}
	}
	return out
}

// Versions returns a copy of what was sent for each unique_id.
func (l *Ledger) Versions() map[string][]Version {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]Version, len(l.pins))
	for id, vs := range l.pins {
		out[id] = slices.Clone(vs)
	}
	return out
}

// Rows is what one store holds: each unique_id with the title of each row
// it has for it (a store of one row per pin lists one title).
type Rows map[string][]string

// Finding is what a check of one store found wrong; the zero value is a
// store that agrees with the ledger.
type Finding struct {
	Store        string
	Lost         []string // accepted, not there
	Duplicated   []string // there more than once
	WrongVersion []string // there with a version that cannot be the winner
	NeverSent    []string // there, never sent (or refused)
}

// OK reports whether nothing is wrong.
func (f Finding) OK() bool {
	return len(f.Lost)+len(f.Duplicated)+len(f.WrongVersion)+len(f.NeverSent) == 0
}

func (f Finding) String() string {
	if f.OK() {
		return f.Store + ": ok"
	}
	var parts []string
	add := func(what string, ids []string) {
		if len(ids) > 0 {
			slices.Sort(ids)
			parts = append(parts, fmt.Sprintf("%d %s (%s)", len(ids), what, strings.Join(ids[:min(3, len(ids))], ", ")))
		}
	}
	add("lost", f.Lost)
	add("duplicated", f.Duplicated)
	add("wrong version", f.WrongVersion)
	add("never sent", f.NeverSent)
	return f.Store + ": " + strings.Join(parts, "; ")
}

// winners returns the titles a store may hold as a pin's winning version,
// and whether it may hold none. The last accepted version wins, unless a
// version sent after it has an unknown outcome, which wins when it was
// written. A version refused is nowhere.
func winners(vs []Version) (titles []string, mayBeAbsent bool) {
	mayBeAbsent = true
	for _, v := range vs {
		switch v.Outcome {
		case Accepted:
			titles, mayBeAbsent = []string{v.Title}, false
		case Unknown:
			titles = append(titles, v.Title)
		}
	}
	return titles, mayBeAbsent
}

// CheckLatest checks a store that keeps one row per pin, its winning
// version (Postgres, Cassandra): every pin accepted is there once with the
// version that won, every pin with unknown outcomes is there at most once
// with one of them, and nothing else is there.
func (l *Ledger) CheckLatest(store string, rows Rows) Finding {
	f := Finding{Store: store}
	sent := l.Versions()
	for id, vs := range sent {
		f.check(id, vs, rows[id])
	}
	for id := range rows {
		if _, ok := sent[id]; !ok {
			f.NeverSent = append(f.NeverSent, id)
		}
	}
	return f
}

// DayKey is the key of a pin's row of one day in the Rows of a store that
// keeps a row per pin and day (CheckDaily).
func DayKey(id, dt string) string { return id + "@" + dt }

// Landed is the day each version of a pin landed on, as the raw zone holds
// it (the UTC day of its Kafka timestamp): unique_id → title → days.
type Landed map[string]map[string][]string

// CheckDaily checks a store that keeps one row per pin and day, the
// winning version among those that landed on that day (the curated zone,
// pins_live), with rows keyed by DayKey: a pin re-sent across midnight has
// a row on each day. Each version's day is the raw zone's (landed); a
// version that never landed is the raw zone's check to find.
func (l *Ledger) CheckDaily(store string, rows Rows, landed Landed) Finding {
	f := Finding{Store: store}
	want := map[string]bool{}
	for id, vs := range l.Versions() {
		byDay := map[string][]Version{}
		for _, v := range vs {
			for _, dt := range landed[id][v.Title] {
				byDay[dt] = append(byDay[dt], v)
			}
		}
		for dt, dvs := range byDay {
			key := DayKey(id, dt)
			want[key] = true
			f.check(key, dvs, rows[key])
		}
	}
	for key := range rows {
		if !want[key] {
			f.NeverSent = append(f.NeverSent, key)
		}
	}
	return f
}

// check adds to f what is wrong with got, the titles a store holds under
// key, given the versions sent that it may hold there (in the order sent).
func (f *Finding) check(key string, vs []Version, got []string) {
	titles, mayBeAbsent := winners(vs)
	switch {
	case len(got) == 0 && !mayBeAbsent:
		f.Lost = append(f.Lost, key)
	case len(got) > 1:
		f.Duplicated = append(f.Duplicated, key)
	case len(got) == 1 && len(titles) == 0:
		f.NeverSent = append(f.NeverSent, key)
	case len(got) == 1 && !slices.Contains(titles, got[0]):
		f.WrongVersion = append(f.WrongVersion, fmt.Sprintf("%s=%q want %q", key, got[0], titles))
	}
}

// CheckAll checks a store that keeps every version written (the raw zone,
// read by partition and offset, each of them once): every accepted version
// is there, no version refused or never sent is. It returns the finding
// and how many extra copies of versions it holds: a producer's retry may
// write a record twice at two offsets (docs/kafka.md), which the version
// order and every downstream store absorb, so they are counted, not
// failed.
func (l *Ledger) CheckAll(store string, rows Rows) (Finding, int) {
	f := Finding{Store: store}
	sent := l.Versions()
	extra := 0
	for id, vs := range sent {
		have := map[string]int{}
		for _, t := range rows[id] {
			have[t]++
		}
		for _, v := range vs {
			n := have[v.Title]
			switch {
			case v.Outcome == Accepted && n == 0:
				f.Lost = append(f.Lost, id+" "+v.Title)
			case v.Outcome == Refused && n > 0:
				f.NeverSent = append(f.NeverSent, id+" "+v.Title)
			}
			if n > 1 {
				extra += n - 1
			}
			delete(have, v.Title)
		}
		for t := range have {
			f.NeverSent = append(f.NeverSent, id+" "+t)
		}
	}
	for id := range rows {
		if _, ok := sent[id]; !ok {
			f.NeverSent = append(f.NeverSent, id)
		}
	}
	return f, extra
}
