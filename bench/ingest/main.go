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
	"runtime/pprof"
	"slices"
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
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

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

	rows := []result{
		run("single pin (application/json)", base, "application/json", singles, 1, *single, *duration),
		run(fmt.Sprintf("%d-pin NDJSON", *bulkSize), base, "application/x-ndjson", bulks, *bulkSize, *bulk, *duration),
	}
	what := target(*url)
	if *url == "" && !*lanes {
		what += ", lanes off"
	}
	fmt.Printf("\nPOST /pins against %s, %s per scenario, GOMAXPROCS=%d\n\n", what, *duration, runtimeProcs())
	fmt.Printf("| %-30s | %5s | %10s | %10s | %8s | %8s | %8s | %6s |\n", "scenario", "conc", "requests/s", "pins/s", "p50 ms", "p99 ms", "max ms", "errors")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", dash(32), dash(7), dash(12), dash(12), dash(10), dash(10), dash(10), dash(8))
	for _, r := range rows {
		fmt.Printf("| %-30s | %5d | %10.0f | %10.0f | %8.2f | %8.2f | %8.2f | %6d |\n",
			r.name, r.conc, r.rps, r.pps, ms(r.p50), ms(r.p99), ms(r.max), r.errors)
	}
}

type result struct {
	name          string
	conc          int
	rps, pps      float64
	p50, p99, max time.Duration
	errors        int64
}

// run posts bodies round-robin from conc clients for d and measures each
// request's latency.
func run(name, base, contentType string, bodies [][]byte, pinsPer, conc int, d time.Duration) result {
	fmt.Fprintf(os.Stderr, "running %q with %d clients for %s…\n", name, conc, d)
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next, errs atomic.Int64
	lat := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	start := time.Now()
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
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{name: name, conc: conc, errors: errs.Load()}
	if len(all) > 0 {
		r.rps = float64(len(all)) / elapsed.Seconds()
		r.pps = r.rps * float64(pinsPer)
		r.p50, r.p99, r.max = all[len(all)*50/100], all[len(all)*99/100], all[len(all)-1]
	}
	return r
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
