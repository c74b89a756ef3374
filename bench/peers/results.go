package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results collects what each part measured.
type results struct {
	ratios []ratio
	raw    []rawRow
	notes  []string
	failed []string
}

// ratio compares one number of pinpipe's with the same number of a peer's,
// both measured in the same run.
type ratio struct {
	part, what, peer string
	unit             string
	pinpipe, other   float64
	lowerBetter      bool
}

// times returns how many times better pinpipe is (>1: better).
func (r ratio) times() float64 {
	if r.pinpipe == 0 || r.other == 0 {
		return 0
	}
	if r.lowerBetter {
		return r.other / r.pinpipe
	}
	return r.pinpipe / r.other
}

// rawRow is one side's numbers for one case.
type rawRow struct {
	part, side, what string
	values           string
}

func (r *results) compare(part, what, peer, unit string, pinpipe, other float64, lowerBetter bool) {
	r.ratios = append(r.ratios, ratio{part, what, peer, unit, pinpipe, other, lowerBetter})
}

func (r *results) record(part, side, what, format string, args ...any) {
	r.raw = append(r.raw, rawRow{part, side, what, fmt.Sprintf(format, args...)})
}

func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// print writes the ratio table, then the raw numbers, as Markdown.
func (r *results) print(w io.Writer, e *env) {
	fmt.Fprintf(w, "\n## pinpipe vs its peers, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d cores, %s; load average at the end %s\n", cpuModel(), runtime.NumCPU(), memTotal(), loadAvg())
	var vs []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range e.versions {
			if !yield(k) {
				return
			}
		}
	}) {
		vs = append(vs, k+" "+e.versions[k])
	}
	fmt.Fprintf(w, "peers: %s; %s\n\n", strings.Join(vs, ", "), runtime.Version())

	if len(r.ratios) > 0 {
		fmt.Fprintf(w, "| part | measure | peer | pinpipe | peer | pinpipe better by |\n|---|---|---|---:|---:|---:|\n")
		for _, x := range r.ratios {
			fmt.Fprintf(w, "| %s | %s (%s) | %s | %s | %s | %.1f× |\n", x.part, x.what, x.unit, x.peer, num(x.pinpipe), num(x.other), x.times())
		}
	}
	if len(r.raw) > 0 {
		fmt.Fprintf(w, "\n| part | side | case | numbers |\n|---|---|---|---|\n")
		for _, x := range r.raw {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", x.part, x.side, x.what, x.values)
		}
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	for _, f := range r.failed {
		fmt.Fprintf(w, "\n- FAILED %s", f)
	}
	fmt.Fprintln(w)
}

// num formats a number with a precision that suits its size.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
	return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
