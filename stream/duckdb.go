package stream

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"pinpipe/pin"
)

// DuckDB is the Sink over an embedded DuckDB file: the stand-in for
// Postgres when PINPIPE_POSTGRES_URL is unset, with the same tables and
// statements.
type DuckDB struct {
	db   *sql.DB
	path string

	mu sync.Mutex // one writer: the merge must see every earlier merge
	w  *sql.Conn  // the writer's connection, which owns stream_batch
}

// OpenDuckDB opens (creating when absent) the stand-in database
// dir/stream.duckdb and applies the migrations. Returns an error when the
// file cannot be opened, for example because another pinpipe uses it.
func OpenDuckDB(ctx context.Context, dir string, log *slog.Logger) (*DuckDB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	path := filepath.Join(dir, "stream.duckdb")
	c, err := duckdb.NewConnector(path+"?threads=2&memory_limit=512MB", func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: open %s (is another pinpipe using this data dir?): %w", path, err)
	}
	s := &DuckDB{db: sql.OpenDB(c), path: path}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *DuckDB) open(ctx context.Context) (err error) {
	if s.w, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			_ = s.w.Close()
			s.w = nil
		}
	}()
	if _, err := migrateDuckDB(ctx, s.w); err != nil {
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE OR REPLACE TEMPORARY TABLE stream_batch AS SELECT * FROM pinterest.pins LIMIT 0`); err != nil {
		return fmt.Errorf("embedded postgres %s: create stream_batch: %w", s.path, err)
	}
	return nil
}

// Write implements Sink: the appender loads stream_batch, then the merge
// statements run in one transaction.
func (s *DuckDB) Write(ctx context.Context, pins []pin.Cleaned, rejected []Rejected) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		if err := s.open(ctx); err != nil {
			return err
		}
	}
	if err := s.write(ctx, pins, rejected); err != nil {
		// database/sql discards a connection whose transaction's context
		// ended (a rebalance or a shutdown mid-write): take a new one, with
		// its own stream_batch, for the next write.
		if errors.Is(err, sql.ErrConnDone) || ctx.Err() != nil {
			_ = s.w.Close()
			s.w = nil
		}
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	return nil
}

func (s *DuckDB) write(ctx context.Context, pins []pin.Cleaned, rejected []Rejected) error {
	// stream_batch is the connection's, outside the transaction: clear what
	// a failed write left.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM stream_batch`); err != nil {
		return fmt.Errorf("clear stream_batch: %w", err)
	}
	if len(pins) > 0 {
		if err := s.w.Raw(func(c any) error { return appendPins(c.(driver.Conn), pins) }); err != nil {
			return fmt.Errorf("append to stream_batch: %w", err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if len(pins) > 0 {
		if _, err := tx.ExecContext(ctx, `CREATE OR REPLACE TEMPORARY TABLE stream_delta AS `+deltaSelect); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		for _, q := range mergeStatements {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
	}
	for _, r := range rejected {
		if _, err := tx.ExecContext(ctx, insertRejected, r.Topic, r.Partition, r.Offset, r.IngestedAt, r.Reason, r.Raw); err != nil {
			return fmt.Errorf("insert rejected: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func appendPins(c driver.Conn, pins []pin.Cleaned) error {
	a, err := duckdb.NewAppender(c, "temp", "main", "stream_batch")
	if err != nil {
		return err
	}
	row := make([]driver.Value, len(columns))
	for i := range pins {
		for j, v := range values(&pins[i]) {
			row[j] = plain(v)
		}
		if err := a.AppendRow(row...); err != nil {
			a.Close()
			return err
		}
	}
	return a.Close()
}

// plain turns the typed nil pointers of pin.Cleaned.Values into the values
// the appender takes.
func plain(v any) driver.Value {
	switch v := v.(type) {
	case *string:
		if v == nil {
			return nil
		}
		return *v
	case *int64:
		if v == nil {
			return nil
		}
		return *v
	case *int32:
		if v == nil {
			return nil
		}
		return *v
	}
	return v
}

// Recent implements Sink.
func (s *DuckDB) Recent(ctx context.Context, n int) ([]pin.Cleaned, error) {
	rows, err := s.db.QueryContext(ctx, selectRecent, n)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: recent: %w", err)
	}
	defer rows.Close()
	var out []pin.Cleaned
	for rows.Next() {
		var c pin.Cleaned
		var tags []any
		if err := rows.Scan(scanDest(&c, &tags)...); err != nil {
			return nil, fmt.Errorf("embedded postgres: recent: %w", err)
		}
		c.IngestedAt = c.IngestedAt.UTC()
		c.Tags = make([]string, 0, len(tags))
		for _, t := range tags {
			if t, ok := t.(string); ok {
				c.Tags = append(c.Tags, t)
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("embedded postgres: recent: %w", err)
	}
	return out, nil
}

// Stats implements Sink; one transaction gives both aggregates one snapshot.
func (s *DuckDB) Stats(ctx context.Context) (Stats, error) {
	from, to := lastHour(time.Now())
	byCategory := map[string]int64{}
	byMinute := map[int64]int64{}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("embedded postgres: stats: %w", err)
	}
	defer tx.Rollback()
	err = eachRow(ctx, tx, selectByCategory, nil, func(scan func(...any) error) error {
		var cat string
		var n int64
		err := scan(&cat, &n)
		byCategory[cat] = n
		return err
	})
	if err == nil {
		err = eachRow(ctx, tx, selectByMinute, []any{from, to}, func(scan func(...any) error) error {
			var m time.Time
			var n int64
			err := scan(&m, &n)
			byMinute[m.Unix()] = n
			return err
		})
	}
	if err != nil {
		return Stats{}, fmt.Errorf("embedded postgres: stats: %w", err)
	}
	return statsOf(byCategory, from, byMinute), nil
}

func eachRow(ctx context.Context, tx *sql.Tx, q string, args []any, f func(scan func(...any) error) error) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Check implements Sink.
func (s *DuckDB) Check(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database file.
func (s *DuckDB) Close() error {
	var errs []error
	if s.w != nil {
		if err := s.w.Close(); !errors.Is(err, sql.ErrConnDone) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("embedded postgres %s: close: %w", s.path, err)
	}
	return nil
}
