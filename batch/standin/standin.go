// Package standin is the embedded stand-in for the batch lane's Cassandra
// serving store, in one DuckDB file, used when no Cassandra is configured.
package standin

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/internal/dirlock"
	"pinpipe/internal/duckfile"
	"pinpipe/pin"
)

// Store is the embedded stand-in for Cassandra: its pins,
// pins_by_category and batch_runs tables with the same keys, in one DuckDB
// file, for running pinpipe with no Cassandra. It needs no
// categories_by_dt (it deletes a day by dt) and no batch_locks (one
// process holds the file, see LockDay). Unlike Cassandra it
// replaces a day in one transaction, so readers never see it half-written.
// One process at a time can open it: the directory is locked.
//
// Its checkpoints are its own, each with a copy of the file to put back
// should the process be killed inside it (package duckfile): at open, at
// close, and after a write once the log has grown past duckfile.LogLimit.
type Store struct {
	db    *sql.DB
	path  string
	write prometheus.Observer
	lock  io.Closer // the directory's

	// cmu is held for reading by every write from its transaction's start
	// to its commit, and for writing by a checkpoint, which must see no
	// commit between its copy and its end.
	cmu sync.RWMutex
}

var _ batch.ServingStore = (*Store)(nil)

// standInChunk is how many rows are staged between progress reports.
const standInChunk = 20_000

// standInSchema returns the stand-in's tables, the cleaned columns made
// from pin.Schema, and the statements that add a contract column a file
// made by an earlier version lacks. Only nullable columns can be added to
// rows already stored.
//
// pins and pins_by_category declare no primary key: DuckDB keeps a key's
// index (an ART) in memory whole, so a key over every pin would grow the
// process with the store, past any memory limit. Their keys are kept by
// the one statement sequence that writes them (ReplaceDayFrom), whose
// joins DuckDB spills under its limit. dropKeys rebuilds the tables of a
// file made by an earlier version without their keys.
func standInSchema() string {
	var cols, add []string
	for _, c := range pin.Schema {
		cols = append(cols, c.Name+" "+c.DuckDBType())
		if c.Nullable {
			for _, table := range []string{"pins", "pins_by_category"} {
				add = append(add, "ALTER TABLE "+table+" ADD COLUMN IF NOT EXISTS "+c.Name+" "+c.DuckDBType()+";")
			}
		}
	}
	list := strings.Join(cols, ", ")
	return `CREATE TABLE IF NOT EXISTS pins (` + list + `, dt DATE); -- key: unique_id
-- follower_count is -1 when the pin has none, as in Cassandra (see ServingStore).
CREATE TABLE IF NOT EXISTS pins_by_category (` + list + `, dt DATE); -- key: category, dt, follower_count, unique_id
CREATE TABLE IF NOT EXISTS batch_runs (
	id VARCHAR PRIMARY KEY, dt DATE, trigger VARCHAR, status VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
	rows_in BIGINT, rows_out BIGINT, rows_rejected BIGINT, error VARCHAR, complete BOOLEAN);
ALTER TABLE batch_runs ADD COLUMN IF NOT EXISTS complete BOOLEAN;
` + strings.Join(add, "\n")
}

// dropKeys rebuilds, in one transaction, each of pins and pins_by_category
// that still declares a primary key (a file made by an earlier version),
// with the same rows and columns and no key.
func dropKeys(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, table := range []string{"pins", "pins_by_category"} {
		var keyed bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM duckdb_constraints()
WHERE schema_name = 'main' AND table_name = ? AND constraint_type = 'PRIMARY KEY'`, table).Scan(&keyed); err != nil {
			return err
		}
		if !keyed {
			continue
		}
		for _, q := range []string{
			`CREATE TABLE ` + table + `_unkeyed AS SELECT * FROM ` + table,
			`DROP TABLE ` + table,
			`ALTER TABLE ` + table + `_unkeyed RENAME TO ` + table,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// standInReplace are the statements that write the staged day, in one
// transaction after the day's pins_by_category rows are deleted: those
// rows inserted again; in pins, each stored pin the staged one is newer than (pin.NewerSQL)
// deleted, then each staged pin with no stored row inserted. The contract
// rules out two staged pins with the same unique_id, so pins keeps one row
// per unique_id: the newest version.
var standInReplace = func() []string {
	cols := pin.ColumnList("", pin.Schema) + ", dt"
	return []string{
		`INSERT INTO pins_by_category (` + cols + `) SELECT ` +
			strings.Replace(cols, "follower_count", "coalesce(follower_count, -1)", 1) + ` FROM serving_stage`,
		`DELETE FROM pins USING serving_stage s WHERE pins.unique_id = s.unique_id AND ` + pin.NewerSQL("s", "pins"),
		`INSERT INTO pins (` + cols + `) SELECT ` + cols + ` FROM serving_stage s
WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.unique_id = s.unique_id)`,
	}
}()

// Open opens (creating when missing) the stand-in's database file
// serving.duckdb under dir. memory, when above 0, is DuckDB's memory limit
// in bytes: a day's staging and upsert beyond it spill to serving.duckdb.tmp
// under dir instead of growing the process (the batch run gives it a
// quarter of PINPIPE_BATCH_MEMORY). write, when not nil, observes the
// duration of each write. Returns an error saying so when another process
// holds the directory.
func Open(ctx context.Context, dir string, memory int64, write prometheus.Observer) (_ *Store, err error) {
	path := filepath.Join(dir, "serving.duckdb")
	lock, err := dirlock.Lock(dir)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, fmt.Errorf("cassandra stand-in: %s is in use by another process (a pinpipe serve with the same PINPIPE_DATA_DIR?): stop it, start the run with POST /batch/runs instead, or set PINPIPE_CASSANDRA_HOSTS: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cassandra stand-in: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	// A copy left by a cut-short checkpoint goes back first; then a copy of
	// what opening (which replays the log) and the checkpoint below change.
	if _, err := duckfile.Restore(path); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: put back the copy of %s from before a checkpoint: %w", path, err)
	}
	if err := duckfile.Keep(path); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: copy %s before opening it: %w", path, err)
	}
	dsn := path
	if memory > 0 {
		dsn += fmt.Sprintf("?memory_limit=%dMiB", max(memory>>20, 1))
	}
	c, err := duckdb.NewConnector(dsn, func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(context.Background(), duckfile.Settings, nil)
		return err
	})
	if err != nil {
		return nil, undoOpen(path, fmt.Errorf("cassandra stand-in: open %s: %w", path, err))
	}
	db := sql.OpenDB(c)
	defer func() {
		if err != nil {
			_ = db.Close()
			err = undoOpen(path, err)
		}
	}()
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, standInSchema()); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: create tables in %s: %w", path, err)
	}
	if err := dropKeys(ctx, db); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: rebuild the tables of %s without their keys: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: checkpoint %s: %w", path, err)
	}
	if err := duckfile.Drop(path); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: remove the copy of %s from before opening it: %w", path, err)
	}
	if write == nil {
		write = prometheus.ObserverFunc(func(float64) {})
	}
	return &Store{db: db, path: path, write: write, lock: lock}, nil
}

// undoOpen puts back the copy Open kept, once the database is closed, so
// what a failed open changed is undone. Returns err, with the restore's
// failure joined to it.
func undoOpen(path string, err error) error {
	if _, rerr := duckfile.Restore(path); rerr != nil {
		return errors.Join(err, fmt.Errorf("cassandra stand-in: put back the copy of %s from before opening it: %w", path, rerr))
	}
	return err
}

// checkpoint runs a checkpoint once the log has grown past
// duckfile.LogLimit, or always when force is set. One that fails is left to
// a later write (the log keeps every write), unless it failed for good:
// then DuckDB refuses every statement anyway, and the database is closed
// and the copy put back for the next Open.
func (s *Store) checkpoint(ctx context.Context, force bool) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !force && !duckfile.Due(s.path) {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil // the next write tries again
	}
	err = duckfile.Checkpoint(context.WithoutCancel(ctx), conn, s.path)
	conn.Close()
	if duckfile.Fatal(err) {
		_ = s.db.Close()
		return undoOpen(s.path, fmt.Errorf("cassandra stand-in: %s: %w", s.path, err))
	}
	if err != nil {
		return duckfile.Drop(s.path)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// ReplaceDay implements batch.ServingStore in one transaction: the pins are
// staged with DuckDB's appender, then the day's pins_by_category rows are
// deleted and re-inserted and pins keeps the newer versions
// (standInReplace).
func (s *Store) ReplaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error {
	return s.ReplaceDayFrom(ctx, dt, nil, whole(pins), progress)
}

// whole returns pins as one chunk, without copying them.
func whole(pins []pin.Cleaned) batch.PinChunks {
	return func([]pin.Cleaned) ([]pin.Cleaned, error) {
		out := pins
		pins = nil
		return out, nil
	}
}

// ReplaceDayFrom implements batch.ServingStore as ReplaceDay does, staging
// the pins a chunk at a time; the categories are not needed.
func (s *Store) ReplaceDayFrom(ctx context.Context, dt string, _ []string, next batch.PinChunks, progress func(done int)) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE serving_stage AS SELECT `+pin.ColumnList("", pin.Schema)+`, dt FROM pins LIMIT 0`); err != nil {
		return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.serving_stage`) //nolint:errcheck // a temp table dies with the connection anyway
	staged, err := s.stage(ctx, conn, dt, next, progress)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.replace(ctx, conn, dt); err != nil {
		return err
	}
	s.write.Observe(time.Since(start).Seconds())
	if progress != nil {
		progress(staged)
	}
	return s.checkpoint(ctx, false)
}

// replace replaces day dt with the staged pins in one transaction.
func (s *Store) replace(ctx context.Context, conn *sql.Conn, dt string) error {
	s.cmu.RLock()
	defer s.cmu.RUnlock()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cassandra stand-in: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `DELETE FROM pins_by_category WHERE dt = CAST(? AS DATE)`, dt); err != nil {
		return fmt.Errorf("cassandra stand-in: replace %s: %w", dt, err)
	}
	for i, q := range standInReplace {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("cassandra stand-in: replace %s (step %d of %d): %w", dt, i+1, len(standInReplace), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cassandra stand-in: replace %s: commit: %w", dt, err)
	}
	return nil
}

// stage appends the pins of next to the connection's serving_stage table.
// Returns how many it staged.
func (s *Store) stage(ctx context.Context, conn *sql.Conn, dt string, next batch.PinChunks, progress func(done int)) (int, error) {
	day, err := time.Parse(time.DateOnly, dt)
	if err != nil {
		return 0, fmt.Errorf("cassandra stand-in: day %q: %w", dt, err)
	}
	staged := 0
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", "serving_stage")
		if err != nil {
			return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
		}
		start := time.Now()
		row := make([]driver.Value, len(pin.Schema)+1)
		row[len(pin.Schema)] = day
		buf := make([]pin.Cleaned, 0, 4096)
		for {
			pins, err := next(buf)
			if err != nil {
				_ = a.Close()
				return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
			}
			if len(pins) == 0 {
				break
			}
			for i := range pins {
				if err := s.stageOne(ctx, a, dt, row, &pins[i], &staged, &start, progress); err != nil {
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
	return staged, err
}

// stageOne appends c to a, flushing every standInChunk pins.
func (s *Store) stageOne(ctx context.Context, a *duckdb.Appender, dt string, row []driver.Value, c *pin.Cleaned, staged *int, start *time.Time, progress func(done int)) error {
	for j := range pin.Schema {
		row[j] = pin.Schema[j].Value(c)
	}
	if err := a.AppendRow(row...); err != nil {
		return fmt.Errorf("cassandra stand-in: stage pin %s: %w", c.UniqueID, err)
	}
	*staged++
	if *staged%standInChunk != 0 {
		return nil
	}
	if err := a.Flush(); err != nil {
		return fmt.Errorf("cassandra stand-in: stage %s: %w", dt, err)
	}
	s.write.Observe(time.Since(*start).Seconds())
	*start = time.Now()
	if progress != nil {
		progress(*staged)
	}
	return ctx.Err()
}

// cleanedColumns selects a pin in pin.Columns order from pins or
// pins_by_category, for scanCleaned.
var cleanedColumns = pin.ColumnList("", pin.Schema)

// scanCleaned scans a row of cleanedColumns. DuckDB returns a list as
// []any, so the tags go through a listOfText.
func scanCleaned(row interface{ Scan(...any) error }) (pin.Cleaned, error) {
	var c pin.Cleaned
	dest := c.Fields()
	for i, col := range pin.Schema {
		if col.Kind == pin.TextList {
			dest[i] = (*listOfText)(dest[i].(*[]string))
		}
	}
	err := row.Scan(dest...)
	c.IngestedAt = c.IngestedAt.UTC()
	return c, err
}

// listOfText scans a DuckDB list of VARCHAR into a []string, empty (not
// nil) for an empty list or NULL.
type listOfText []string

func (l *listOfText) Scan(src any) error {
	items, _ := src.([]any)
	*l = make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return fmt.Errorf("a list item is %T, not text", it)
		}
		*l = append(*l, s)
	}
	return nil
}

// Pin implements batch.ServingStore.
func (s *Store) Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error) {
	c, err := scanCleaned(s.db.QueryRowContext(ctx, `SELECT `+cleanedColumns+` FROM pins WHERE unique_id = ?`, strings.ToLower(uniqueID)))
	if errors.Is(err, sql.ErrNoRows) {
		return pin.Cleaned{}, pin.Errorf(pin.ENOTFOUND, "No pin with unique_id %q has been through a batch run.", uniqueID)
	} else if err != nil {
		return pin.Cleaned{}, fmt.Errorf("cassandra stand-in: read pin: %w", err)
	}
	return c, nil
}

// TopByCategory implements batch.ServingStore.
func (s *Store) TopByCategory(ctx context.Context, category, dt string, n int) ([]pin.Cleaned, error) {
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
			c.FollowerCount = batch.FollowersFromKey(*c.FollowerCount)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read top pins: %w", err)
	}
	return out, nil
}

// SaveRun implements batch.ServingStore.
func (s *Store) SaveRun(ctx context.Context, r pin.Run) error {
	s.cmu.RLock()
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO batch_runs
		(id, dt, trigger, status, started_at, finished_at, rows_in, rows_out, rows_rejected, error, complete)
		VALUES (?, CAST(? AS DATE), ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Date, r.Trigger, r.Status, utcOrNil(r.StartedAt), utcOrNil(r.FinishedAt), r.RowsIn, r.RowsOut, r.RowsRejected, r.Error, r.Complete)
	s.cmu.RUnlock()
	if err != nil {
		return fmt.Errorf("cassandra stand-in: save run %s: %w", r.ID, err)
	}
	return s.checkpoint(ctx, false)
}

const runColumns = `id, strftime(dt, '%Y-%m-%d'), trigger, status, started_at, finished_at, rows_in, rows_out, rows_rejected, error, coalesce(complete, false)`

func scanRun(row interface{ Scan(...any) error }) (pin.Run, error) {
	var r pin.Run
	err := row.Scan(&r.ID, &r.Date, &r.Trigger, &r.Status, &r.StartedAt, &r.FinishedAt, &r.RowsIn, &r.RowsOut, &r.RowsRejected, &r.Error, &r.Complete)
	for _, t := range []*time.Time{r.StartedAt, r.FinishedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return r, err
}

// Runs implements batch.ServingStore.
func (s *Store) Runs(ctx context.Context, limit int) ([]pin.Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM batch_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("cassandra stand-in: read runs: %w", err)
	}
	defer rows.Close()
	var out []pin.Run
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

// Run implements batch.ServingStore.
func (s *Store) Run(ctx context.Context, id string) (pin.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM batch_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return pin.Run{}, pin.Errorf(pin.ENOTFOUND, "No batch run has id %q.", id)
	} else if err != nil {
		return pin.Run{}, fmt.Errorf("cassandra stand-in: read run %s: %w", id, err)
	}
	return r, nil
}

// Check implements batch.ServingStore.
func (s *Store) Check(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("cassandra stand-in %s: %w", s.path, err)
	}
	return nil
}

// Close implements batch.ServingStore: a checkpoint (DuckDB's own on
// shutdown is off), then the file and the directory's lock are let go.
func (s *Store) Close() error {
	defer s.lock.Close()
	if err := s.checkpoint(context.Background(), true); err != nil {
		return err
	}
	return s.db.Close()
}

func utcOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// LockDay implements batch.DayLocker. The stand-in's directory admits one
// process, and a Service runs one run per day at a time, so there is no one
// else to exclude.
func (s *Store) LockDay(ctx context.Context, dt, owner string) (func(), error) {
	return func() {}, nil
}
