// Package cassandra is the batch lane's serving store on a Cassandra
// cluster: the serving tables, the run history and the day locks that
// batch.ServingStore describes.
package cassandra

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/internal/retry"
	"pinpipe/pin"
)

// Options locate the serving keyspace and tune the writes.
type Options struct {
	Hosts    []string // host or host:port of one or more nodes
	Keyspace string   // created with SimpleStrategy, replication factor 1, when missing
	Log      *slog.Logger
	// Write, when not nil, observes the latency of each write (a statement
	// or an unlogged batch).
	Write prometheus.Observer
	// Concurrency is how many writes are in flight at once (default 256:
	// a node takes the most rows/s with a few hundred requests in flight,
	// which it answers in fewer network round trips; see bench/cassandra).
	Concurrency int
	// Retry is how long one failing write is retried before the day's
	// replacement fails (default retry.Bounded).
	Retry retry.Policy
	// Startup is how long Open retries connecting and each statement that
	// creates the keyspace and its tables (default StartupRetry): several
	// pinpipes starting at once on a fresh keyspace make concurrent schema
	// changes, which Cassandra may time out, and Cassandra may start after
	// pinpipe.
	Startup retry.Policy
}

// StartupRetry is Open's default Options.Startup: about a minute.
var StartupRetry = retry.Policy{Initial: 500 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: time.Minute}

// Store is the serving store on a Cassandra cluster. Its tables:
//   - pins: PRIMARY KEY unique_id, the cleaned columns and dt; a run writes
//     only the pins newer (pin.Newer) than the stored version, with a write
//     timestamp above the stored one (see winners), so the later version of
//     a pin wins whatever order the days are run in (tags is a frozen list:
//     a non-frozen one would gain a copy of its elements each time a pin is
//     rewritten with the same timestamp);
//   - pins_by_category: PRIMARY KEY ((category, dt), follower_count,
//     unique_id), follower_count descending, a missing count as -1;
//   - categories_by_dt: PRIMARY KEY (dt, category), the categories a day's
//     pins_by_category partitions hold, so a re-run can delete exactly
//     those partitions;
//   - batch_runs: the run history, one partition ("runs") ordered by id
//     descending;
//   - batch_locks: PRIMARY KEY dt, the run holding each day while it runs,
//     written with a TTL (see LockDay).
type Store struct {
	session *gocql.Session
	o       Options
	ks      string

	mu    sync.Mutex
	stale map[string]bool // runs of this process whose day lock could not be released
}

var _ batch.ServingStore = (*Store)(nil)

var keyspaceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// Open connects to the cluster and creates the keyspace and tables when
// missing, retrying the connection and each of those idempotent statements
// for up to o.Startup. Returns an error naming the hosts when no node
// answered within it, and one naming the statement when a statement did not
// succeed within it or Cassandra refused it (a syntax, permission or
// configuration error, which no retry mends).
func Open(ctx context.Context, o Options) (*Store, error) {
	if !keyspaceName.MatchString(o.Keyspace) {
		return nil, fmt.Errorf("cassandra: keyspace %q (PINPIPE_CASSANDRA_KEYSPACE) must be a letter then up to 47 letters, digits or underscores", o.Keyspace)
	}
	o.Concurrency = cmp.Or(o.Concurrency, 256)
	if o.Retry == (retry.Policy{}) {
		o.Retry = retry.Bounded
	}
	if o.Startup == (retry.Policy{}) {
		o.Startup = StartupRetry
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Write == nil {
		o.Write = prometheus.ObserverFunc(func(float64) {})
	}
	cluster := gocql.NewCluster(o.Hosts...)
	cluster.Timeout = 10 * time.Second
	cluster.ConnectTimeout = 5 * time.Second
	cluster.WriteTimeout = 10 * time.Second
	// Come back quickly after an outage: the next run should not wait a
	// minute for the driver to notice the node is up again.
	cluster.ReconnectInterval = time.Second
	cluster.NumConns = 2
	var session *gocql.Session
	err := retry.Do(ctx, o.Startup, o.Log, "cassandra: connect", func() (err error) {
		// Send each statement to a replica of its partition, saving the
		// coordinator a hop on a cluster of more than one node. A policy
		// serves one session only: a new one for each try.
		cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
		session, err = cluster.CreateSession()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cassandra: cannot reach %s (PINPIPE_CASSANDRA_HOSTS) within %s: %w; start Cassandra, or unset PINPIPE_CASSANDRA_HOSTS to use the embedded stand-in",
			strings.Join(o.Hosts, ","), o.Startup.MaxElapsed, err)
	}
	c := &Store{session: session, o: o, ks: o.Keyspace, stale: map[string]bool{}}
	if err := c.createSchema(ctx); err != nil {
		session.Close()
		return nil, err
	}
	return c, nil
}

func (c *Store) createSchema(ctx context.Context) error {
	ks := c.ks
	for _, stmt := range []string{
		`CREATE KEYSPACE IF NOT EXISTS ` + ks + ` WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.pins (` + cqlColumns + `, dt date, PRIMARY KEY (unique_id))`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.pins_by_category (` + cqlColumns + `, dt date,
			PRIMARY KEY ((category, dt), follower_count, unique_id))
			WITH CLUSTERING ORDER BY (follower_count DESC, unique_id ASC)`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.categories_by_dt (dt date, category text, PRIMARY KEY (dt, category))`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.batch_locks (dt text PRIMARY KEY, owner text)`,
		`CREATE TABLE IF NOT EXISTS ` + ks + `.batch_runs (bucket text, id text, dt date, trigger text, status text,
			started_at timestamp, finished_at timestamp, rows_in bigint, rows_out bigint, rows_rejected bigint,
			error text, complete boolean, PRIMARY KEY ((bucket), id)) WITH CLUSTERING ORDER BY (id DESC)`,
	} {
		if err := c.execSchema(ctx, stmt); err != nil {
			return fmt.Errorf("cassandra: create keyspace %s and its tables: %w", ks, err)
		}
	}
	if err := c.addColumns(ctx); err != nil {
		return err
	}
	if err := c.session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("cassandra: wait for the schema of keyspace %s: %w", ks, err)
	}
	return nil
}

// execSchema runs the idempotent schema statement stmt, retrying it for up to
// c.o.Startup: concurrent schema changes from pinpipes starting together
// time out now and then. A statement Cassandra refuses as wrong is not
// retried. Returns an error naming the statement.
func (c *Store) execSchema(ctx context.Context, stmt string) error {
	name := statementName(stmt)
	err := retry.Do(ctx, c.o.Startup, c.o.Log, "cassandra: "+name, func() error {
		err := c.session.Query(stmt).ExecContext(ctx)
		var re gocql.RequestError
		if errors.As(err, &re) {
			switch re.Code() {
			case gocql.ErrCodeSyntax, gocql.ErrCodeUnauthorized, gocql.ErrCodeInvalid, gocql.ErrCodeConfig:
				return retry.Permanent(err)
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s did not succeed within %s: %w", name, c.o.Startup.MaxElapsed, err)
	}
	return nil
}

// statementName returns the first words of a schema statement, up to its
// first '(' or WITH: "CREATE TABLE IF NOT EXISTS ks.pins".
func statementName(stmt string) string {
	head := strings.Join(strings.Fields(stmt), " ")
	if i := strings.IndexAny(head, "("); i > 0 {
		head = head[:i]
	}
	if i := strings.Index(head, " WITH "); i > 0 {
		head = head[:i]
	}
	return strings.TrimSpace(head)
}

// cqlColumns are the cleaned columns' definitions, from pin.Schema.
var cqlColumns = func() string {
	var defs []string
	for _, col := range pin.Schema {
		defs = append(defs, col.Name+" "+col.CQLType())
	}
	return strings.Join(defs, ", ")
}()

// addColumns adds to pins and pins_by_category the nullable contract
// columns that tables made by an earlier version lack, so a new column
// needs no migration of its own here.
func (c *Store) addColumns(ctx context.Context) error {
	for _, table := range []string{"pins", "pins_by_category"} {
		have := map[string]bool{}
		iter := c.session.Query(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`,
			c.ks, table).IterContext(ctx)
		var name string
		for iter.Scan(&name) {
			have[name] = true
		}
		if err := iter.Close(); err != nil {
			return fmt.Errorf("cassandra: read the columns of %s.%s: %w", c.ks, table, err)
		}
		for _, col := range pin.Schema {
			if have[col.Name] || !col.Nullable {
				continue
			}
			if err := c.session.Query(`ALTER TABLE ` + c.ks + `.` + table + ` ADD ` + col.Name + ` ` + col.CQLType()).ExecContext(ctx); err != nil {
				return fmt.Errorf("cassandra: add column %s to %s.%s: %w", col.Name, c.ks, table, err)
			}
		}
	}
	// The run history's columns added since its first version.
	iter := c.session.Query(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'batch_runs'`,
		c.ks).IterContext(ctx)
	var name string
	complete := false
	for iter.Scan(&name) {
		complete = complete || name == "complete"
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("cassandra: read the columns of %s.batch_runs: %w", c.ks, err)
	}
	if !complete {
		if err := c.session.Query(`ALTER TABLE ` + c.ks + `.batch_runs ADD complete boolean`).ExecContext(ctx); err != nil {
			return fmt.Errorf("cassandra: add column complete to %s.batch_runs: %w", c.ks, err)
		}
	}
	return nil
}

// unavailable wraps a failed read as an EUNAVAILABLE error naming Cassandra.
// A context error is passed on as it is only when ctx, the caller's, ended:
// gocql also answers "context canceled" for a query in flight on a
// connection that closed under it (a node going down), which is Cassandra
// being unavailable, not the caller leaving.
func (c *Store) unavailable(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return &pin.Error{Code: pin.EUNAVAILABLE, Message: fmt.Sprintf(
		"Cassandra at %s did not answer (%s): %v. Check that it is up (GET /readyz), then retry.",
		strings.Join(c.o.Hosts, ","), what, err)}
}

// pinColumns selects a pin in pin.Columns order, for scanPin.
var pinColumns = pin.ColumnList("", pin.Schema)

func scanPin(scan func(...any) error) (pin.Cleaned, error) {
	var p pin.Cleaned
	err := scan(p.Fields()...)
	if p.Tags == nil {
		p.Tags = []string{} // Cassandra stores an empty list as null
	}
	p.IngestedAt = p.IngestedAt.UTC()
	return p, err
}

// Pin implements batch.ServingStore.
func (c *Store) Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error) {
	q := c.session.Query(`SELECT `+pinColumns+` FROM `+c.ks+`.pins WHERE unique_id = ?`, strings.ToLower(uniqueID))
	p, err := scanPin(func(dest ...any) error { return q.ScanContext(ctx, dest...) })
	if errors.Is(err, gocql.ErrNotFound) {
		return pin.Cleaned{}, pin.Errorf(pin.ENOTFOUND, "No pin with unique_id %q has been through a batch run.", uniqueID)
	} else if err != nil {
		return pin.Cleaned{}, c.unavailable(ctx, "read pin", err)
	}
	return p, nil
}

// TopByCategory implements batch.ServingStore.
func (c *Store) TopByCategory(ctx context.Context, category, dt string, n int) ([]pin.Cleaned, error) {
	iter := c.session.Query(`SELECT `+pinColumns+` FROM `+c.ks+`.pins_by_category WHERE category = ? AND dt = ? LIMIT ?`,
		category, dt, n).IterContext(ctx)
	out := []pin.Cleaned{}
	scanner := iter.Scanner()
	for scanner.Next() {
		p, err := scanPin(scanner.Scan)
		if err != nil {
			_ = iter.Close()
			return nil, c.unavailable(ctx, "read top pins", err)
		}
		p.FollowerCount = batch.FollowersFromKey(*p.FollowerCount)
		out = append(out, p)
	}
	if err := scanner.Err(); err != nil {
		return nil, c.unavailable(ctx, "read top pins", err)
	}
	return out, nil
}

// runsBucket is batch_runs' one partition: the history is one row a day
// plus manual runs, small enough for one partition for decades.
const runsBucket = "runs"

// SaveRun implements batch.ServingStore, retrying like the day's writes.
func (c *Store) SaveRun(ctx context.Context, r pin.Run) error {
	err := retry.Do(ctx, c.o.Retry, c.o.Log, "cassandra: save run "+r.ID, func() error {
		return c.session.Query(`INSERT INTO `+c.ks+`.batch_runs (bucket, id, dt, trigger, status, started_at,
			finished_at, rows_in, rows_out, rows_rejected, error, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			runsBucket, r.ID, r.Date, r.Trigger, r.Status, r.StartedAt, r.FinishedAt, r.RowsIn, r.RowsOut,
			r.RowsRejected, r.Error, r.Complete).ExecContext(ctx)
	})
	if err != nil {
		return fmt.Errorf("cassandra at %s: save run %s: %w", strings.Join(c.o.Hosts, ","), r.ID, err)
	}
	return nil
}

const runColumnsCQL = `id, dt, trigger, status, started_at, finished_at, rows_in, rows_out, rows_rejected, error, complete`

func scanRunCQL(scan func(...any) error) (pin.Run, error) {
	var r pin.Run
	err := scan(&r.ID, &r.Date, &r.Trigger, &r.Status, &r.StartedAt, &r.FinishedAt, &r.RowsIn, &r.RowsOut, &r.RowsRejected, &r.Error, &r.Complete)
	for _, t := range []*time.Time{r.StartedAt, r.FinishedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return r, err
}

// Runs implements batch.ServingStore.
func (c *Store) Runs(ctx context.Context, limit int) ([]pin.Run, error) {
	iter := c.session.Query(`SELECT `+runColumnsCQL+` FROM `+c.ks+`.batch_runs WHERE bucket = ? LIMIT ?`, runsBucket, limit).IterContext(ctx)
	var out []pin.Run
	scanner := iter.Scanner()
	for scanner.Next() {
		r, err := scanRunCQL(scanner.Scan)
		if err != nil {
			_ = iter.Close()
			return nil, c.unavailable(ctx, "read runs", err)
		}
		out = append(out, r)
	}
	if err := scanner.Err(); err != nil {
		return nil, c.unavailable(ctx, "read runs", err)
	}
	return out, nil
}

// Run implements batch.ServingStore.
func (c *Store) Run(ctx context.Context, id string) (pin.Run, error) {
	q := c.session.Query(`SELECT `+runColumnsCQL+` FROM `+c.ks+`.batch_runs WHERE bucket = ? AND id = ?`, runsBucket, id)
	r, err := scanRunCQL(func(dest ...any) error { return q.ScanContext(ctx, dest...) })
	if errors.Is(err, gocql.ErrNotFound) {
		return pin.Run{}, pin.Errorf(pin.ENOTFOUND, "No batch run has id %q.", id)
	} else if err != nil {
		return pin.Run{}, c.unavailable(ctx, "read run", err)
	}
	return r, nil
}

// Check implements batch.ServingStore.
func (c *Store) Check(ctx context.Context) error {
	var v string
	if err := c.session.Query(`SELECT release_version FROM system.local`).ScanContext(ctx, &v); err != nil {
		return fmt.Errorf("cassandra at %s: %w", strings.Join(c.o.Hosts, ","), err)
	}
	return nil
}

// Close implements batch.ServingStore.
func (c *Store) Close() error {
	c.session.Close()
	return nil
}
