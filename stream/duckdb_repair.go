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
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"pinpipe/internal/dirlock"
	"pinpipe/internal/duckfile"
)

// Opening the stand-in, from the gentlest step to the most drastic:
//
//  1. take the data dir's lock; finish a rebuild (step 2) that was cut
//     short; put back the copy a cut-short checkpoint left (package
//     duckfile) and keep a new one; open the file (DuckDB replays its
//     write-ahead log), apply the migrations, rebuild the tables without
//     indexes if they have any (dropIndexes), check the tables and repair
//     them (repair), checkpoint;
//  2. if that fails and the file exists, move it and its log aside as
//     stream.duckdb.broken-<UTC time>, build a new file, and copy into it
//     every row the old one still gives (rebuild, salvage), with a marker
//     naming the broken file while it runs;
//  3. if that fails too, the store is unusable: Check says why and the next
//     Write starts again at 1.
//
// Every step that changes data is logged.

// reopen opens the store's file as above and makes it the store's database,
// or records why it cannot. Called by OpenDuckDB and, with wmu held, by
// Write. Returns the error that leaves the store unusable; nil when it is
// usable.
func (s *DuckDB) reopen(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return errors.New("the store is closed")
	}
	if s.lock == nil {
		// Before any file is touched: restoring a copy under another
		// process's open store would undo its writes.
		lock, err := dirlock.Lock(s.dir)
		if err != nil {
			return s.opened(nil, fmt.Errorf("lock %s: %w", s.dir, err))
		}
		s.lock = lock
	}
	if err := s.resumeRebuild(ctx); err != nil {
		return s.opened(nil, fmt.Errorf("resume rebuilding %s: %w", s.path, err))
	}
	db, err := s.openChecked(ctx)
	if _, serr := os.Stat(s.path); err != nil && serr == nil && !isLocked(err) {
		s.log.Error("embedded postgres: the stream store cannot be opened or checked; moving it aside and rebuilding it from what it still holds",
			slog.String("path", s.path), slog.Any("err", err))
		if rerr := s.rebuild(ctx); rerr != nil {
			err = fmt.Errorf("%w; rebuilding it failed too: %w", err, rerr)
		} else {
			db, err = s.openChecked(ctx)
		}
	}
	if err != nil {
		err = fmt.Errorf("open %s: %w", s.path, err)
	}
	return s.opened(db, err)
}

// opened makes db the store's database, or records why the store is
// unusable when err is not nil. Returns err.
func (s *DuckDB) opened(db *sql.DB, err error) error {
	s.mu.Lock()
	s.db, s.broken = db, err
	s.mu.Unlock()
	return err
}

// closeDB closes the writer's connection and the database, leaving the
// store unusable for why until reopen. Returns the database's Close error.
func (s *DuckDB) closeDB(why error) error {
	if s.w != nil {
		_ = s.w.Close()
		s.w = nil
	}
	s.mu.Lock()
	db := s.db
	s.db, s.broken = nil, why
	s.mu.Unlock()
	if db == nil {
		return nil
	}
	return db.Close()
}

// openChecked opens s.path (creating it when absent), migrates, rebuilds
// the tables without indexes when they have any, repairs them, and
// checkpoints, so the log a later crash leaves holds only later batches.
// First it puts back the copy a cut-short checkpoint left, then it keeps a
// copy of its own (package duckfile): opening replays the log, and the
// checkpoints at the end rewrite the file. A failed open restores that
// copy. Returns the open database, or an error and nothing open.
func (s *DuckDB) openChecked(ctx context.Context) (_ *sql.DB, err error) {
	restored, err := duckfile.Restore(s.path)
	if err != nil {
		return nil, fmt.Errorf("put back the copy from before a checkpoint: %w", err)
	}
	if restored {
		s.log.Warn("embedded postgres: a checkpoint of the stream store was cut short (an unclean stop?); put back the copy from before it, and its write-ahead log replays every later write", slog.String("path", s.path))
	}
	if err := duckfile.Keep(s.path); err != nil {
		return nil, fmt.Errorf("copy before opening: %w", err)
	}
	// One thread: a micro-batch is a few small statements, which a second
	// thread only schedules work for. CPU per 100-pin micro-batch with 0,
	// 100,000 and 400,000 pins stored: 27.3, 38.1, 69.2 ms at two threads;
	// 13.5, 29.7, 56.7 ms at one, whose wall time grows past two threads'
	// only from 400,000 pins stored (45 vs 56 ms; BenchmarkSinkWriteSmallBatch).
	c, err := duckdb.NewConnector(s.path+"?threads=1&memory_limit=512MB", func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(context.Background(), duckConfig, nil)
		return err
	})
	if err != nil {
		return nil, s.undoOpen(err)
	}
	db := sql.OpenDB(c)
	defer func() {
		if err != nil {
			_ = db.Close()
			err = s.undoOpen(err)
		}
	}()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := migrateDuckDB(ctx, conn); err != nil {
		return nil, err
	}
	if err := s.dropIndexes(ctx, conn); err != nil {
		return nil, fmt.Errorf("rebuild without indexes: %w", err)
	}
	if err := s.repair(ctx, conn); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := duckfile.Drop(s.path); err != nil {
		return nil, fmt.Errorf("remove the copy from before opening: %w", err)
	}
	return db, nil
}

// undoOpen puts back the copy openChecked kept, once its database is
// closed, so what a failed open changed is undone. Returns err, with the
// restore's failure joined to it.
func (s *DuckDB) undoOpen(err error) error {
	if _, rerr := duckfile.Restore(s.path); rerr != nil {
		return errors.Join(err, fmt.Errorf("put back the copy from before opening: %w", rerr))
	}
	return err
}

// duckTables are the stand-in's tables with the columns that key a row and
// the order that ranks a key's rows, best first (the rows a rebuild keeps).
var duckTables = []struct{ name, key, best string }{
	{"pins", "unique_id", "ingested_at DESC, kafka_offset DESC"},
	{"pins_by_category", "category", "pins DESC"},
	{"pins_by_minute", "minute", "pins DESC"},
	{"rejected", "topic, kafka_partition, kafka_offset", "ingested_at DESC"},
}

// dropIndexes rebuilds every table of schema pinterest that has an index or
// a key constraint (as the migrations create them, and every stand-in file
// written before the stand-in dropped them has) as the same columns without
// either, keeping the best row of each key. Returns nil when there was
// nothing to rebuild.
func (s *DuckDB) dropIndexes(ctx context.Context, conn *sql.Conn) error {
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM duckdb_indexes() WHERE schema_name = 'pinterest')
     + (SELECT count(*) FROM duckdb_constraints() WHERE schema_name = 'pinterest' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE'))`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range duckTables {
		var cols []string
		err := eachRow(ctx, tx, `SELECT column_name, data_type, is_nullable FROM duckdb_columns()
WHERE schema_name = 'pinterest' AND table_name = $1 ORDER BY column_index`, []any{t.name}, func(scan func(...any) error) error {
			var name, typ string
			var nullable bool
			if err := scan(&name, &typ, &nullable); err != nil {
				return err
			}
			col := name + " " + typ
			if !nullable {
				col += " NOT NULL"
			}
			cols = append(cols, col)
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: columns: %w", t.name, err)
		}
		for _, q := range []string{
			`CREATE TABLE pinterest.` + t.name + `__rebuilt (` + strings.Join(cols, ", ") + `)`,
			`INSERT INTO pinterest.` + t.name + `__rebuilt SELECT * FROM pinterest.` + t.name + ` QUALIFY row_number() OVER (PARTITION BY ` + t.key + ` ORDER BY ` + t.best + `) = 1`,
			`DROP TABLE pinterest.` + t.name,
			`ALTER TABLE pinterest.` + t.name + `__rebuilt RENAME TO ` + t.name,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("embedded postgres: rebuilt the stream tables without indexes (the stand-in keeps keys unique itself)", slog.String("path", s.path))
	return nil
}

// repair checks what the stand-in keeps by itself instead of constraints —
// one row per key in every table, aggregates equal to counts over pins —
// and restores it where it does not hold: a duplicate key keeps its best
// row, and aggregates that disagree with the rows are counted again from
// them. Returns nil when all holds or was restored.
func (s *DuckDB) repair(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var fixed []any
	for _, t := range duckTables {
		res, err := tx.ExecContext(ctx, `DELETE FROM pinterest.`+t.name+` WHERE rowid IN (
    SELECT rowid FROM pinterest.`+t.name+` QUALIFY row_number() OVER (PARTITION BY `+t.key+` ORDER BY `+t.best+`) > 1)`)
		if err != nil {
			return fmt.Errorf("%s: remove duplicate keys: %w", t.name, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			fixed = append(fixed, slog.Int64(t.name+"_duplicates_removed", n))
		}
	}
	var wrong int64
	if err := tx.QueryRowContext(ctx, `SELECT
    (SELECT count(*) FROM (SELECT category, count(*) AS n FROM pinterest.pins GROUP BY category) a
     FULL JOIN (SELECT category, pins FROM pinterest.pins_by_category WHERE pins <> 0) b USING (category)
     WHERE a.n IS DISTINCT FROM b.pins)
  + (SELECT count(*) FROM (SELECT date_trunc('minute', ingested_at) AS minute, count(*) AS n FROM pinterest.pins GROUP BY 1) a
     FULL JOIN (SELECT minute, pins FROM pinterest.pins_by_minute WHERE pins <> 0) b USING (minute)
     WHERE a.n IS DISTINCT FROM b.pins)`).Scan(&wrong); err != nil {
		return fmt.Errorf("compare aggregates with rows: %w", err)
	}
	if wrong > 0 {
		if err := recount(ctx, tx); err != nil {
			return err
		}
		fixed = append(fixed, slog.Int64("aggregate_rows_wrong", wrong))
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(fixed) > 0 {
		s.log.Warn("embedded postgres: the stream store was inconsistent (an unclean stop?) and is repaired: aggregates are counted again from the rows",
			append([]any{slog.String("path", s.path)}, fixed...)...)
	}
	return nil
}

// recount replaces both aggregate tables by counts over pins.
func recount(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`DELETE FROM pinterest.pins_by_category`,
		`INSERT INTO pinterest.pins_by_category SELECT category, count(*) FROM pinterest.pins GROUP BY category`,
		`DELETE FROM pinterest.pins_by_minute`,
		`INSERT INTO pinterest.pins_by_minute SELECT date_trunc('minute', ingested_at), count(*) FROM pinterest.pins GROUP BY 1`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("recount aggregates: %w", err)
		}
	}
	return nil
}

// rebuildMarker, beside the store's file, names the broken file a rebuild
// copies from while the rebuild runs: it is written before the file is
// moved aside and removed once the new file holds what could be copied.
// One found at an open means a rebuild was cut short (resumeRebuild).
const rebuildMarker = ".rebuilding"

// rebuild moves the store's file aside as stream.duckdb.broken-<UTC time>
// and builds a new one from what it still gives (salvage; a salvage that
// copies nothing leaves an empty store, and says so). Returns an error when
// the file could not be moved aside.
func (s *DuckDB) rebuild(ctx context.Context) error {
	aside := s.path + ".broken-" + time.Now().UTC().Format("20060102T150405.000Z")
	marker := s.path + rebuildMarker
	if err := os.WriteFile(marker+".tmp", []byte(filepath.Base(aside)), 0o644); err != nil {
		return fmt.Errorf("move aside: %w", err)
	}
	if err := os.Rename(marker+".tmp", marker); err != nil {
		return fmt.Errorf("move aside: %w", err)
	}
	if err := s.moveAside(aside); err != nil {
		return err
	}
	s.salvageOrEmpty(ctx, aside)
	return os.Remove(marker)
}

// resumeRebuild finishes a rebuild that was cut short, when its marker is
// there: a move aside that had not reached the file is undone, and one that
// had is followed by the salvage again, over whatever new file the cut-short
// one had begun.
func (s *DuckDB) resumeRebuild(ctx context.Context) error {
	marker := s.path + rebuildMarker
	name, err := os.ReadFile(marker)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	aside := filepath.Join(s.dir, filepath.Base(string(name)))
	if _, err := os.Stat(aside); errors.Is(err, os.ErrNotExist) {
		// moveAside moves the logs first: put back those it moved.
		for i, f := range duckfile.Logs(aside) {
			if err := os.Rename(f, duckfile.Logs(s.path)[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return os.Remove(marker)
	}
	s.log.Warn("embedded postgres: a rebuild of the stream store was cut short; rebuilding it again from the broken file",
		slog.String("path", s.path), slog.String("broken", aside))
	s.salvageOrEmpty(ctx, aside)
	return os.Remove(marker)
}

// moveAside renames the store's write-ahead logs, when there are any, and
// then its file to aside (.wal, .wal.checkpoint, .wal.recovery), keeping
// them for a person to look at. The file goes last: resumeRebuild tells by
// it whether the move was finished.
func (s *DuckDB) moveAside(aside string) error {
	for i, f := range duckfile.Logs(s.path) {
		if err := os.Rename(f, duckfile.Logs(aside)[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move aside: %w", err)
		}
	}
	if err := os.Rename(s.path, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("move aside: %w", err)
	}
	s.log.Warn("embedded postgres: moved the broken stream store aside", slog.String("broken", aside))
	return nil
}

// salvageOrEmpty salvages what it can from aside, saying so when that is
// nothing and the store starts empty.
func (s *DuckDB) salvageOrEmpty(ctx context.Context, aside string) {
	if err := s.salvage(ctx, aside); err != nil {
		s.log.Error("embedded postgres: nothing could be copied from the broken stream store; starting an empty one (the lake and the batch lane are unaffected)",
			slog.String("broken", aside), slog.Any("err", err))
	}
}

// salvage builds a new store file from the pins and rejected records the
// broken file at aside still gives, first with its write-ahead log, then,
// if DuckDB cannot replay that, without it (the log is renamed
// .wal.unreplayable). Aggregates are counted from the copied rows. It runs
// its own DuckDB instances, so a fatal error while reading the broken file
// invalidates none the store keeps. Returns an error, and leaves no new
// file, when nothing could be copied.
func (s *DuckDB) salvage(ctx context.Context, aside string) error {
	err := s.copyFrom(ctx, aside)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(aside + ".wal"); serr != nil {
		return err
	}
	s.log.Warn("embedded postgres: the broken stream store's write-ahead log cannot be replayed; copying what it held at its last checkpoint",
		slog.String("broken", aside), slog.Any("err", err))
	if rerr := os.Rename(aside+".wal", aside+".wal.unreplayable"); rerr != nil {
		return errors.Join(err, rerr)
	}
	return s.copyFrom(ctx, aside)
}

func (s *DuckDB) copyFrom(ctx context.Context, aside string) (err error) {
	for _, f := range append([]string{s.path}, duckfile.Logs(s.path)...) {
		if rerr := os.Remove(f); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return rerr
		}
	}
	db, err := s.openChecked(ctx)
	if err != nil {
		return fmt.Errorf("new store: %w", err)
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH '`+strings.ReplaceAll(aside, `'`, `''`)+`' AS broken (READ_ONLY)`); err != nil {
		return fmt.Errorf("read the broken store: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH broken`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var copied []any
	for _, t := range []struct{ name, key, best string }{duckTables[0], duckTables[3]} {
		res, err := tx.ExecContext(ctx, `INSERT INTO pinterest.`+t.name+` SELECT * FROM broken.pinterest.`+t.name+`
QUALIFY row_number() OVER (PARTITION BY `+t.key+` ORDER BY `+t.best+`) = 1`)
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		n, _ := res.RowsAffected()
		copied = append(copied, slog.Int64(t.name, n))
	}
	if err := recount(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Warn("embedded postgres: rebuilt the stream store from the broken one's rows; pins it had not yet persisted are missing from the real-time view (the lake and the batch lane are unaffected)",
		append([]any{slog.String("broken", aside)}, copied...)...)
	return nil
}

// isLocked reports whether opening failed because another process holds
// the file: nothing to repair, and nothing to move.
func isLocked(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Could not set lock on file")
}
