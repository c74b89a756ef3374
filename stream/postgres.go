package stream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"pinpipe/pin"
)

// Postgres is the Sink over a real Postgres (pgx, pgxpool).
type Postgres struct {
	pool  *pgxpool.Pool
	where string // host:port/database, for messages (no password)
	log   *slog.Logger

	mu       sync.Mutex // serialises migrating
	migrated atomic.Bool
}

// lookupByKey makes deltaSelect look each batch row's pin up in pins_pkey:
// left to itself the planner hashes the whole pins table for a few
// thousand batch rows, a scan of pins per micro-batch.
const lookupByKey = `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// mergeLock is the advisory lock that serialises the merge part of every
// micro-batch transaction (two partitions' batches may hold the same pin),
// so each merge sees the rows of all earlier ones.
const mergeLock = `SELECT pg_advisory_xact_lock(hashtext('pinpipe.stream.merge'))`

// OpenPostgres returns a Sink writing to the Postgres at url. It does not
// need Postgres to be up: it tries to apply the migrations now and, when
// Postgres is unreachable, logs so and applies them on the first call that
// reaches it. Returns an error only when url is not a valid connection URL.
func OpenPostgres(ctx context.Context, url string, log *slog.Logger) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: PINPIPE_POSTGRES_URL is not a valid connection URL (postgres://user:pass@host:port/db): %w", err)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "pinpipe-stream"
	// A micro-batch's offsets are committed to Kafka once its transaction
	// commits, so that commit must survive a Postgres crash: with the
	// server's synchronous_commit off, a killed Postgres forgets commits it
	// acknowledged, and those pins would be lost for good.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg) // dials lazily
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Postgres{
		pool:  pool,
		where: fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
		log:   log,
	}
	log.Info("postgres: using an external Postgres", slog.String("postgres", s.where))
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.ready(tctx); err != nil {
		log.Warn("postgres: not reachable at start; pinpipe keeps accepting pins, and the stream lane applies the migrations and catches up once it is",
			slog.String("postgres", s.where), slog.Any("err", err))
	}
	return s, nil
}

// ready applies the migrations once. Returns an error when Postgres cannot
// be reached or a migration fails.
func (s *Postgres) ready(ctx context.Context) error {
	if s.migrated.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated.Load() {
		return nil
	}
	v, err := migratePostgres(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("postgres %s: %w", s.where, err)
	}
	s.migrated.Store(true)
	s.log.Info("postgres: schema pinterest is migrated", slog.String("postgres", s.where), slog.Uint64("version", uint64(v)))
	return nil
}

// mergeScript is what a micro-batch runs once stream_batch is loaded: the
// lookup settings, the lock, stream_delta and mergeStatements, sent as one
// string. Without arguments pgx sends it over the simple protocol, which
// runs every statement in one round trip; each round trip cost more of the
// lane's CPU than its statement once micro-batches are small.
var mergeScript = strings.Join(append([]string{
	lookupByKey, mergeLock, `CREATE TEMPORARY TABLE stream_delta ON COMMIT DROP AS ` + deltaSelect,
}, mergeStatements...), ";\n")

// Write implements Sink: COPY into a temporary table, then the merge
// statements, in one transaction.
func (s *Postgres) Write(ctx context.Context, pins []pin.Cleaned, rejected []Rejected) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(pins) > 0 {
			if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE stream_batch (LIKE pinterest.pins) ON COMMIT DROP`); err != nil {
				return fmt.Errorf("create stream_batch: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stream_batch"}, columns, pgx.CopyFromSlice(len(pins), func(i int) ([]any, error) {
				return values(&pins[i]), nil
			})); err != nil {
				return fmt.Errorf("copy into stream_batch: %w", err)
			}
			if _, err := tx.Exec(ctx, mergeScript); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
		if len(rejected) > 0 {
			var b pgx.Batch
			for _, r := range rejected {
				b.Queue(insertRejected, r.Topic, r.Partition, r.Offset, r.IngestedAt, r.Reason, r.Raw)
			}
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return fmt.Errorf("insert rejected: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres %s: %w", s.where, err)
	}
	return nil
}

// Recent implements Sink.
func (s *Postgres) Recent(ctx context.Context, n int) ([]pin.Cleaned, error) {
	if err := s.ready(ctx); err != nil {
		return nil, unavailable("Postgres", err)
	}
	rows, err := s.pool.Query(ctx, selectRecent, n)
	if err != nil {
		return nil, unavailable("Postgres", err)
	}
	defer rows.Close()
	var out []pin.Cleaned
	for rows.Next() {
		var c pin.Cleaned
		if err := rows.Scan(scanDest(&c, &c.Tags)...); err != nil {
			return nil, fmt.Errorf("postgres: recent: %w", err)
		}
		c.IngestedAt = c.IngestedAt.UTC()
		if c.Tags == nil {
			c.Tags = []string{}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("Postgres", err)
	}
	return out, nil
}

// Stats implements Sink. Both aggregates are read in one snapshot, so they
// agree with each other.
func (s *Postgres) Stats(ctx context.Context) (pin.Stats, error) {
	if err := s.ready(ctx); err != nil {
		return pin.Stats{}, unavailable("Postgres", err)
	}
	from, to := lastHour(time.Now())
	byCategory := map[string]int64{}
	byMinute := map[int64]int64{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectByCategory)
		if err != nil {
			return err
		}
		var cat string
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&cat, &n}, func() error { byCategory[cat] = n; return nil }); err != nil {
			return err
		}
		if rows, err = tx.Query(ctx, selectByMinute, from, to); err != nil {
			return err
		}
		var m time.Time
		_, err = pgx.ForEachRow(rows, []any{&m, &n}, func() error { byMinute[m.Unix()] = n; return nil })
		return err
	})
	if err != nil {
		return pin.Stats{}, unavailable("Postgres", err)
	}
	return statsOf(byCategory, from, byMinute), nil
}

// Check implements Sink.
func (s *Postgres) Check(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres %s is not reachable: %w; the stream lane waits and catches up once it is", s.where, err)
	}
	return s.ready(ctx)
}

// Close closes the pool.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}
