package stream

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"pinpipe/internal/dirlock"
	"pinpipe/internal/duckfile"
	"pinpipe/pin"
)

// DuckDB is the Sink over an embedded DuckDB file: the stand-in for
// Postgres when PINPIPE_POSTGRES_URL is unset, with the same tables and
// results.
//
// Its tables carry no index and no key constraint. DuckDB's ART indexes
// under INSERT … ON CONFLICT DO UPDATE, replayed from the write-ahead log
// after an unclean stop, can reach a persisted state in which every later
// upsert fails with "FATAL … Failed to delete all rows from index" and the
// database is invalidated for good. So the stand-in keeps each unique_id's
// row unique itself: one writer, and each micro-batch deletes the rows it
// replaces and inserts their successors in one transaction (duckdb_repair.go
// holds the opening, checking and rebuilding).
type DuckDB struct {
	dir, path string
	log       *slog.Logger
	lock      io.Closer // the data dir's, held from the first open to Close

	wmu sync.Mutex // one writer: the merge must see every earlier merge
	w   *sql.Conn  // the writer's connection, which owns stream_batch; nil after a failed write

	mu     sync.RWMutex // guards db, broken and closed; held for reading by every reader of db
	db     *sql.DB      // nil while the store is unusable
	broken error        // why the store is unusable; nil when it is not
	closed bool         // Close was called
}

// OpenDuckDB opens (creating when absent) the stand-in database
// dir/stream.duckdb, applies the migrations, checks it and repairs what it
// can (see duckdb_repair.go). Returns an error when the directory cannot be
// made or the file is locked by another process (another pinpipe uses this
// data dir). A store that cannot be opened or rebuilt for another reason is
// returned all the same: its Check reports why, its reads fail with
// EUNAVAILABLE, and each Write tries to open it again.
func OpenDuckDB(ctx context.Context, dir string, log *slog.Logger) (*DuckDB, error) {
	s := &DuckDB{dir: dir, path: filepath.Join(dir, "stream.duckdb"), log: log}
	if err := s.reopen(ctx); err != nil {
		if errors.Is(err, dirlock.ErrLocked) || isLocked(err) {
			return nil, fmt.Errorf("embedded postgres: open %s (is another pinpipe using this data dir?): %w", s.path, err)
		}
		log.Error("embedded postgres: the stream store is unusable; /readyz reports it and the stream lane retries opening it", slog.String("path", s.path), slog.Any("err", err))
	}
	return s, nil
}

// Write implements Sink: the appender loads stream_batch, then the merge
// statements run in one transaction. A failure that leaves DuckDB unusable
// (a fatal or internal error) closes the database; the next Write opens it
// again, repairing it.
func (s *DuckDB) Write(ctx context.Context, pins []pin.Cleaned, rejected []Rejected) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	broken := s.db == nil
	s.mu.RUnlock()
	if broken {
		if err := s.reopen(ctx); err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
	}
	if s.w == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	if err := s.write(ctx, pins, rejected); err != nil {
		switch {
		case duckfile.Fatal(err):
			s.log.Error("embedded postgres: DuckDB failed for good on a write; closing the stream store to open and check it again", slog.String("path", s.path), slog.Any("err", err))
			if cerr := s.closeDB(err); cerr != nil {
				s.log.Warn("embedded postgres: close after a fatal error", slog.Any("err", cerr))
			}
		case errors.Is(err, sql.ErrConnDone) || ctx.Err() != nil:
			// database/sql discards a connection whose transaction's
			// context ended (a rebalance or a shutdown mid-write): take a
			// new one, with its own stream_batch, for the next write.
			_ = s.w.Close()
			s.w = nil
		}
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	s.maybeCheckpoint(ctx)
	return nil
}

// connect takes the writer's connection and makes its stream_batch.
func (s *DuckDB) connect(ctx context.Context) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("embedded postgres: %w", s.broken)
	}
	if s.w, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("embedded postgres %s: %w", s.path, err)
	}
	// Named columns: the appender fills them by position, and a column a
	// migration added stands after dt in pins.
	if _, err := s.w.ExecContext(ctx, `CREATE OR REPLACE TEMPORARY TABLE stream_batch AS SELECT `+strings.Join(columns, ", ")+` FROM pinterest.pins LIMIT 0`); err != nil {
		_ = s.w.Close()
		s.w = nil
		return fmt.Errorf("embedded postgres %s: create stream_batch: %w", s.path, err)
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
		if _, err := tx.ExecContext(ctx, `CREATE OR REPLACE TEMPORARY TABLE stream_delta AS `+duckDeltaSelect); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		for _, q := range duckMergeStatements {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
	}
	for _, r := range rejected {
		if _, err := tx.ExecContext(ctx, duckInsertRejected, r.Topic, r.Partition, r.Offset, r.IngestedAt, r.Reason, r.Raw); err != nil {
			return fmt.Errorf("insert rejected: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// duckDeltaSelect is deltaSelect for a pins table without an index: the
// stored versions of the batch's pins are found first by a semi join,
// which hashes the batch and streams pins past it, and only they are
// joined to the batch. A join straight to pins hashes the whole table on
// every micro-batch, a cost that grows with the pins stored.
var duckDeltaSelect = `WITH stored AS (
    SELECT unique_id, category, ingested_at, kafka_partition, kafka_offset FROM pinterest.pins
    WHERE unique_id IN (SELECT unique_id FROM stream_batch)
)
` + deltaFrom("stored")

// duckMergeStatements follow the statement that fills stream_delta: the
// same changes as mergeStatements, without ON CONFLICT, which needs a
// unique index. The aggregates merge their deltas by key; pins loses the
// rows the batch replaces, then takes every batch row that changes pins.
var duckMergeStatements = []string{
	duckApplyDelta("pins_by_category", "category"),
	duckApplyDelta("pins_by_minute", "minute"),
	`DELETE FROM pinterest.pins WHERE unique_id IN (SELECT unique_id FROM stream_delta WHERE old_category IS NOT NULL)`,
	`INSERT INTO pinterest.pins (` + strings.Join(columns, ", ") + `)
SELECT ` + strings.Join(columns, ", ") + ` FROM stream_batch
WHERE unique_id IN (SELECT unique_id FROM stream_delta) ORDER BY unique_id`,
}

// duckApplyDelta is applyDelta as a MERGE.
func duckApplyDelta(table, key string) string {
	return `MERGE INTO pinterest.` + table + ` t USING (
    SELECT k, sum(n) AS n FROM (
        SELECT ` + key + ` AS k, 1 AS n FROM stream_delta
        UNION ALL
        SELECT old_` + key + `, -1 FROM stream_delta WHERE old_` + key + ` IS NOT NULL
    ) d GROUP BY k HAVING sum(n) <> 0
) d ON t.` + key + ` = d.k
WHEN MATCHED THEN UPDATE SET pins = t.pins + d.n
WHEN NOT MATCHED THEN INSERT (` + key + `, pins) VALUES (d.k, d.n)`
}

// duckInsertRejected is insertRejected without ON CONFLICT.
const duckInsertRejected = `INSERT INTO pinterest.rejected (topic, kafka_partition, kafka_offset, ingested_at, reason, raw)
SELECT * FROM (VALUES ($1::TEXT, $2::INTEGER, $3::BIGINT, $4::TIMESTAMPTZ, $5::TEXT, $6::BLOB)) v
WHERE NOT EXISTS (SELECT 1 FROM pinterest.rejected r WHERE r.topic = $1 AND r.kafka_partition = $2 AND r.kafka_offset = $3)`

func appendPins(c driver.Conn, pins []pin.Cleaned) error {
	a, err := duckdb.NewAppender(c, "temp", "main", "stream_batch")
	if err != nil {
		return err
	}
	row := make([]driver.Value, len(columns))
	for i := range pins {
		for j, v := range values(&pins[i]) {
			row[j] = v
		}
		if err := a.AppendRow(row...); err != nil {
			a.Close()
			return err
		}
	}
	return a.Close()
}

// Recent implements Sink.
func (s *DuckDB) Recent(ctx context.Context, n int) ([]pin.Cleaned, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, unavailable(storeName, s.broken)
	}
	rows, err := s.db.QueryContext(ctx, selectRecent, n)
	if err != nil {
		return nil, unavailable(storeName, err)
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
		return nil, unavailable(storeName, err)
	}
	return out, nil
}

// Stats implements Sink; one transaction gives both aggregates one snapshot.
func (s *DuckDB) Stats(ctx context.Context) (pin.Stats, error) {
	from, to := lastHour(time.Now())
	byCategory := map[string]int64{}
	byMinute := map[int64]int64{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return pin.Stats{}, unavailable(storeName, s.broken)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return pin.Stats{}, unavailable(storeName, err)
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
		return pin.Stats{}, unavailable(storeName, err)
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

// storeName names the stand-in in errors users see.
const storeName = "The embedded stream store (stream.duckdb under the data dir's postgres/)"

// Check implements Sink. Returns why the store is unusable when it is (it
// could not be opened or rebuilt, or DuckDB failed for good and the next
// write reopens it).
func (s *DuckDB) Check(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("embedded postgres: stream store is unusable, the stream lane retries opening it: %w", s.broken)
	}
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	return nil
}

// Close closes the database file. The store cannot be used afterwards.
func (s *DuckDB) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// DuckDB's own checkpoint on shutdown is off (package duckfile): a
	// clean stop leaves a file without a log to replay.
	var cerr error
	if s.w != nil {
		cerr = duckfile.Checkpoint(context.Background(), s.w, s.path)
	}
	err := s.closeDB(errors.New("closed"))
	if cerr != nil {
		s.log.Warn("embedded postgres: checkpoint on close failed; the next open replays the write-ahead log", slog.String("path", s.path), slog.Any("err", cerr))
		s.restoreCopy()
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	if err != nil {
		return fmt.Errorf("embedded postgres %s: close: %w", s.path, err)
	}
	return nil
}
