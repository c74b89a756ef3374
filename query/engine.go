// Package query is pinpipe's ad-hoc SQL lane: DuckDB, sandboxed and read-only, over a local mirror of the lake's zones.
package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"pinpipe/pin"
)

// Result receives a query's answer as it is read: the columns once, then
// each row. Values are JSON-friendly (see jsonValue). An error from either
// method stops the query and is returned by Query.
type Result = interface {
	Columns(names, types []string) error
	Row(values []any) error
}

// Row limits of one query.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// Options configure an Engine.
type Options struct {
	Mirror        *Mirror
	Bucket        string        // named instead of local paths in messages: s3://<bucket>/curated/…
	TempDir       string        // where DuckDB spills; "" for none
	Timeout       time.Duration // longest run of one query (PINPIPE_QUERY_TIMEOUT)
	MemoryLimit   string        // DuckDB memory_limit, such as "2GB"
	Threads       int
	MaxConcurrent int // queries at once; more get ETOOMANY
	Registry      prometheus.Registerer
	Log           *slog.Logger
}

// Engine runs read-only SQL over the views pins and pins_raw.
type Engine struct {
	o     Options
	log   *slog.Logger
	db    *sql.DB
	pool  *pool
	scrub func(string) string

	seconds  prometheus.Histogram
	outcomes *prometheus.CounterVec
}

// conn is one DuckDB connection with its own views.
type conn struct {
	c   *sql.Conn
	gen uint64 // the snapshot its views read; 0: none yet
}

// Open starts DuckDB, sandboxed: it can read nothing but the mirror
// directory (no other file, no network, no extension can be installed or
// loaded) and its configuration is then locked, so no query can undo that.
// Returns an error naming the setting DuckDB refused.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	o.MaxConcurrent = max(o.MaxConcurrent, 1)
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("query: start duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(o.MaxConcurrent)
	db.SetMaxIdleConns(o.MaxConcurrent)
	e := &Engine{o: o, log: o.Log, db: db, pool: newPool(), scrub: scrubber(o)}
	if err := e.sandbox(ctx); err != nil {
		db.Close()
		return nil, err
	}
	for range o.MaxConcurrent {
		c, err := db.Conn(ctx)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("query: duckdb connection: %w", err)
		}
		e.pool.add(&conn{c: c})
	}
	f := promauto.With(o.Registry)
	e.seconds = f.NewHistogram(prometheus.HistogramOpts{
		Name: "pinpipe_query_seconds", Help: "Time to run a SQL query and send its rows.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	})
	e.outcomes = f.NewCounterVec(prometheus.CounterOpts{
		Name: "pinpipe_query_total", Help: "SQL queries by outcome.",
	}, []string{"outcome"})
	return e, nil
}

// sandbox applies the engine's settings, last of all locking them.
func (e *Engine) sandbox(ctx context.Context) error {
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		fmt.Sprintf("SET threads = %d", max(e.o.Threads, 1)),
		// Copies never change under a name (the ETag is in it), so footers can be cached.
		"SET parquet_metadata_cache = true",
	}
	if e.o.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+quoteString(e.o.MemoryLimit))
	}
	if e.o.TempDir != "" {
		settings = append(settings, "SET temp_directory = "+quoteString(e.o.TempDir))
	}
	settings = append(settings,
		"SET allowed_directories = ["+quoteString(strings.TrimSuffix(e.o.Mirror.Dir(), "/")+"/")+"]",
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	)
	for _, s := range settings {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("query: duckdb refused %q: %w", s, err)
		}
	}
	return nil
}

// Close closes DuckDB after the running queries return.
func (e *Engine) Close() error {
	var errs []error
	for _, c := range e.pool.drain() {
		errs = append(errs, c.c.Close())
	}
	errs = append(errs, e.db.Close())
	return errors.Join(errs...)
}

// Query runs one read-only statement and streams its answer to out: at most
// limit rows (DefaultLimit when limit ≤ 0, at most MaxLimit). It returns
// truncated=true when the answer had more rows. Errors, by code:
// EFORBIDDEN for anything but one read-only statement over the lake or for
// touching files outside it; EINVALID for SQL DuckDB rejects (its message,
// without server paths); ETIMEOUT past Options.Timeout (DuckDB is
// interrupted); ETOOMANY when MaxConcurrent queries already run;
// EUNAVAILABLE when the lake was never readable. If ctx ends first (the
// client left), its error is returned.
func (e *Engine) Query(ctx context.Context, sqlText string, limit int, out Result) (truncated bool, err error) {
	start := time.Now()
	defer func() { e.observe(ctx, start, err) }()
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	st, err := parseStatement(sqlText)
	if err != nil {
		return false, err
	}
	c := e.pool.get()
	if c == nil {
		return false, pin.Errorf(pin.ETOOMANY,
			"%d queries are already running, the most this pinpipe runs at once (PINPIPE_QUERY_MAX_CONCURRENT); retry in a moment.", e.pool.size)
	}
	defer e.pool.put(c)

	qctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	snap, err := e.o.Mirror.Snapshot(qctx, mentionedDays(st.Text))
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return false, pin.Errorf(pin.ETIMEOUT,
				"The local copy of the lake was still downloading after %s (PINPIPE_QUERY_TIMEOUT), so the query did not run; retry in a moment.", e.o.Timeout)
		}
		return false, err
	}
	defer snap.Release()
	if c.gen != snap.Gen {
		if _, err := c.c.ExecContext(qctx, viewsSQL(snap)); err != nil {
			return false, e.fail(ctx, qctx, err)
		}
		c.gen = snap.Gen
	}
	err = c.c.Raw(func(dc any) error {
		truncated, err = e.run(ctx, qctx, dc.(*duckdb.Conn), st, limit, out)
		return err
	})
	return truncated, err
}

// run prepares and executes st on dc and streams up to limit rows to out.
func (e *Engine) run(ctx, qctx context.Context, dc *duckdb.Conn, st statement, limit int, out Result) (bool, error) {
	stmt, err := e.prepare(dc, st, limit)
	if err != nil {
		return false, e.fail(ctx, qctx, err)
	}
	defer stmt.Close()
	rows, err := stmt.QueryContext(qctx, nil)
	if err != nil {
		return false, e.fail(ctx, qctx, err)
	}
	defer rows.Close()
	names := rows.Columns()
	types := make([]string, len(names))
	if tn, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		for i := range names {
			types[i] = tn.ColumnTypeDatabaseTypeName(i)
		}
	}
	if err := out.Columns(names, types); err != nil {
		return false, err
	}
	vals := make([]driver.Value, len(names))
	for n := 0; ; n++ {
		err := rows.Next(vals)
		if errors.Is(err, io.EOF) {
			return false, nil
		} else if err != nil {
			return false, e.fail(ctx, qctx, err)
		}
		if n == limit {
			return true, nil
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = jsonValue(v, types[i], e.scrub)
		}
		if err := out.Row(row); err != nil {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

// prepare binds st, refusing every statement type but SELECT and EXPLAIN
// of a SELECT. A query is first tried wrapped in "SELECT * FROM (…) LIMIT
// limit+1", so DuckDB (which materialises results) stops at the rows that
// will be sent; only a query with balanced parentheses is wrapped, so the
// wrapper cannot change how it parses, and the wrapper is dropped again
// when it renamed a duplicate column. What parses as a subquery is a
// SELECT; anything else is prepared as written and judged by its type.
func (e *Engine) prepare(dc *duckdb.Conn, st statement, limit int) (*duckdb.Stmt, error) {
	if st.Balanced && st.Words[0] != "EXPLAIN" {
		w, err := prepareOne(dc, fmt.Sprintf("SELECT * FROM (\n%s\n) LIMIT %d", st.Text, limit+1))
		if err == nil && !renamedDuplicates(w) {
			return w, nil
		}
		if w != nil {
			w.Close()
		}
	}
	s, err := prepareOne(dc, st.Text)
	if err != nil {
		return nil, err
	}
	typ, err := s.StatementType()
	if err != nil {
		s.Close()
		return nil, err
	}
	switch typ {
	case duckdb.STATEMENT_TYPE_SELECT:
		return s, nil
	case duckdb.STATEMENT_TYPE_EXPLAIN:
		inner, err := prepareOne(dc, st.explained())
		if err != nil {
			s.Close()
			return nil, err
		}
		it, _ := inner.StatementType()
		inner.Close()
		if it != duckdb.STATEMENT_TYPE_SELECT {
			s.Close()
			return nil, forbidden(typeReason(it))
		}
		return s, nil
	}
	s.Close()
	return nil, forbidden(typeReason(typ))
}

// renamedDuplicates reports whether a wrapped statement has a column named
// like DuckDB renames a duplicate in a subquery ("a" then "a_1").
func renamedDuplicates(s *duckdb.Stmt) bool {
	n, err := s.ColumnCount()
	if err != nil {
		return true
	}
	seen := make(map[string]bool, n)
	for i := range n {
		name, err := s.ColumnName(i)
		if err != nil {
			return true
		}
		if j := strings.LastIndexByte(name, '_'); j > 0 && seen[strings.ToLower(name[:j])] &&
			strings.Trim(name[j+1:], "0123456789") == "" {
			return true
		}
		seen[strings.ToLower(name)] = true
	}
	return false
}

func typeReason(t duckdb.StmtType) string {
	if why, ok := typeRefusals[t]; ok {
		return why
	}
	return "the statement is not a query"
}

// prepareOne prepares exactly one statement: the driver's Prepare refuses
// several rather than running all but the last, as PrepareContext would.
// Returns EINVALID for a statement DuckDB expands into several.
func prepareOne(dc *duckdb.Conn, text string) (*duckdb.Stmt, error) {
	s, err := dc.Prepare(text)
	if err != nil {
		if strings.Contains(err.Error(), "multi-statement") {
			// The lexer saw one statement; DuckDB expands it into several.
			return nil, pin.Errorf(pin.EINVALID,
				"DuckDB runs this statement as several, which needs to change the catalog; a PIVOT, for one, must list its values: PIVOT … ON col IN ('a', 'b') USING count(*).")
		}
		return nil, err
	}
	return s.(*duckdb.Stmt), nil
}

func (e *Engine) observe(ctx context.Context, start time.Time, err error) {
	e.seconds.Observe(time.Since(start).Seconds())
	outcome := "ok"
	switch {
	case err == nil:
	case ctx.Err() != nil:
		outcome = "canceled"
	default:
		outcome = pin.ErrorCode(err)
	}
	e.outcomes.WithLabelValues(outcome).Inc()
}

var dayPattern = regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b`)

// mentionedDays returns the dates a query names ('2026-11-24'): the
// mirror counts them as used, and fetches them if its disk budget had left
// them out.
func mentionedDays(text string) []string {
	var out []string
	for _, d := range dayPattern.FindAllString(text, 32) {
		if validDay(d) {
			out = append(out, d)
		}
	}
	return out
}
