package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"pinpipe/internal/ledger"
)

// report prints the soak's tables and returns whether any store lost,
// doubled or mis-versioned a pin (or holds one never sent), or any fault
// failed or was not recovered from.
// The load lasts until the last fault recovered, which may be past
// -duration (every kind gets a fault, and a killed broker may take minutes
// to rejoin): posted is how long pins were posted, took the whole run.
// interrupted says the soak was stopped early: its verdict covers the
// faults injected until then. notAimed counts, by kind, the faults aimed
// at a batch run that found none and were drawn again (not in faults).
func report(o *options, faults []fault, notAimed map[string]int, ld *loader, l *ledger.Ledger, findings []ledger.Finding, extra int, posted, took time.Duration, interrupted bool) bool {
	fmt.Printf("chaos soak: seed %d, -duration %s; pins posted for %s at %.0f pins/s, %d faults (took %s with the final check)\n",
		o.seed, o.duration, posted.Round(time.Second), o.rate, len(faults), took.Round(time.Second))
	if interrupted {
		fmt.Println("interrupted before -duration and -min-faults were reached: the check covers the faults below")
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(w, "fault\tcount\tfailed\tworst held\tworst ready after\tworst caught up after\tnot caught up\tnot aimed, redrawn\t")
	skipped := map[string]string{}
	var none []string // kinds with no fault at all (not interrupted)
	for _, k := range kinds {
		var n, failed, stuck int
		var held, ready, caught time.Duration
		for _, f := range faults {
			if f.kind != k {
				continue
			}
			if f.skipped != "" {
				skipped[k] = f.skipped
				continue
			}
			n++
			if f.err != nil {
				failed++
			}
			if !f.recovered {
				stuck++
			}
			held, ready, caught = max(held, f.held), max(ready, f.ready), max(caught, f.caughtUp)
		}
		if _, ok := skipped[k]; n == 0 && !ok && !interrupted {
			none = append(none, k)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t\n", k, n, failed, held.Round(100*time.Millisecond),
			ready.Round(100*time.Millisecond), caught.Round(100*time.Millisecond), stuck, notAimed[k])
	}
	_ = w.Flush()
	for _, k := range kinds {
		if why, ok := skipped[k]; ok {
			fmt.Printf("%s: SKIPPED on this machine: %s\n", k, why)
		}
	}
	counts := l.Counts()
	fmt.Printf("\npin versions: %d accepted, %d refused, %d unknown; answers: %d 202, %d 4xx, %d 429, %d 5xx, %d no answer\n",
		counts[ledger.Accepted], counts[ledger.Refused], counts[ledger.Unknown], ld.answers[class2xx].Load(),
		ld.answers[class4xx].Load(), ld.answers[class429].Load(), ld.answers[class5xx].Load(), ld.answers[classUnknown].Load())
	fmt.Printf("worst freshness (202 → its version in Postgres, sampled): %s\n", time.Duration(ld.worst.Load())*time.Millisecond)
	fmt.Printf("raw zone: %d extra copies from producer retries (allowed, docs/kafka.md)\n\n", extra)
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(w, "store\tlost\tduplicated\twrong version\tnever sent\t")
	// A fault that could not be repaired or not recovered from is a
	// stuck recovery: the run fails on it as on a lost pin.
	bad := len(findings) < 5
	for _, k := range none {
		fmt.Printf("%s: no fault of this kind was injected\n", k)
		bad = true
	}
	for _, f := range faults {
		bad = bad || (f.skipped == "" && (f.err != nil || !f.recovered))
	}
	for _, f := range findings {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t\n", f.Store, len(f.Lost), len(f.Duplicated), len(f.WrongVersion), len(f.NeverSent))
		bad = bad || !f.OK()
	}
	_ = w.Flush()
	for _, f := range findings {
		if !f.OK() {
			fmt.Println(f)
		}
	}
	if bad {
		fmt.Println("\nFAIL")
	} else {
		fmt.Println("\nPASS: every accepted pin once in every store, with the same winning version")
	}
	return bad
}
