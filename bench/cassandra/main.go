// Command cassandra measures the batch lane's serving write against the
// most this Cassandra takes, and prints a table:
//
//   - floor: the day's rows (each pin once into a table shaped like pins and
//     once into one shaped like pins_by_category) as concurrent prepared
//     single-row inserts with gocql and a token-aware host policy, at each
//     concurrency of -conc;
//   - pinpipe: batch/cassandra's Store.ReplaceDay of the same number of
//     pins (new ones each round, into an empty day), which writes the same
//     rows and also reads the stored versions and deletes the day's
//     partitions first.
//
// Both run back to back in one process against the Cassandra of
// PINPIPE_CASSANDRA_HOSTS, in a fresh keyspace dropped at the end, -rounds
// times alternately; the ratio is the best floor's rows/s over pinpipe's.
// CPU is read from the processes (utime+stime): this one (the client) and,
// with -cassandra-pid, Cassandra's, so a shared machine's noise shows less.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/internal/retry"
	"pinpipe/pin"
	"pinpipe/synth"
)

func main() {
	hostsFlag := flag.String("hosts", os.Getenv("PINPIPE_CASSANDRA_HOSTS"), "Cassandra host:port list (default $PINPIPE_CASSANDRA_HOSTS)")
	n := flag.Int("pins", 50_000, "pins per measurement (each is two rows)")
	concFlag := flag.String("conc", "16,64,256", "concurrencies of the floor's single-row inserts")
	rounds := flag.Int("rounds", 1, "times to run the floor sweep and pinpipe's write, alternately")
	storeConc := flag.Int("store-conc", 0, "pinpipe's writes in flight (Options.Concurrency; 0: its default)")
	cassPID := flag.Int("cassandra-pid", 0, "Cassandra's process, whose CPU per row is reported (0: not reported)")
	keep := flag.Bool("keep", false, "keep the keyspace")
	ksFlag := flag.String("keyspace", "", "use this keyspace, creating it when missing, and keep it (default: a fresh one, dropped at the end); schema changes on a busy node take minutes")
	flag.Parse()
	if *hostsFlag == "" {
		fail(fmt.Errorf("set PINPIPE_CASSANDRA_HOSTS or -hosts: this benchmark needs a real Cassandra"))
	}
	hosts := strings.Split(*hostsFlag, ",")
	var concs []int
	for _, s := range strings.Split(*concFlag, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fail(fmt.Errorf("-conc %q: want a comma-separated list of positive integers", *concFlag))
		}
		concs = append(concs, c)
	}
	ctx := context.Background()
	ks := fmt.Sprintf("bench_cassandra_%d", time.Now().UnixNano())
	if *ksFlag != "" {
		ks, *keep = *ksFlag, true
	}
	// A busy node answers schema changes slowly; they are idempotent.
	schemaRetry := retry.Policy{Initial: time.Second, Max: 10 * time.Second, MaxElapsed: 10 * time.Minute}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	store, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: log, Concurrency: *storeConc, Startup: schemaRetry})
	check(err)
	defer store.Close()
	cluster := gocql.NewCluster(hosts...)
	cluster.Keyspace = ks
	cluster.Timeout = 10 * time.Second
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	session, err := cluster.CreateSession()
	check(err)
	defer session.Close()
	if !*keep {
		defer func() { _ = session.Query("DROP KEYSPACE IF EXISTS " + ks).Exec() }()
	}
	var cols []string
	for _, c := range pin.Schema {
		cols = append(cols, c.Name+" "+c.CQLType())
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS floor_pins (` + strings.Join(cols, ", ") + `, dt date, PRIMARY KEY (unique_id))`,
		`CREATE TABLE IF NOT EXISTS floor_by_category (` + strings.Join(cols, ", ") + `, dt date,
			PRIMARY KEY ((category, dt), follower_count, unique_id)) WITH CLUSTERING ORDER BY (follower_count DESC, unique_id ASC)`,
	} {
		// Schema changes time out now and then on a busy node; they are idempotent.
		check(retry.Do(ctx, schemaRetry, log, "create the floor's tables", func() error {
			return session.Query(stmt).Exec()
		}))
	}
	check(retry.Do(ctx, schemaRetry, log, "await schema agreement", func() error { return session.AwaitSchemaAgreement(ctx) }))

	fmt.Fprintf(os.Stderr, "keyspace %s; %d pins (%d rows) per measurement\n", ks, *n, 2**n)
	var results []result
	// New pins and a new day each round and each run, so a kept keyspace
	// holds no stored version of them.
	seed := uint64(time.Now().UnixNano())
	day := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(seed%20000))
	for r := range *rounds {
		pins := makePins(seed+uint64(r), *n, day)
		for _, c := range concs {
			res := measure(fmt.Sprintf("floor: single-row inserts, %d in flight", c), 2**n, *cassPID, func() error {
				return floor(ctx, session, pins, c)
			})
			res.floor = true
			results = append(results, res)
			fmt.Fprintln(os.Stderr, res.line())
		}
		dt := pin.DT(day)
		res := measure("pinpipe: Store.ReplaceDay", 2**n, *cassPID, func() error {
			return store.ReplaceDay(ctx, dt, pins, nil)
		})
		results = append(results, res)
		fmt.Fprintln(os.Stderr, res.line())
		day = day.AddDate(0, 0, 1)
	}

	fmt.Printf("Cassandra serving write, %d pins = %d rows per measurement, hosts %s\n\n", *n, 2**n, *hostsFlag)
	fmt.Printf("%-44s %10s %10s %14s %14s\n", "write", "seconds", "rows/s", "client µs/row", "cassandra µs/row")
	for _, r := range results {
		fmt.Println(r.line())
	}
	var bestFloor, worstPinpipe, bestPinpipe float64
	for _, r := range results {
		if r.floor {
			bestFloor = max(bestFloor, r.rate())
		} else {
			if worstPinpipe == 0 || r.rate() < worstPinpipe {
				worstPinpipe = r.rate()
			}
			bestPinpipe = max(bestPinpipe, r.rate())
		}
	}
	fmt.Printf("\nbest floor %.0f rows/s; pinpipe %.0f rows/s (best) → floor/pinpipe %.2f× (best), %.2f× (worst round)\n",
		bestFloor, bestPinpipe, bestFloor/bestPinpipe, bestFloor/worstPinpipe)
}

// makePins returns n cleaned synthetic pins of day, new ids for each seed.
func makePins(seed uint64, n int, day time.Time) []pin.Cleaned {
	gen := synth.New(seed)
	out := make([]pin.Cleaned, 0, n)
	for i := range n {
		raw := gen.NDJSON(1)
		c, err := pin.CleanRaw(raw, pin.Lineage{IngestedAt: day.Add(time.Duration(i) * time.Millisecond), Partition: 0, Offset: int64(i)})
		check(err)
		out = append(out, c)
	}
	return out
}

// floor writes each pin once into floor_pins and once into
// floor_by_category as single-row inserts, conc at a time.
func floor(ctx context.Context, s *gocql.Session, pins []pin.Cleaned, conc int) error {
	insPins := `INSERT INTO floor_pins (` + pin.ColumnList("", pin.Schema) + `, dt) VALUES (` + strings.Repeat("?, ", len(pin.Schema)) + `?)`
	insCat := `INSERT INTO floor_by_category (` + pin.ColumnList("", pin.Schema) + `, dt) VALUES (` + strings.Repeat("?, ", len(pin.Schema)) + `?)`
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= 2*len(pins) {
					return
				}
				p := &pins[i/2]
				dt := pin.DT(p.IngestedAt)
				var err error
				if i%2 == 0 {
					err = s.Query(insPins, append(p.Values(), dt)...).Idempotent(true).ExecContext(ctx)
				} else {
					args := make([]any, 0, len(pin.Schema)+1)
					for _, col := range pin.Schema {
						switch v := col.Value(p); {
						case col.Name == "follower_count":
							args = append(args, batch.FollowersKey(p.FollowerCount))
						case v == nil:
							args = append(args, gocql.UnsetValue)
						default:
							args = append(args, v)
						}
					}
					err = s.Query(insCat, append(args, dt)...).Idempotent(true).ExecContext(ctx)
				}
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

type result struct {
	name      string
	floor     bool
	rows      int
	wall      time.Duration
	clientCPU time.Duration
	cassCPU   time.Duration // 0 when not measured
}

func (r result) rate() float64 { return float64(r.rows) / r.wall.Seconds() }

func (r result) line() string {
	cass := "-"
	if r.cassCPU > 0 {
		cass = fmt.Sprintf("%.1f", float64(r.cassCPU.Microseconds())/float64(r.rows))
	}
	return fmt.Sprintf("%-44s %10.2f %10.0f %14.1f %14s", r.name, r.wall.Seconds(), r.rate(),
		float64(r.clientCPU.Microseconds())/float64(r.rows), cass)
}

// measure runs f, retrying it while Cassandra is briefly away, and times
// it by wall clock and by the CPU of this process and of cassPID.
func measure(name string, rows, cassPID int, f func() error) result {
	for try := 0; ; try++ {
		c0, k0, t0 := selfCPU(), procCPU(cassPID), time.Now()
		err := f()
		wall, c1, k1 := time.Since(t0), selfCPU(), procCPU(cassPID)
		if err == nil {
			return result{name: name, rows: rows, wall: wall, clientCPU: c1 - c0, cassCPU: k1 - k0}
		}
		if try == 3 {
			fail(fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(os.Stderr, "%s failed (%v); retrying in 10s\n", name, err)
		time.Sleep(10 * time.Second)
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns pid's utime+stime from /proc, or 0 for pid 0 or when it
// cannot be read.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0], utime f[11], stime f[12].
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100 // USER_HZ
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/cassandra:", err)
	os.Exit(1)
}
