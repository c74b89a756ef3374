// Command ingest measures POST /pins: requests/s, pins/s and latency
// percentiles for single-pin requests and for 1000-pin NDJSON requests,
// against an in-process pinpipe (embedded broker unless
// PINPIPE_KAFKA_BROKERS is set), and prints a table.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/ingest"
	"pinpipe/pipeline"
	"pinpipe/server"
	"pinpipe/synth"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "how long each scenario runs")
	single := flag.Int("single-conc", 64, "concurrent clients for single-pin requests")
	bulk := flag.Int("bulk-conc", 4, "concurrent clients for NDJSON requests")
	bulkSize := flag.Int("bulk-size", 1000, "pins per NDJSON request")
	url := flag.String("url", "", "measure this running pinpipe instead of an in-process one")
	lanes := flag.Bool("lanes", true, "run the batch, stream and query lanes in the same process (false: the HTTP layer and producer alone)")
	cpuprofile := flag.String("cpuprofile", "", "write each scenario's CPU profile to FILE.single and FILE.bulk (the in-process pinpipe and the load generator; `go tool pprof FILE.single`)")
	pid := flag.Int("pid", 0, "with --url: the pinpipe process whose CPU (utime+stime from /proc) each scenario reports per pin; 0 without --url means this process, load generator included")
	flag.Parse()

	base := *url
	if base == "" {
		dir, err := os.MkdirTemp("", "pinpipe-bench-ingest-")
		check(err)
		defer os.RemoveAll(dir)
		fs := flag.NewFlagSet("pinpipe", flag.ContinueOnError)
		cfg, _, err := config.Load(fs, []string{"--addr", "127.0.0.1:0", "--data-dir", dir}, os.Getenv)
		check(err)
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if *lanes {
			p, err := pipeline.Start(context.Background(), cfg, log)
			check(err)
			defer p.Stop(context.Background())
			base = "http://" + p.Addr
		} else {
			addr, stop := ingestOnly(cfg, log)
			defer stop()
			base = "http://" + addr
		}
	}

	gen := synth.New(1)
	fmt.Fprintf(os.Stderr, "preparing request bodies…\n")
	singles := make([][]byte, 50000)
	for i := range singles {
		singles[i] = bytes.TrimSpace(gen.NDJSON(1))
	}
	bulks := make([][]byte, 64)
	for i := range bulks {
		bulks[i] = gen.NDJSON(*bulkSize)
	}

	cpuOf := *pid
	if cpuOf == 0 && *url == "" {
		cpuOf = os.Getpid()
	}
	// An in-process run is profiled, to split its CPU by stage.
	var prof *profiler
	if *url == "" {
		prof = &profiler{prefix: *cpuprofile}
	}
	rows := []result{
		run("single pin (application/json)", "single", base, "application/json", singles, 1, *single, *duration, cpuOf, prof),
		run(fmt.Sprintf("%d-pin NDJSON", *bulkSize), "bulk", base, "application/x-ndjson", bulks, *bulkSize, *bulk, *duration, cpuOf, prof),
	}
	what := target(*url)
	if *url == "" && !*lanes {
		what += ", lanes off"
	}
	fmt.Printf("\nPOST /pins against %s, %s per scenario, GOMAXPROCS=%d\n", what, *duration, runtimeProcs())
	switch {
	case cpuOf == os.Getpid():
		fmt.Printf("CPU per pin: this process (utime+stime), the load generator included\n")
	case cpuOf != 0:
		fmt.Printf("CPU per pin: process %d (utime+stime)\n", cpuOf)
	}
	fmt.Println()
	fmt.Printf("| %-30s | %5s | %10s | %10s | %8s | %8s | %8s | %10s | %6s |\n", "scenario", "conc", "requests/s", "pins/s", "p50 ms", "p99 ms", "max ms", "CPU µs/pin", "errors")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", dash(32), dash(7), dash(12), dash(12), dash(10), dash(10), dash(10), dash(12), dash(8))
	for _, r := range rows {
		cpu := "-"
		if r.cpuPerPin > 0 {
			cpu = fmt.Sprintf("%.1f", r.cpuPerPin)
		}
		fmt.Printf("| %-30s | %5d | %10.0f | %10.0f | %8.2f | %8.2f | %8.2f | %10s | %6d |\n",
			r.name, r.conc, r.rps, r.pps, ms(r.p50), ms(r.p99), ms(r.max), cpu, r.errors)
	}
	if prof == nil {
		return
	}
	// The profile's samples split the process's CPU per pin by stage.
	fmt.Printf("\nCPU µs per pin by stage (CPU profile samples per pin; the rest of the process's utime+stime ran in threads Go does not profile: DuckDB's)\n\n")
	fmt.Printf("| %-36s |", "stage")
	for _, r := range rows {
		fmt.Printf(" %30s |", r.name)
	}
	fmt.Printf("\n|%s|", dash(38))
	for range rows {
		fmt.Printf("%s|", dash(32))
	}
	fmt.Println()
	names := []string{}
	for _, st := range stages {
		names = append(names, st.name)
	}
	names = append(names, "other (runtime, scheduler, syscalls)")
	const unprofiled, own = "not in the profile (DuckDB's threads)", "pinpipe (all but the load generator)"
	for _, name := range append(names, unprofiled, own) {
		fmt.Printf("| %-36s |", name)
		for _, r := range rows {
			us := 0.0
			if r.pins > 0 {
				d := r.stages.by[name]
				switch name {
				case unprofiled:
					d = max(r.cpu-r.stages.total, 0)
				case own:
					d = max(r.cpu, r.stages.total) - r.stages.by[stages[0].name]
				}
				us = float64(d.Microseconds()) / float64(r.pins)
			}
			fmt.Printf(" %30.1f |", us)
		}
		fmt.Println()
	}
}

type result struct {
	name          string
	conc          int
	rps, pps      float64
	p50, p99, max time.Duration
	errors        int64
	cpuPerPin     float64 // µs of the measured process's CPU per accepted pin; 0 when not measured
	stages        stageCPU
	pins          int           // pins accepted
	cpu           time.Duration // the measured process's CPU over the scenario
}

// run posts bodies round-robin from conc clients for d and measures each
// request's latency and, when pid is not 0, that process's CPU.
func run(name, short, base, contentType string, bodies [][]byte, pinsPer, conc int, d time.Duration, pid int, prof *profiler) result {
	fmt.Fprintf(os.Stderr, "running %q with %d clients for %s…\n", name, conc, d)
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	start := time.Now()
	if prof != nil {
		prof.start()
	}
	cpu0 := procCPU(pid)
	var wg sync.WaitGroup
	for c := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				body := bodies[next.Add(1)%int64(len(bodies))]
				t0 := time.Now()
				resp, err := client.Post(base+"/pins", contentType, bytes.NewReader(body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := procCPU(pid) - cpu0
	var st stageCPU
	if prof != nil {
		st = prof.stop(short)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{name: name, conc: conc, errors: errs.Load(), stages: st}
	if len(all) > 0 {
		r.rps = float64(len(all)) / elapsed.Seconds()
		r.pps = r.rps * float64(pinsPer)
		r.p50, r.p99, r.max = all[len(all)*50/100], all[len(all)*99/100], all[len(all)-1]
		r.pins, r.cpu = len(all)*pinsPer, cpu
		if pid != 0 {
			r.cpuPerPin = float64(cpu.Microseconds()) / float64(len(all)*pinsPer)
		}
	}
	return r
}

// procCPU returns the user+system CPU time process pid has used, from
// /proc/<pid>/stat; 0 when pid is 0. Exits when it cannot be read.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The command name (field 2) may hold spaces: count from after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		check(fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 13", pid, len(f)))
	}
	// utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	ut, err := strconv.ParseInt(f[11], 10, 64)
	check(err)
	st, err := strconv.ParseInt(f[12], 10, 64)
	check(err)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func target(url string) string {
	if url != "" {
		return url
	}
	if b := os.Getenv("PINPIPE_KAFKA_BROKERS"); b != "" {
		return "an in-process pinpipe on Kafka " + b
	}
	return "an in-process pinpipe on the embedded broker"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func dash(n int) string          { return string(bytes.Repeat([]byte("-"), n)) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingest:", err)
		os.Exit(1)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// ingestOnly serves POST /pins with the producer alone, on the configured
// brokers or an embedded one: what the ingest path costs by itself.
func ingestOnly(cfg *config.Config, log *slog.Logger) (string, func()) {
	brokers := cfg.KafkaBrokers
	var b *broker.Embedded
	if len(brokers) == 0 {
		var err error
		b, err = broker.Start(cfg.DataDir+"/kafka", "127.0.0.1:0", cfg.Topic, log)
		check(err)
		brokers = b.Addrs()
	}
	check(broker.EnsureTopic(context.Background(), brokers, cfg.Topic, broker.Partitions))
	reg := prometheus.NewRegistry()
	prod := ingest.NewProducer(brokers, cfg.Topic, reg)
	srv := server.New(server.Options{Log: log, Registry: reg, MaxBodyBytes: cfg.MaxBodyBytes, Producer: prod})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	return ln.Addr().String(), func() {
		_ = hs.Close()
		_ = prod.Close()
		if b != nil {
			b.Close()
		}
	}
}
