// Command chaos is a seeded soak of pinpipe under faults on the real stack.
// It starts two pinpipe processes (every role) whose Postgres, Cassandra
// and S3 connections go through proxies it controls, posts generated pins
// to both for -duration at -rate (about one pin in five a newer version of
// an earlier one), and meanwhile injects faults one at a time, drawn from
// -seed: SIGKILL of a pinpipe then a restart, at a random time (landing
// uploads and stream writes go on all the time) and aimed at a batch run
// it is running; SIGKILL of a Kafka broker then a restart (scripts/stack
// stop kafka-N --kill, start kafka-N); the Postgres or S3 process stopped
// (SIGTERM or SIGKILL) for 5 s to -max-cut then started again; Cassandra
// killed while a batch run writes, then started again, the run ending
// succeeded or failed and run again; a cut of Postgres, Cassandra or S3
// for 5 s to -max-cut while its process lives; and the data directory of
// one pinpipe, a tmpfs of -disk-size (it needs root; without it the kind
// is skipped and the report says why), filled to the last byte for 5 s to
// -max-cut. Each request's outcome goes into a ledger (internal/ledger). At
// the end it runs the daily job for every day involved and reads every
// zone — the raw zone by partition/offset, Postgres, the curated zone,
// Cassandra and pins_live — and checks each against the ledger.
//
//	eval "$(scripts/stack env)"; go run ./bench/chaos -seed 1 -duration 2m
//
// It prints a table of faults by kind with their recovery times, the pins
// accepted, refused and unknown, and per store the pins lost, duplicated
// and of the wrong version, and exits 1 on any of those.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/internal/instance"
	"pinpipe/internal/ledger"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
)

type options struct {
	seed       uint64
	duration   time.Duration
	rate       float64
	faultEvery time.Duration
	maxCut     time.Duration
	diskSize   string
	minFaults  int
	keep       bool
}

func main() {
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	var o options
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the fault schedule and the pins")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "how long to post pins and inject faults")
	fs.Float64Var(&o.rate, "rate", 50, "pins per second posted")
	fs.DurationVar(&o.faultEvery, "fault-every", 20*time.Second, "mean quiet time between one fault's recovery and the next fault")
	fs.DurationVar(&o.maxCut, "max-cut", time.Minute, "longest network cut, stop of a dependency or full disk (the shortest is 5s)")
	fs.StringVar(&o.diskSize, "disk-size", "256m", "size of the tmpfs holding one instance's data directory, for the disk-full fault")
	fs.IntVar(&o.minFaults, "min-faults", 0, "inject at least this many faults, going on past -duration if need be (at least one of each kind in any case)")
	fs.BoolVar(&o.keep, "keep", false, "keep the instances' logs and data directories")
	cfg, _, err := config.Load(fs, os.Args[1:], os.Getenv)
	check(err)
	if len(cfg.KafkaBrokers) < 3 || cfg.PostgresURL == "" || len(cfg.CassandraHosts) == 0 || cfg.S3Endpoint == "" {
		fmt.Fprintln(os.Stderr, "bench/chaos needs the real stack with three Kafka brokers, Postgres, Cassandra and S3: eval \"$(scripts/stack env)\"")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "pinpipe-chaos-")
	check(err)
	code := run(&o, cfg, dir)
	if !o.keep { // run keeps it when the soak failed
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func run(o *options, cfg *config.Config, dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	basePG := cfg.PostgresURL
	check(prepare(ctx, cfg))
	defer instance.DropDatabase(basePG, cfg.PostgresURL)
	// Each keyspace left behind makes every Cassandra restart slower (it
	// opens every table of the schema before it serves).
	defer testenv.DropKeyspace(cfg.CassandraHosts, cfg.CassandraKeyspace)
	direct := *cfg // for the end-of-run read, not through the proxies

	proxies := map[string]*testenv.Proxy{}
	pg, _ := url.Parse(cfg.PostgresURL)
	s3, _ := url.Parse(cfg.S3Endpoint)
	for kind, target := range map[string]string{cutPostgres: pg.Host, cutCassandra: cfg.CassandraHosts[0], cutS3: s3.Host} {
		p, err := testenv.StartProxy(target)
		check(err)
		defer p.Close()
		proxies[kind] = p
	}
	viaProxy := *cfg
	pg.Host = proxies[cutPostgres].Addr
	viaProxy.PostgresURL = pg.String()
	viaProxy.CassandraHosts = []string{proxies[cutCassandra].Addr}
	s3.Host = proxies[cutS3].Addr
	viaProxy.S3Endpoint = s3.String()

	logf("building pinpipe; its logs go to %s", dir)
	bin, err := instance.Build(ctx, dir)
	check(err)
	// B's data directory on a small tmpfs of its own, for the disk-full
	// fault. Unmounted on every way out: after the instances are killed
	// (the deferred kill below runs first), and by check.
	disk, noDisk := filepath.Join(dir, "B"), ""
	if err := mountDisk(disk, o.diskSize); err != nil {
		disk, noDisk = "", err.Error()
		logf("disk full will be skipped: %v", err)
	} else {
		defer unmountDisk(disk)
		atExit = append(atExit, func() { unmountDisk(disk) })
	}
	var procs []*instance.Process
	for _, name := range []string{"A", "B"} {
		p, err := instance.NewIn(dir, name, bin, viaProxy)
		check(err)
		procs = append(procs, p)
	}
	killAll := func() {
		for _, p := range procs {
			_ = p.Kill()
		}
	}
	defer killAll()
	atExit = append(atExit, killAll)
	// A first: it creates the keyspace's tables. A busy Cassandra may not
	// answer the schema change within the driver's timeout, and pinpipe
	// then exits; like an orchestrator, start it again.
	for _, p := range procs {
		check(p.StartReady(ctx, 3, 3*time.Minute, logf))
	}

	stack := os.Getenv("PINPIPE_CHAOS_STACK")
	if stack == "" {
		stack, _ = filepath.Abs(filepath.Join("scripts", "stack"))
	}
	// Caught up: both lanes' lag under four seconds of load. Under a
	// steady load it never stays at 0 (the landing commits once per
	// upload, every second, and the lag is polled every few seconds).
	c := &chaos{rng: rand.New(rand.NewPCG(o.seed, o.seed^0x6a09e667f3bcc909)), procs: procs, proxies: proxies, stack: stack,
		brokers: len(cfg.KafkaBrokers), maxCut: o.maxCut, lagLimit: max(200, 4*o.rate), log: logf,
		disk: disk, diskProc: procs[1], noDisk: noDisk}
	defer c.restore()
	atExit = append(atExit, c.restore)

	l := ledger.New()
	ld := newLoader([]string{procs[0].URL(), procs[1].URL()}, l)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() { defer close(loaded); ld.run(loadCtx, o.seed, 2, 10, o.rate) }()
	freshCtx, stopFresh := context.WithCancel(ctx)
	go ld.watchFreshness(freshCtx, direct.PostgresURL)
	// Runs of today while faults happen, so kills and cuts meet batch runs.
	go func() {
		for loadCtx.Err() == nil {
			time.Sleep(c.between(20*time.Second, 40*time.Second))
			if loadCtx.Err() != nil {
				break // the end-of-run runs are verify's own
			}
			p := procs[c.rng.IntN(len(procs))]
			resp, err := http.Post(p.URL()+"/batch/runs", "application/json",
				strings.NewReader(`{"date":"`+time.Now().UTC().Format(time.DateOnly)+`"}`))
			if err == nil {
				_ = resp.Body.Close()
			}
		}
	}()

	start := time.Now()
	var faults []fault
	plan := c.schedule(max(1000, o.minFaults))
	// A fault aimed at a batch run that found none at its point injected
	// nothing: it is not counted, and another is drawn (the same kind again
	// while that kind has no fault yet). A kind that misses its aim
	// maxNotAimed times in a row counts as a failed fault: runs that never
	// get there are a finding of their own.
	const maxNotAimed = 3
	notAimed, missed := map[string]int{}, map[string]int{} // in all; in a row
	injected := 0
	hit := map[string]bool{}
	// Every kind at least once, however short -duration is, and at least
	// -min-faults.
	more := func() bool {
		return (time.Since(start) < o.duration || injected < max(len(kinds), o.minFaults) || len(hit) < len(kinds)) && ctx.Err() == nil
	}
	for i := 0; i < len(plan) && more(); i++ {
		time.Sleep(c.between(o.faultEvery/2, o.faultEvery*3/2))
		if !more() {
			break
		}
		logf("fault %d: %s", injected+1, plan[i])
		f := c.inject(plan[i])
		if f.notAimed != "" {
			notAimed[f.kind]++
			if missed[f.kind]++; missed[f.kind] < maxNotAimed {
				logf("  %s; drawing another", f.notAimed)
				if !hit[f.kind] {
					plan = slices.Insert(plan, i+1, f.kind)
				}
				continue
			}
			f.err = fmt.Errorf("%s (missed %d times in a row)", f.notAimed, maxNotAimed)
			f.notAimed = ""
		}
		missed[f.kind] = 0
		injected++
		hit[f.kind] = true
		if f.skipped != "" {
			logf("  skipped: %s", f.skipped)
			faults = append(faults, f)
			continue
		}
		logf("  %s on %s held %s; ready after %s, caught up after %s (recovered %v) %v",
			f.kind, f.target, f.held.Round(time.Millisecond), f.ready.Round(time.Millisecond), f.caughtUp.Round(time.Millisecond), f.recovered, errText(f.err))
		faults = append(faults, f)
	}
	interrupted := ctx.Err() != nil
	stopLoad()
	<-loaded
	posted := time.Since(start)
	c.restore()
	logf("posting stopped after %s: %d requests", time.Since(start).Round(time.Second), ld.requests.Load())
	// An interrupt ends the faults and the load, not the soak: what was
	// accepted until then is still checked. A second one stops the check.
	stop()
	vctx, vstop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer vstop()
	if interrupted {
		logf("interrupted: no more faults; checking every store against what %d requests posted (interrupt again to stop without the check)", ld.requests.Load())
	}

	findings, extra, err := verify(vctx, l, procs, &direct)
	stopFresh()
	if err != nil {
		logf("the end-of-run read failed: %v", err)
	}
	bad := report(o, faults, notAimed, ld, l, findings, extra, posted, time.Since(start), interrupted)
	if bad || err != nil {
		logf("the instances' logs are in %s", dir)
		o.keep = true
		return 1
	}
	return 0
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

// prepare gives cfg the soak's own topic, consumer groups, bucket, keyspace
// and Postgres database.
func prepare(ctx context.Context, c *config.Config) error {
	c.Topic, c.GroupPrefix = testenv.Name("chaos-"), testenv.Name("chaos-")
	c.TopicPartitions, c.TopicReplication = 6, 3
	c.S3Bucket = testenv.Name("chaos-")
	c.CassandraKeyspace = strings.ReplaceAll(testenv.Name("chaos_"), "-", "_")
	c.BatchCron = "0 3 1 1 *" // runs are the soak's own
	c.LandingInterval, c.StreamInterval = time.Second, 100*time.Millisecond
	c.MirrorStaleness = time.Second
	c.ShutdownDrain = time.Second
	c.LogLevel = "info"
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := broker.Ensure(tctx, c.KafkaBrokers, broker.Topic{Name: c.Topic, Partitions: 6, Replication: 3}, nil); err != nil {
		return err
	}
	// The keyspace and its tables, made directly rather than through the
	// proxy, with the patience a busy Cassandra's schema changes need.
	var err error
	for range 5 {
		var s *cassandra.Store
		if s, err = cassandra.Open(ctx, cassandra.Options{Hosts: c.CassandraHosts, Keyspace: c.CassandraKeyspace}); err == nil {
			s.Close()
			break
		}
		logf("cassandra: %v; trying again", err)
	}
	if err != nil {
		return err
	}
	// Its own minute: the keyspace may have taken several.
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	u, err := instance.FreshDatabase(pctx, c.PostgresURL, "chaos_")
	if err != nil {
		return err
	}
	c.PostgresURL = u
	return nil
}

// verify waits until the stores have caught up with every accepted pin,
// runs the daily job for each day involved, and checks every zone against
// the ledger. It returns a finding per store and the raw zone's extra
// copies from producer retries.
func verify(ctx context.Context, l *ledger.Ledger, procs []*instance.Process, cfg *config.Config) ([]ledger.Finding, int, error) {
	store, err := lake.Open(ctx, lake.Options{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.AWSRegion,
		AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey})
	if err != nil {
		return nil, 0, err
	}
	raw := &ledger.RawZone{Lake: store}
	var out []ledger.Finding
	// The raw zone and Postgres: wait until no accepted pin is missing.
	var rawF ledger.Finding
	var extra int
	var twice []string
	// await calls cond until it holds, for up to 5 minutes. A store that
	// is still short then is reported by its finding; one whose last read
	// failed has no finding, and its error is returned.
	await := func(what string, cond func() (bool, error)) error {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			ok, err := cond()
			if ok {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				logf("%s: still not caught up (%v)", what, err)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				return nil
			}
			time.Sleep(2 * time.Second)
		}
	}
	if err := await("raw zone", func() (bool, error) {
		rows, tw, err := raw.Rows(ctx)
		if err != nil {
			return false, err
		}
		twice = tw
		rawF, extra = l.CheckAll("raw zone", rows)
		return len(rawF.Lost) == 0, nil
	}); err != nil {
		return out, extra, err
	}
	rawF.Duplicated = append(rawF.Duplicated, twice...)
	out = append(out, rawF)
	pgF := ledger.Finding{Store: "postgres"}
	if err := await("postgres", func() (bool, error) {
		rows, err := ledger.Postgres(ctx, cfg.PostgresURL)
		if err != nil {
			return false, err
		}
		pgF = l.CheckLatest("postgres", rows)
		return pgF.OK(), nil
	}); err != nil {
		return out, extra, err
	}
	out = append(out, pgF)

	recs, err := raw.Records(ctx)
	if err != nil {
		return out, extra, err
	}
	days := map[string]bool{}
	for _, r := range recs {
		days[r.Timestamp.UTC().Format(time.DateOnly)] = true
	}
	for dt := range days {
		if err := runDay(ctx, procs[0].URL(), dt); err != nil {
			return out, extra, err
		}
	}
	// The curated zone and pins_live keep a row per pin and day: a pin
	// re-sent across midnight is on both days, each with its day's newest.
	landed, err := raw.Landed(ctx)
	if err != nil {
		return out, extra, err
	}
	cur, err := ledger.Curated(ctx, store)
	if err != nil {
		return out, extra, err
	}
	out = append(out, l.CheckDaily("curated zone", cur, landed))
	cas, err := ledger.Cassandra(ctx, cfg.CassandraHosts, cfg.CassandraKeyspace)
	if err != nil {
		return out, extra, err
	}
	out = append(out, l.CheckLatest("cassandra", cas))
	liveF := ledger.Finding{Store: "pins_live"}
	err = await("pins_live", func() (bool, error) {
		rows, err := ledger.PinsLive(ctx, procs[0].URL(), 20000)
		if err != nil {
			return false, err
		}
		liveF = l.CheckDaily("pins_live", rows, landed)
		return liveF.OK(), nil
	})
	if err != nil {
		return out, extra, err
	}
	out = append(out, liveF)
	return out, extra, nil
}

// runDay runs the daily job for dt on the instance at base until a run
// succeeds. Returns an error when none succeeded within runPatience.
func runDay(ctx context.Context, base, dt string) error {
	return runDayUntil(ctx, base, dt, time.Now().Add(runPatience))
}

// runPatience is how long a run of the day may take to succeed, waits for
// another instance's run included. A soak's day grows by -rate pins a
// second; an hour at 50 pins/s is some 100,000 pins, whose run (10,000
// small raw objects, the serving write to a just-restarted Cassandra)
// takes minutes on a 2-core machine, and may first wait for a run of the
// same day that holds it.
const runPatience = 15 * time.Minute

func runDayUntil(ctx context.Context, base, dt string, deadline time.Time) error {
	var id string
	for id == "" {
		resp, err := http.Post(base+"/batch/runs", "application/json", strings.NewReader(`{"date":"`+dt+`"}`))
		if err == nil {
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			_ = resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted:
				id, _ = out["id"].(string)
				continue
			case http.StatusConflict:
			default:
				return fmt.Errorf("POST /batch/runs %s: %s %v", dt, resp.Status, out)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("POST /batch/runs %s: no run started within %s", dt, runPatience)
		}
		time.Sleep(time.Second)
	}
	for {
		var r batch.Run
		resp, err := http.Get(base + "/batch/runs/" + id)
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&r)
			_ = resp.Body.Close()
			switch r.Status {
			case batch.StatusSucceeded:
				logf("run %s of %s: %d rows in, %d out", id, dt, r.RowsIn, r.RowsOut)
				return nil
			case batch.StatusFailed:
				// A run may fail on purpose (the day held by a run another
				// instance began, the landing still behind): start another.
				logf("run %s of %s failed: %s; starting another", id, dt, r.Error)
				if time.Now().After(deadline) || ctx.Err() != nil {
					return fmt.Errorf("the run %s of %s failed: %s", id, dt, r.Error)
				}
				time.Sleep(2 * time.Second)
				return runDayUntil(ctx, base, dt, deadline)
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the run %s of %s did not finish within %s", id, dt, runPatience)
		}
		time.Sleep(time.Second)
	}
}

// atExit is what check does before it exits, last first: kill the
// instances, unmount the tmpfs, bring back what a fault stopped.
var atExit []func()

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		for i := len(atExit) - 1; i >= 0; i-- {
			atExit[i]()
		}
		os.Exit(1)
	}
}
