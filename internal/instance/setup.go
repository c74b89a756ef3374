package instance

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"pinpipe/config"
	"pinpipe/internal/testenv"
)

// NewIn returns an instance named name of the binary bin, not running yet,
// with the configuration c on a free loopback address, its data directory
// dir/name and its log dir/name.log. Returns an error when no port is free.
func NewIn(dir, name, bin string, c config.Config) (*Process, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	c.Addr, c.DataDir = addr, filepath.Join(dir, name)
	return New(Options{Name: name, Bin: bin, Addr: addr, Env: Env(&c), Log: filepath.Join(dir, name+".log")}), nil
}

// StartReady starts p and waits up to timeout until it is ready. A pinpipe
// whose startup failed (say, a busy Cassandra did not answer its schema
// change in time) exits; like an orchestrator, StartReady starts it again,
// up to tries times in all. Returns the last error when it never became
// ready, and at once when ctx ends or p cannot be started at all.
func (p *Process) StartReady(ctx context.Context, tries int, timeout time.Duration, log func(string, ...any)) error {
	var err error
	for range max(tries, 1) {
		if err = p.Start(); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err = p.WaitReady(wctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if log != nil {
			log("%v; starting it again", err)
		}
		_ = p.Kill()
	}
	return err
}

// FreshDatabase creates a Postgres database named after prefix next to
// base's, for instances of their own, and returns its URL. Returns an
// error when base cannot be reached or the database cannot be created.
func FreshDatabase(ctx context.Context, base, prefix string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("postgres at PINPIPE_POSTGRES_URL: %w", err)
	}
	defer conn.Close(ctx)
	name := strings.ReplaceAll(testenv.Name(prefix), "-", "_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database of URL db (made by FreshDatabase)
// through base, forcing its connections closed; it does nothing when db
// is base's own, and ignores errors (it is cleanup).
func DropDatabase(base, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(db)
	if err != nil || base == db {
		return
	}
	if conn, err := pgx.Connect(ctx, base); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+strings.TrimPrefix(u.Path, "/")+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
}
