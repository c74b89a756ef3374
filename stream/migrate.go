package stream

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// migrations are the schema's versioned files; both sinks apply the same
// ones, each through golang-migrate.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationsTable records the applied version (in the public schema, which
// exists before the first migration creates pinterest).
const migrationsTable = "pinpipe_stream_migrations"

// migratePostgres applies every migration not yet applied and returns the
// schema's version. golang-migrate holds an advisory lock meanwhile, so
// two pinpipes starting together apply each migration once. Returns an
// error when Postgres cannot be reached or a migration fails (a failed one
// leaves the version dirty, which needs a person: see the error).
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) (uint, error) {
	// The driver's Close closes db, which leaves the pool open.
	db := stdlib.OpenDBFromPool(pool)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{MigrationsTable: migrationsTable})
	if err != nil {
		db.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return migrateUp(drv, "pgx5")
}

// migrateDuckDB applies the migrations to the embedded stand-in over conn.
func migrateDuckDB(ctx context.Context, conn *sql.Conn) (uint, error) {
	return migrateUp(&duckMigrator{ctx: ctx, conn: conn}, "duckdb")
}

func migrateUp(drv database.Driver, name string) (uint, error) {
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		drv.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, name, drv)
	if err != nil {
		drv.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		var dirty migrate.ErrDirty
		if errors.As(err, &dirty) {
			return 0, fmt.Errorf("migrate: schema version %d is dirty (a migration failed half-way): fix the schema by hand, then set %s's version and dirty=false: %w", dirty.Version, migrationsTable, err)
		}
		return 0, fmt.Errorf("migrate: %w", err)
	}
	v, _, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("migrate: read version: %w", err)
	}
	return v, nil
}

// duckMigrator is golang-migrate's database.Driver for DuckDB, which it
// does not ship: the version table and running a file over one connection.
// Only this process opens the file, so the lock is a mutex.
type duckMigrator struct {
	ctx  context.Context
	conn *sql.Conn
	mu   sync.Mutex
}

func (d *duckMigrator) Open(string) (database.Driver, error) {
	return nil, errors.New("duckdb migrations run over an open connection")
}

func (d *duckMigrator) Close() error { return nil }
func (d *duckMigrator) Lock() error  { d.mu.Lock(); return nil }
func (d *duckMigrator) Unlock() error {
	d.mu.Unlock()
	return nil
}

func (d *duckMigrator) Run(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if _, err := d.conn.ExecContext(d.ctx, string(body)); err != nil {
		return fmt.Errorf("run migration: %w", err)
	}
	return nil
}

func (d *duckMigrator) ensureTable() error {
	_, err := d.conn.ExecContext(d.ctx, "CREATE TABLE IF NOT EXISTS "+migrationsTable+" (version BIGINT NOT NULL, dirty BOOLEAN NOT NULL)")
	return err
}

func (d *duckMigrator) SetVersion(version int, dirty bool) error {
	if err := d.ensureTable(); err != nil {
		return err
	}
	tx, err := d.conn.BeginTx(d.ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(d.ctx, "DELETE FROM "+migrationsTable); err != nil {
		return err
	}
	if version >= 0 {
		if _, err := tx.ExecContext(d.ctx, "INSERT INTO "+migrationsTable+" VALUES ($1, $2)", version, dirty); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (d *duckMigrator) Version() (int, bool, error) {
	if err := d.ensureTable(); err != nil {
		return 0, false, err
	}
	var v int
	var dirty bool
	err := d.conn.QueryRowContext(d.ctx, "SELECT version, dirty FROM "+migrationsTable).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return database.NilVersion, false, nil
	}
	return v, dirty, err
}

func (d *duckMigrator) Drop() error {
	return errors.New("duckdb migrations: drop is not supported; delete the database file instead")
}
