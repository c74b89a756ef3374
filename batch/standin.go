package batch

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/pin"
)

// StandIn is the embedded stand-in for Cassandra: its pins,
// pins_by_category and batch_runs tables with the same keys, in one DuckDB
// file, for running pinpipe with no Cassandra. It needs no
// categories_by_dt (it deletes a day by dt) and no batch_locks (one
// process holds the file, see LockDay). Unlike Cassandra it
// replaces a day in one transaction, so readers never see it half-written.
// DuckDB locks the file, so one process at a time can open it.
type StandIn struct {
	db    *sql.DB
	path  string
	write prometheus.Observer
}

// standInChunk is how many rows are staged between progress reports.
const standInChunk = 20_000

const standInSchema = `
CREATE TABLE IF NOT EXISTS pins (
	id_index BIGINT, title VARCHAR, category VARCHAR, unique_id VARCHAR PRIMARY KEY, description VARCHAR,
	poster_name VARCHAR, follower_count BIGINT, tag_list VARCHAR, tags VARCHAR[], is_image_or_video VARCHAR,
	image_src VARCHAR, downloaded INTEGER, save_location VARCHAR, ingested_at TIMESTAMP,
	kafka_partition INTEGER, kafka_offset BIGINT, dt DATE);
-- follower_count is -1 when the pin has none, as in Cassandra (see ServingStore).
CREATE TABLE IF NOT EXISTS pins_by_category (
	category VARCHAR, dt DATE, follower_count BIGINT, unique_id VARCHAR,
	id_index BIGINT, title VARCHAR, description VARCHAR, poster_name VARCHAR, tag_list VARCHAR, tags VARCHAR[],
	is_image_or_video VARCHAR, image_src VARCHAR, downloaded INTEGER, save_location VARCHAR, ingested_at TIMESTAMP,
	kafka_partition INTEGER, kafka_offset BIGINT,
	PRIMARY KEY (category, dt, follower_count, unique_id));
CREATE TABLE IF NOT EXISTS batch_runs (
	id VARCHAR PRIMARY KEY, dt DATE, trigger VARCHAR, status VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
	rows_in BIGINT, rows_out BIGINT, rows_rejected BIGINT, error VARCHAR);`

// OpenStandIn opens (creating when missing) the stand-in's database file
// serving.duckdb under dir. write, when not nil, observes the duration of
// each write. Returns an error saying so when another process holds the
// file.
func OpenStandIn(ctx context.Context, dir string, write prometheus.Observer) (*StandIn, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: %w", err)
	}
	path := filepath.Join(dir, "serving.duckdb")
	db, err := sql.Open("duckdb", path)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			_ = db.Close()
		}
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("cassandra stand-in: %s is in use by another process (a pinpipe serve with the same PINPIPE_DATA_DIR?): stop it, start the run with POST /batch/runs instead, or set PINPIPE_CASSANDRA_HOSTS: %w", path, err)
		}
		return nil, fmt.Errorf("cassandra stand-in: open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, standInSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cassandra stand-in: create tables in %s: %w", path, err)
	}
	if write == nil {
		write = prometheus.ObserverFunc(func(float64) {})
	}
	return &StandIn{db: db, path: path, write: write}, nil
}

// Path returns the database file's path.
func (s *StandIn) Path() string { return s.path }

// ReplaceDay implements ServingStore in one transaction: the pins are
// staged with DuckDB's appender, then the day's pins_by_category rows are
// deleted and re-inserted and pins is upserted, keeping later versions.
// DuckDB's upsert refuses to update one key twice in a statement, which the
// contract's "no two pins with the same unique_id" rules out.
func (s *StandIn) ReplaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE serving_stage AS SELECT * FROM pins LIMIT 0`); err != nil {
		return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.serving_stage`) //nolint:errcheck // a temp table dies with the connection anyway
	if err := s.stage(ctx, conn, dt, pins, progress); err != nil {
		return err
	}
	start := time.Now()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM pins_by_category WHERE dt = CAST(? AS DATE)`, []any{dt}},
		{`INSERT INTO pins_by_category SELECT category, dt, coalesce(follower_count, -1), unique_id,
			id_index, title, description, poster_name, tag_list, tags, is_image_or_video, image_src, downloaded,
			save_location, ingested_at, kafka_partition, kafka_offset FROM serving_stage`, nil},
		{`INSERT INTO pins SELECT * FROM serving_stage ON CONFLICT (unique_id) DO UPDATE SET
			id_index = excluded.id_index, title = excluded.title, category = excluded.category,
			description = excluded.description, poster_name = excluded.poster_name,
			follower_count = excluded.follower_count, tag_list = excluded.tag_list, tags = excluded.tags,
			is_image_or_video = excluded.is_image_or_video, image_src = excluded.image_src,
			downloaded = excluded.downloaded, save_location = excluded.save_location,
			ingested_at = excluded.ingested_at, kafka_partition = excluded.kafka_partition,
			kafka_offset = excluded.kafka_offset, dt = excluded.dt
			WHERE (excluded.ingested_at, excluded.kafka_partition, excluded.kafka_offset)
				>= (pins.ingested_at, pins.kafka_partition, pins.kafka_offset)`, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("cassandra stand-in: replace %s: %w", dt, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cassandra stand-in: replace %s: commit: %w", dt, err)
	}
	s.write.Observe(time.Since(start).Seconds())
	if progress != nil {
		progress(len(pins))
	}
	return nil
}

// stage appends pins to the connection's serving_stage table.
func (s *StandIn) stage(ctx context.Context, conn *sql.Conn, dt string, pins []pin.Cleaned, progress func(done int)) error {
	day, err := time.Parse(time.DateOnly, dt)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: day %q: %w", dt, err)
	}
	return conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "serving_stage")
		if err != nil {
			return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
		}
		start := time.Now()
		for i := range pins {
			c := &pins[i]
			err := a.AppendRow(c.IDIndex, val(c.Title), c.Category, c.UniqueID, val(c.Description),
				val(c.PosterName), val(c.FollowerCount), val(c.TagList), c.Tags, val(c.IsImageOrVideo),
				val(c.ImageSrc), val(c.Downloaded), val(c.SaveLocation), c.IngestedAt.UTC(),
				c.KafkaPartition, c.KafkaOffset, day)
			if err != nil {
				_ = a.Close()
				return fmt.Errorf("cassandra stand-in: stage pin %s: %w", c.UniqueID, err)
			}
			if (i+1)%standInChunk == 0 {
				if err := a.Flush(); err != nil {
					_ = a.Close()
					return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
				}
				s.write.Observe(time.Since(start).Seconds())
				start = time.Now()
				if progress != nil {
					progress(i + 1)
				}
				if err := ctx.Err(); err != nil {
					_ = a.Close()
					return err
				}
			}
		}
		if err := a.Close(); err != nil {
			return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
		}
		return nil
	})
}

// val returns *p, or nil (NULL) when p is nil.
func val[T any](p *T) driver.Value {
	if p == nil {
		return nil
	}
	return *p
}

// cleanedColumns selects a pin in pin.Columns order from pins or
// pins_by_category, for scanCleaned.
const cleanedColumns = `id_index, title, category, unique_id, description, poster_name, follower_count, tag_list,
	tags, is_image_or_video, image_src, downloaded, save_location, ingested_at, kafka_partition, kafka_offset`

func scanCleaned(row interface{ Scan(...any) error }) (pin.Cleaned, error) {
	var c pin.Cleaned
	var tags []any
	err := row.Scan(&c.IDIndex, &c.Title, &c.Category, &c.UniqueID, &c.Description, &c.PosterName,
		&c.FollowerCount, &c.TagList, &tags, &c.IsImageOrVideo, &c.ImageSrc, &c.Downloaded, &c.SaveLocation,
		&c.IngestedAt, &c.KafkaPartition, &c.KafkaOffset)
	c.Tags = make([]string, 0, len(tags))
	for _, t := range tags {
		if s, ok := t.(string); ok {
			c.Tags = append(c.Tags, s)
		}
	}
	c.IngestedAt = c.IngestedAt.UTC()
	return c, err
}

// Pin implements ServingStore.
func (s *StandIn) Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error) {
	c, err := scanCleaned(s.db.QueryRowContext(ctx, `SELECT `+cleanedColumns+` FROM pins WHERE unique_id = ?`, strings.ToLower(uniqueID)))
	if errors.Is(err, sql.ErrNoRows) {
		return pin.Cleaned{}, pin.Errorf(pin.ENOTFOUND, "No pin with unique_id %q has been through a batch run.", uniqueID)
	} else if err != nil {
		return pin.Cleaned{}, fmt.Errorf("cassandra stand-in: read pin: %w", err)
	}
	return c, nil
}

// TopByCategory implements ServingStore.
func (s *StandIn) TopByCategory(ctx context.Context, category, dt string, n int) ([]pin.Cleaned, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+cleanedColumns+` FROM pins_by_category
		WHERE category = ? AND dt = CAST(? AS DATE) ORDER BY follower_count DESC, unique_id LIMIT ?`, category, dt, n)
	if err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read top pins: %w", err)
	}
	defer rows.Close()
	out := []pin.Cleaned{}
	for rows.Next() {
		c, err := scanCleaned(rows)
		if err != nil {
			return nil, fmt.Errorf("cassandra stand-in: read top pins: %w", err)
		}
		// pins_by_category keeps a missing count as -1 (see ServingStore).
		if c.FollowerCount != nil {
			c.FollowerCount = followersFromKey(*c.FollowerCount)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read top pins: %w", err)
	}
	return out, nil
}

// SaveRun implements ServingStore.
func (s *StandIn) SaveRun(ctx context.Context, r Run) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO batch_runs VALUES (?, CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Date, r.Trigger, r.Status, utcOrNil(r.StartedAt), utcOrNil(r.FinishedAt), r.RowsIn, r.RowsOut, r.RowsRejected, r.Error)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: save run %s: %w", r.ID, err)
	}
	return nil
}

const runColumns = `id, strftime(dt, '%Y-%m-%d'), trigger, status, started_at, finished_at, rows_in, rows_out, rows_rejected, error`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	err := row.Scan(&r.ID, &r.Date, &r.Trigger, &r.Status, &r.StartedAt, &r.FinishedAt, &r.RowsIn, &r.RowsOut, &r.RowsRejected, &r.Error)
	for _, t := range []*time.Time{r.StartedAt, r.FinishedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return r, err
}

// Runs implements ServingStore.
func (s *StandIn) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM batch_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("cassandra stand-in: read runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read runs: %w", err)
	}
	return out, nil
}

// Run implements ServingStore.
func (s *StandIn) Run(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM batch_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, pin.Errorf(pin.ENOTFOUND, "No batch run has id %q.", id)
	} else if err != nil {
		return Run{}, fmt.Errorf("cassandra stand-in: read run %s: %w", id, err)
	}
	return r, nil
}

// Check implements ServingStore.
func (s *StandIn) Check(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("cassandra stand-in %s: %w", s.path, err)
	}
	return nil
}

// Close implements ServingStore.
func (s *StandIn) Close() error { return s.db.Close() }

func utcOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}
