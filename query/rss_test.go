package query_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"pinpipe/query"
)

// rssMemoryLimit is DuckDB's memory limit in the RSS test, and rssBound
// the most the process may hold at its peak (VmHWM) under the attacks:
// the memory limit plus the margin docs/sql-sandbox.md states.
const (
	rssMemoryLimit = "1GB"
	rssBound       = 1e9 + 1<<30 // memory limit + 1 GiB margin
)

// rssAttacks are the statements that used to take gigabytes outside
// DuckDB's memory limit, by scenario; a scenario runs its statements at
// once.
var rssAttacks = map[string][]string{
	"a gigabyte string":        {"SELECT repeat('x', 1000000000)"},
	"a long list":              {"SELECT range(20000000)"},
	"both at once":             {"SELECT repeat('x', 1000000000)", "SELECT range(20000000)"},
	"many medium values":       {"SELECT repeat('x', 60000) FROM range(100000)"},
	"a big aggregate":          {"SELECT list(i) FROM range(150000000) t(i)"},
	"a big string aggregate":   {"SELECT string_agg(repeat('x', 1000), '') FROM range(3000000)"},
	"four big answers at once": {"SELECT repeat('x', 65000) || i FROM range(100000) t(i)", "SELECT repeat(chr(0), 65000) FROM range(100000)", "SELECT range(8000) FROM range(100000)", "SELECT list(i) OVER (ORDER BY i ROWS BETWEEN 3000 PRECEDING AND CURRENT ROW) FROM range(100000) t(i)"},
}

// TestQueryRSSStaysWithinTheStatedBound runs each scenario in a child
// process (this test binary again) and reads its peak resident size.
func TestQueryRSSStaysWithinTheStatedBound(t *testing.T) {
	if name := os.Getenv("QUERY_RSS_SCENARIO"); name != "" {
		rssChild(t, name)
		return
	}
	if testing.Short() {
		t.Skip("starts a process per scenario")
	}
	for name := range rssAttacks {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestQueryRSSStaysWithinTheStatedBound$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "QUERY_RSS_SCENARIO="+name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the child failed: %v\n%s", err, tail(out))
			}
			peak := int64(-1)
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "RSS_PEAK_KB" {
					peak, _ = strconv.ParseInt(f[1], 10, 64)
					t.Logf("peak RSS %d MiB (%s)", peak/1024, f[2])
				}
			}
			if peak < 0 {
				t.Fatalf("the child reported no peak:\n%s", tail(out))
			}
			if peak*1024 > rssBound {
				t.Fatalf("peak RSS %d MiB, more than the stated bound of %d MiB", peak/1024, rssBound>>20)
			}
		})
	}
}

// rssChild runs one scenario against a fresh engine and prints the peak.
func rssChild(t *testing.T, name string) {
	st := newStack(t, func(o *query.Options) { o.MemoryLimit = rssMemoryLimit; o.Threads = 2; o.Timeout = 60e9 })
	st.land(pinsOf(t, 7, "2026-11-20", 10), "20261121T080000Z", 100)
	st.ok("SELECT count(*) FROM pins")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var statuses []string
	for _, sql := range rssAttacks[name] {
		wg.Go(func() {
			a := st.post(sql, query.MaxLimit)
			mu.Lock()
			statuses = append(statuses, strconv.Itoa(a.Status))
			mu.Unlock()
			if a.Status == http.StatusOK {
				t.Errorf("%s answered 200 with %d bytes", sql, len(a.Body))
			}
		})
	}
	wg.Wait()
	st.unharmed(10)
	fmt.Printf("RSS_PEAK_KB %d statuses=%s\n", vmHWM(t), strings.Join(statuses, ","))
}

// vmHWM returns this process's peak resident set size in kB.
func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read the peak RSS: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
