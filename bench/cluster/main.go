// Command cluster measures ingest across several pinpipe processes on one
// Kafka cluster: with 1, 2 and 3 instances of the api role (plus one lane
// instance, landing and stream, consuming throughout), it posts pins to
// every API instance at once as fast as they take them and prints, per
// instance and in total, pins/s, CPU time per pin (from /proc/<pid>/stat)
// and peak resident memory (VmHWM). It prints a table; progress goes to
// stderr.
//
//	eval "$(scripts/stack env)"; go run ./bench/cluster
//	go run ./bench/cluster -duration 30s -workers 4 -request-pins 100 -instances 1,2,3
//
// It needs a real Kafka (PINPIPE_KAFKA_BROKERS): every instance must share
// one broker. It builds the pinpipe binary, and uses its own topic,
// consumer groups and, when they are configured, its own bucket and
// Postgres database (dropped at the end); Cassandra is left embedded, as
// nothing here runs the daily job. The load generator runs on the same
// machine as every instance, the brokers and the stores, so on a small
// machine the numbers say how the instances share its cores more than
// how far they scale.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/internal/instance"
	"pinpipe/internal/testenv"
	"pinpipe/synth"
)

type options struct {
	instances []int
	duration  time.Duration
	warmup    time.Duration
	workers   int
	perReq    int
	cfg       *config.Config
}

func main() {
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	var o options
	counts := fs.String("instances", "1,2,3", "comma-separated numbers of API instances to measure")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long each measurement posts")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "posting before each measurement starts")
	fs.IntVar(&o.workers, "workers", 4, "concurrent posters per API instance")
	fs.IntVar(&o.perReq, "request-pins", 100, "pins per POST /pins request (NDJSON)")
	cfg, _, err := config.Load(fs, os.Args[1:], os.Getenv)
	check(err)
	for _, c := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			check(fmt.Errorf("-instances: want numbers such as 1,2,3, got %q", *counts))
		}
		o.instances = append(o.instances, n)
	}
	if len(cfg.KafkaBrokers) == 0 {
		fmt.Fprintln(os.Stderr, "bench/cluster needs a real Kafka that every instance shares: eval \"$(scripts/stack env)\" (scripts/stack up --kafka-brokers 3)")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "pinpipe-bench-cluster-")
	check(err)
	defer os.RemoveAll(dir)
	o.cfg = cfg
	check(prepare(&o, dir))
	run(&o, dir)
}

// prepare builds nothing yet; it gives the configuration the bench's own
// topic, groups, bucket and database.
func prepare(o *options, dir string) error {
	c := o.cfg
	c.Topic, c.GroupPrefix = testenv.Name("bench-cluster-"), testenv.Name("bench-cluster-")
	c.TopicPartitions = 6
	c.CassandraHosts = nil
	c.BatchCron = "0 8 * * *"
	c.ShutdownDrain = 0
	c.LogLevel = "warn"
	if c.S3Endpoint != "" {
		c.S3Bucket = testenv.Name("bench-cluster-")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := broker.Ensure(ctx, c.KafkaBrokers, broker.Topic{Name: c.Topic, Partitions: c.TopicPartitions, Replication: broker.DefaultReplication}, nil); err != nil {
		return err
	}
	if c.PostgresURL != "" {
		u, err := instance.FreshDatabase(ctx, c.PostgresURL, "bench_cluster_")
		if err != nil {
			return err
		}
		c.PostgresURL = u
	}
	return nil
}

// measured is one instance's share of one measurement.
type measured struct {
	name    string
	roles   string
	pins    int64
	failed  int64
	cpu     time.Duration
	peakRSS int64
}

func run(o *options, dir string) {
	ctx := context.Background()
	fmt.Fprintln(os.Stderr, "building pinpipe")
	bin, err := instance.Build(ctx, dir)
	check(err)
	basePG := os.Getenv("PINPIPE_POSTGRES_URL")
	if o.cfg.PostgresURL != "" && basePG != "" {
		defer instance.DropDatabase(basePG, o.cfg.PostgresURL)
	}
	newProc := func(name string, roles config.Roles) *instance.Process {
		c := *o.cfg
		c.Roles = roles
		p, err := instance.NewIn(dir, name, bin, c)
		check(err)
		return p
	}
	lane := newProc("lanes", config.Roles{config.RoleLanding, config.RoleStream})
	check(lane.Start())
	defer func() { _ = lane.Stop(time.Minute) }()
	waitReady(lane)

	bodies := makeBodies(o.workers*50, o.perReq)
	var results [][]measured
	for _, n := range o.instances {
		fmt.Fprintf(os.Stderr, "%d API instance(s): starting\n", n)
		var apis []*instance.Process
		for i := range n {
			p := newProc(fmt.Sprintf("api-%d", i+1), config.Roles{config.RoleAPI})
			check(p.Start())
			apis = append(apis, p)
		}
		for _, p := range apis {
			waitReady(p)
		}
		results = append(results, measure(o, apis, lane, bodies))
		for _, p := range apis {
			if err := p.Stop(time.Minute); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	report(o, results)
}

func waitReady(p *instance.Process) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check(p.WaitReady(ctx))
}

// makeBodies returns n NDJSON request bodies of perReq synthetic pins
// each, made before any measurement so that making them costs it nothing.
func makeBodies(n, perReq int) [][]byte {
	g := synth.New(uint64(time.Now().UnixNano()))
	out := make([][]byte, n)
	for i := range out {
		var b bytes.Buffer
		for range perReq {
			line, _ := json.Marshal(g.Next())
			b.Write(append(line, '\n'))
		}
		out[i] = b.Bytes()
	}
	return out
}

// measure posts to every API instance at once for o.warmup, then for
// o.duration, and returns each instance's pins and CPU time over the
// latter (the lane instance last).
func measure(o *options, apis []*instance.Process, lane *instance.Process, bodies [][]byte) []measured {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}}
	counting := atomic.Bool{}
	accepted := make([]atomic.Int64, len(apis))
	failed := make([]atomic.Int64, len(apis))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range apis {
		for w := range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := w; ; k += o.workers {
					select {
					case <-stop:
						return
					default:
					}
					n, err := post(client, p.URL(), bodies[k%len(bodies)])
					if !counting.Load() {
						continue
					}
					if err != nil {
						failed[i].Add(1)
						continue
					}
					accepted[i].Add(int64(n))
				}
			}()
		}
	}
	time.Sleep(o.warmup)
	procs := append(append([]*instance.Process{}, apis...), lane)
	before := make([]instance.Usage, len(procs))
	for i, p := range procs {
		u, err := p.Usage()
		check(err)
		before[i] = u
	}
	counting.Store(true)
	time.Sleep(o.duration)
	counting.Store(false)
	out := make([]measured, len(procs))
	for i, p := range procs {
		u, err := p.Usage()
		check(err)
		out[i] = measured{name: p.Name(), cpu: u.CPU - before[i].CPU, peakRSS: u.PeakRSS, roles: "api"}
		if i < len(apis) {
			out[i].pins, out[i].failed = accepted[i].Load(), failed[i].Load()
		} else {
			out[i].roles = "landing,stream"
		}
	}
	close(stop)
	wg.Wait()
	return out
}

// post posts one NDJSON body and returns how many pins were accepted.
func post(c *http.Client, base string, body []byte) (int, error) {
	resp, err := c.Post(base+"/pins", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var ok struct{ Accepted int }
	if err := json.Unmarshal(b, &ok); err != nil {
		return 0, err
	}
	return ok.Accepted, nil
}

func report(o *options, results [][]measured) {
	secs := o.duration.Seconds()
	fmt.Printf("\ningest over several pinpipe processes: %d posters per API instance, %d pins per request, %s per measurement; "+
		"kafka %s (topic of %d partitions, %d replicas); one lane instance (landing, stream) consuming throughout; %d cores\n\n",
		o.workers, o.perReq, o.duration, strings.Join(o.cfg.KafkaBrokers, ","), o.cfg.TopicPartitions, broker.DefaultReplication, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "API instances\tinstance\troles\tpins/s\tfailed requests\tCPU s\tCPU µs/pin\tpeak RSS MiB\t")
	for _, ms := range results {
		n := len(ms) - 1
		var total int64
		var apiCPU time.Duration
		for _, m := range ms {
			total += m.pins
			perPin := "-"
			if m.roles == "api" {
				apiCPU += m.cpu
			}
			pins := m.pins
			if m.roles != "api" {
				pins = total
			}
			if pins > 0 {
				perPin = fmt.Sprintf("%.1f", float64(m.cpu.Microseconds())/float64(pins))
			}
			rate := "-"
			if m.roles == "api" {
				rate = fmt.Sprintf("%.0f", float64(m.pins)/secs)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%.1f\t%s\t%.0f\t\n", n, m.name, m.roles, rate, m.failed, m.cpu.Seconds(), perPin, float64(m.peakRSS)/(1<<20))
		}
		perPin := "-"
		if total > 0 {
			perPin = fmt.Sprintf("%.1f", float64(apiCPU.Microseconds())/float64(total))
		}
		fmt.Fprintf(tw, "%d\ttotal\tapi\t%.0f\t\t%.1f\t%s\t\t\n", n, float64(total)/secs, apiCPU.Seconds(), perPin)
	}
	_ = tw.Flush()
	fmt.Println("\nCPU µs/pin: an API instance's CPU time over the pins it accepted; the lane instance's over all pins accepted.")
	fmt.Println("Every process (brokers, stores, instances and this load generator) shares the machine's cores: on a small")
	fmt.Println("machine more instances share the same CPU, so the total shows contention more than scaling.")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster:", err)
		os.Exit(1)
	}
}
