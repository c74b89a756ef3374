package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"pinpipe/internal/instance"
	"pinpipe/internal/testenv"
)

// Fault kinds.
const (
	killPinpipe      = "kill -9 pinpipe"
	killPinpipeInRun = "kill -9 pinpipe in a batch run"
	killBroker       = "kill -9 kafka broker"
	stopPostgres     = "stop postgres"
	stopS3           = "stop s3"
	stopCassandraRun = "stop cassandra in a batch run"
	cutPostgres      = "cut postgres"
	cutCassandra     = "cut cassandra"
	cutS3            = "cut s3"
	diskFull         = "disk full"
)

var kinds = []string{killPinpipe, killPinpipeInRun, killBroker, stopPostgres, stopS3, stopCassandraRun,
	cutPostgres, cutCassandra, cutS3, diskFull}

// fault is one injected fault and how the pipeline recovered from it.
type fault struct {
	kind      string
	target    string
	at        time.Time
	held      time.Duration // how long the fault lasted
	ready     time.Duration // from the repair to every instance ready
	caughtUp  time.Duration // from the repair to the lanes' lag back under the threshold (lagLimit)
	recovered bool
	skipped   string // why the fault could not be injected on this machine
	notAimed  string // why a fault aimed at a batch run found none to hit
	err       error
}

// chaos injects faults one at a time, drawn from its rng.
type chaos struct {
	rng      *rand.Rand
	procs    []*instance.Process
	proxies  map[string]*testenv.Proxy // cut kind → proxy
	stack    string
	brokers  int
	maxCut   time.Duration
	lagLimit float64
	log      func(string, ...any)
	// disk is the tmpfs holding the data directory of diskProc, or ""
	// when none could be mounted (noDisk says why).
	disk     string
	diskProc *instance.Process
	noDisk   string

	brokerDown  int    // the broker stopped now, 0 when none
	serviceDown string // the stack service stopped now, "" when none
	ballast     string // the file filling the disk now, "" when none
}

// schedule returns the kinds of n faults: each kind once first, in an
// order drawn from the rng, then kinds drawn at random.
func (c *chaos) schedule(n int) []string {
	out := make([]string, 0, n)
	perm := c.rng.Perm(len(kinds))
	for i := 0; i < n; i++ {
		if i < len(kinds) {
			out = append(out, kinds[perm[i]])
		} else {
			out = append(out, kinds[c.rng.IntN(len(kinds))])
		}
	}
	return out
}

// between returns a duration drawn uniformly from [lo, hi].
func (c *chaos) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

// inject runs one fault of kind to its repair, then waits for recovery.
func (c *chaos) inject(kind string) fault {
	f := fault{kind: kind, at: time.Now()}
	switch kind {
	case killPinpipe:
		p := c.procs[c.rng.IntN(len(c.procs))]
		f.target = p.Name()
		if f.err = p.Kill(); f.err == nil {
			time.Sleep(c.between(time.Second, 5*time.Second))
			f.err = c.restart(p)
		}
	case killBroker:
		n := 1 + c.rng.IntN(c.brokers)
		f.target = "broker " + strconv.Itoa(n)
		if f.err = c.stackRun("stop", "kafka-"+strconv.Itoa(n), "--kill"); f.err == nil {
			c.brokerDown = n
			time.Sleep(c.between(5*time.Second, 20*time.Second))
			f.err = c.startBroker(n)
		}
	case killPinpipeInRun:
		p := c.procs[c.rng.IntN(len(c.procs))]
		// Half the time while the run reads the raw zone, half while it
		// writes the curated zone and the serving tables.
		phase := runStarted
		if c.rng.IntN(2) == 0 {
			phase = runWriting
		}
		var id string
		if id, f.err = c.awaitRun(p, phase); f.err == nil {
			f.target = fmt.Sprintf("%s, run %s %s", p.Name(), id, phase)
			f.at = time.Now() // held from the kill, not from the wait for the run
			if f.err = p.Kill(); f.err == nil {
				time.Sleep(c.between(time.Second, 5*time.Second))
				f.err = c.restart(p)
			}
		}
	case stopPostgres, stopS3:
		svc := map[string]string{stopPostgres: "postgres", stopS3: "s3"}[kind]
		mode := []string{"", "--kill"}[c.rng.IntN(2)]
		f.target = strings.TrimSpace(svc + " " + mode)
		hold := c.between(5*time.Second, c.maxCut)
		if f.err = c.stop(svc, mode); f.err == nil {
			time.Sleep(hold)
			f.err = c.start(svc)
		}
	case stopCassandraRun:
		f.target, f.err = c.cassandraInRun(&f.at)
	case diskFull:
		if c.disk == "" {
			f.skipped = c.noDisk
			f.held = 0
			return f
		}
		f.target = c.diskProc.Name() + " " + c.disk
		f.err = c.fillDisk()
	default:
		p := c.proxies[kind]
		f.target = p.Addr
		p.Down()
		time.Sleep(c.between(5*time.Second, c.maxCut))
		p.Up()
	}
	f.held = time.Since(f.at)
	if errors.Is(f.err, errNotAimed) {
		f.notAimed, f.err = f.err.Error(), nil
		return f
	}
	if f.err != nil {
		return f
	}
	repaired := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, p := range c.procs {
		if err := p.WaitReady(ctx); err != nil {
			f.err = err
			return f
		}
	}
	f.ready = time.Since(repaired)
	for ctx.Err() == nil {
		if lag := c.lag(); lag >= 0 && lag <= c.lagLimit {
			f.caughtUp, f.recovered = time.Since(repaired), true
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return f
}

// startBroker starts broker n again and waits until the cluster is whole.
// A broker killed with SIGKILL recovers every partition log it holds
// before it registers, which on a stack with many topics takes longer than
// one kafka-start waits (3 minutes); it is asked again (the broker keeps
// starting) for up to 15 minutes, so no other broker is killed while this
// one is still down. Returns the last error when it is still not back.
func (c *chaos) startBroker(n int) error {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := c.stackRun("start", "kafka-"+strconv.Itoa(n))
		if err == nil {
			c.brokerDown = 0
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// restart starts p again and waits until it is ready, starting it again
// up to three times (instance.StartReady). Returns the last error when it
// never became ready.
func (c *chaos) restart(p *instance.Process) error {
	return p.StartReady(context.Background(), 3, 3*time.Minute, c.log)
}

// restore brings back a broker or service left stopped and frees a disk
// left full (an interrupted fault).
func (c *chaos) restore() {
	if c.brokerDown != 0 {
		_ = c.startBroker(c.brokerDown)
	}
	if c.serviceDown != "" {
		_ = c.start(c.serviceDown)
	}
	if c.ballast != "" {
		_ = os.Remove(c.ballast)
		c.ballast = ""
	}
	for _, p := range c.proxies {
		p.Up()
	}
}

// lag returns the landing and stream lanes' lag, or -1 when an instance
// does not answer. Each instance reports the lag of its lanes' whole
// consumer groups (the committed offsets of every partition), so the
// instances' figures are not added up: the highest one counts.
func (c *chaos) lag() float64 {
	worst := 0.0
	for _, p := range c.procs {
		m, err := metrics(p.URL())
		if err != nil {
			return -1
		}
		worst = max(worst, m["pinpipe_stream_lag_messages"]+m["pinpipe_batch_landing_lag_messages"])
	}
	return worst
}

func (c *chaos) stackRun(args ...string) error {
	out, err := exec.Command(c.stack, args...).CombinedOutput()
	c.log("scripts/stack %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("scripts/stack %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// metrics returns the samples of an instance's /metrics summed by name.
func metrics(base string) (map[string]float64, error) {
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[name] += v
		}
	}
	return out, nil
}
