// Command batch measures the daily batch job over a day of synthetic raw
// pins (1,000,000 by default, 5 % of them re-sends of earlier pins):
// rows/s for reading, cleaning and writing the curated Parquet, and
// separately for writing the serving tables (the real Cassandra when
// PINPIPE_CASSANDRA_HOSTS is set, else the embedded stand-in), and the
// run's peak resident memory, and prints a table. The run happens in a
// child process, so the peak (VmHWM) is the run's, not the raw zone's
// generation; PINPIPE_BATCH_MEMORY sets its budget as it does for serve.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/config"
	"pinpipe/lake/layout"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

func main() {
	n := flag.Int("pins", 1_000_000, "raw records in the day")
	perObject := flag.Int("per-object", 10_000, "records per raw object (PINPIPE_LANDING_MAX_RECORDS)")
	dupEvery := flag.Int("dup-every", 20, "every n-th record repeats an earlier pin (0: none)")
	dt := flag.String("date", "2024-01-15", "the day the pins land in")
	bucket := flag.String("bucket", "pinpipe-bench", "S3 bucket (a real S3 server's bucket is reused between runs)")
	keyspace := flag.String("keyspace", "pinpipe_bench", "Cassandra keyspace")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the job's run to this file")
	child := flag.String("child", "", "run the job over the raw zone already in this data dir (the parent runs it so)")
	serve := flag.Bool("serving", true, "write the serving tables too; false stops the run after the curated zone (the job's own work, without the serving store's memory)")
	flag.Parse()

	dir := *child
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "pinpipe-bench-batch-")
		check(err)
		defer os.RemoveAll(dir)
	}
	fs := flag.NewFlagSet("pinpipe", flag.ContinueOnError)
	cfg, _, err := config.Load(fs, []string{"--data-dir", dir, "--s3-bucket", *bucket, "--cassandra-keyspace", *keyspace}, os.Getenv)
	check(err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	r, err := pipeline.OpenBatch(ctx, cfg, log, prometheus.NewRegistry())
	check(err)

	if *child == "" {
		start := time.Now()
		objects := writeRawDay(ctx, r, *dt, *n, *perObject, *dupEvery)
		fmt.Fprintf(os.Stderr, "raw zone: %d records in %d objects written in %s (not part of the run)\n", *n, objects, time.Since(start).Round(time.Millisecond))
		check(r.Close(ctx))
		cmd := exec.Command(os.Args[0], append(os.Args[1:], "-child", dir)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		check(cmd.Run())
		return
	}
	defer r.Close(ctx)

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	// The embedded serving stand-in is DuckDB, whose memory is its own:
	// the peak before the serving write is the job's alone.
	var curatedPeak int64
	r.Job.AfterCurated = func(context.Context) error {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		curatedPeak = ru.Maxrss
		if !*serve {
			return errNoServing
		}
		return nil
	}
	p := &printer{last: time.Now()}
	start := time.Now()
	res, err := r.Job.Run(ctx, *dt, "bench-"+time.Now().UTC().Format("20060102T150405Z"), p.progress)
	total := time.Since(start)
	pprof.StopCPUProfile()
	if !errors.Is(err, errNoServing) {
		check(err)
	}

	serving := "embedded stand-in (DuckDB)"
	if !*serve {
		serving = "none (-serving=false: the run stops after the curated zone)"
	} else if len(cfg.CassandraHosts) > 0 {
		serving = "Cassandra " + strings.Join(cfg.CassandraHosts, ",")
	}
	s3 := "embedded S3 (gofakes3)"
	if cfg.S3Endpoint != "" {
		s3 = "S3 " + cfg.S3Endpoint
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("\nbatch job over %d raw records in %d objects (%d duplicates), day %s, GOMAXPROCS=%d, PINPIPE_BATCH_MEMORY=%d\n", res.RowsIn, res.Objects, res.RowsIn-res.RowsOut-res.RowsRejected, *dt, runtime.GOMAXPROCS(0), cfg.BatchMemory)
	fmt.Printf("lake: %s; serving store: %s\n\n", s3, serving)
	fmt.Printf("| %-60s | %9s | %9s | %9s |\n", "part", "rows", "seconds", "rows/s")
	fmt.Printf("|%s|%s|%s|%s|\n", dash(62), dash(11), dash(11), dash(11))
	row := func(name string, rows int64, d time.Duration) {
		fmt.Printf("| %-60s | %9d | %9.1f | %9.0f |\n", name, rows, d.Seconds(), float64(rows)/d.Seconds())
	}
	row("read raw + clean + dedupe + write curated Parquet (rows in)", res.RowsIn, res.Curated)
	if *serve {
		row("write the serving tables (rows out)", res.RowsOut, res.Serving)
	}
	row("whole run (rows in)", res.RowsIn, total)
	fmt.Printf("\npeak resident memory of the run's process (VmHWM): %.0f MiB; up to the serving write: %.0f MiB\n",
		float64(ru.Maxrss)/1024, float64(curatedPeak)/1024)
}

// errNoServing stops a run after the curated zone (-serving=false).
var errNoServing = errors.New("the serving write is skipped (-serving=false)")

// writeRawDay fills the raw zone of day dt with n synthetic records, as the
// landing would (objects of perObject records over three partitions),
// after removing what an earlier run left there. Returns the number of
// objects.
func writeRawDay(ctx context.Context, r *pipeline.BatchRunner, dt string, n, perObject, dupEvery int) int {
	old, err := r.Lake.List(ctx, layout.Raw.DayPrefix(dt))
	check(err)
	keys := make([]string, len(old))
	for i, o := range old {
		keys[i] = o.Key
	}
	check(r.Lake.Delete(ctx, keys...))

	day, err := time.Parse(time.DateOnly, dt)
	check(err)
	gen := synth.New(7)
	var (
		mu      sync.Mutex
		written int
		earlier [][]byte
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	objects := 0
	offsets := [3]int64{}
	for first := 0; first < n; first += perObject {
		part := objects % 3
		recs := make([]batch.RawRecord, min(perObject, n-first))
		for i := range recs {
			seq := first + i
			var v []byte
			if dupEvery > 0 && seq%dupEvery == dupEvery-1 && len(earlier) > 0 {
				v = earlier[seq%len(earlier)]
			} else {
				v, _ = json.Marshal(gen.Next())
				if len(earlier) < 10_000 {
					earlier = append(earlier, v)
				}
			}
			recs[i] = batch.RawRecord{
				Topic: "pins", Partition: int32(part), Offset: offsets[part] + int64(i),
				Timestamp: day.Add(time.Duration(seq) * (24 * time.Hour / time.Duration(n+1))).Truncate(time.Millisecond),
				Value:     string(v),
			}
		}
		key := layout.RawKey(dt, part, offsets[part], offsets[part]+int64(len(recs))-1)
		offsets[part] += int64(len(recs))
		objects++
		g.Go(func() error {
			var buf bytes.Buffer
			if err := batch.WriteRaw(&buf, recs); err != nil {
				return err
			}
			if err := r.Lake.Put(gctx, key, &buf); err != nil {
				return err
			}
			mu.Lock()
			written += len(recs)
			fmt.Fprintf(os.Stderr, "\rwriting the raw zone: %d/%d records", written, n)
			mu.Unlock()
			return nil
		})
	}
	check(g.Wait())
	fmt.Fprintln(os.Stderr)
	return objects
}

// printer writes a progress line per phase, at most every second.
type printer struct {
	phase string
	last  time.Time
}

func (p *printer) progress(pr batch.Progress) {
	if pr.Phase == p.phase && time.Since(p.last) < time.Second && pr.Done != pr.Total {
		return
	}
	if pr.Phase != p.phase && p.phase != "" {
		fmt.Fprintln(os.Stderr)
	}
	p.phase, p.last = pr.Phase, time.Now()
	fmt.Fprintf(os.Stderr, "\r%-8s %9d/%d", pr.Phase, pr.Done, pr.Total)
}

func dash(n int) string { return strings.Repeat("-", n) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/batch:", err)
		os.Exit(1)
	}
}
