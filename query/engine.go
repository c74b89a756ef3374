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
	"slices"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"pinpipe/pin"
)

// Result receives a query's answer as it is read (see jsonValue for the
// values it gets).
type Result = pin.QueryResult

// Row limits of one query.
const (
	DefaultLimit = pin.QueryDefaultLimit
	MaxLimit     = pin.QueryMaxLimit
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
	// MaxResultBytes bounds one answer (PINPIPE_QUERY_MAX_RESULT_BYTES),
	// counted inside DuckDB before it keeps a row and again while rows are
	// sent; DefaultMaxResultBytes when ≤ 0.
	MaxResultBytes int64
	// MaxValueBytes bounds one value of an answer, and what repeat, lpad
	// and the like may build; min(DefaultMaxValueBytes, MaxResultBytes)
	// when ≤ 0.
	MaxValueBytes int64
	// MaxSpill bounds what DuckDB writes to TempDir (max_temp_directory_size,
	// PINPIPE_QUERY_MAX_SPILL); DefaultMaxSpill when ≤ 0.
	MaxSpill int64
	// ExportMaxRows, ExportMaxBytes and ExportTimeout bound one export
	// (PINPIPE_EXPORT_MAX_ROWS, _MAX_BYTES, _TIMEOUT); the defaults
	// DefaultExport… when ≤ 0.
	ExportMaxRows  int
	ExportMaxBytes int64
	ExportTimeout  time.Duration
	Registry       prometheus.Registerer
	Log            *slog.Logger
}

// Engine runs read-only SQL over the views pins, pins_live and pins_raw.
type Engine struct {
	o       Options
	log     *slog.Logger
	db      *sql.DB
	pool    *pool
	gate    *gate
	budgets budgets
	plans   plans
	scrub   func(string) string

	seconds  prometheus.Histogram
	planHits prometheus.Counter
	outcomes *prometheus.CounterVec

	layoutMu sync.Mutex
	current  map[string]bool // raw file → has exactly the current columns; the newest snapshot's files
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
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = DefaultMaxResultBytes
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = min(DefaultMaxValueBytes, o.MaxResultBytes)
	}
	if o.MaxSpill <= 0 {
		o.MaxSpill = DefaultMaxSpill
	}
	if o.ExportMaxRows <= 0 {
		o.ExportMaxRows = DefaultExportMaxRows
	}
	if o.ExportMaxBytes <= 0 {
		o.ExportMaxBytes = DefaultExportMaxBytes
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = DefaultExportTimeout
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("query: start duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	// One connection more than queries run at once: the gate's own.
	db.SetMaxOpenConns(o.MaxConcurrent + 1)
	db.SetMaxIdleConns(o.MaxConcurrent + 1)
	e := &Engine{o: o, log: o.Log, db: db, pool: newPool(), scrub: scrubber(o)}
	gc, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("query: duckdb connection: %w", err)
	}
	e.gate = &gate{c: gc, fns: builtinFunctions}
	if err := registerBudget(gc, &e.budgets); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.sandbox(ctx); err != nil {
		e.Close()
		return nil, err
	}
	for range o.MaxConcurrent {
		c, err := db.Conn(ctx)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("query: duckdb connection: %w", err)
		}
		e.pool.add(&conn{c: c})
		for _, g := range guardsSQL(o.MaxValueBytes) {
			if _, err := c.ExecContext(ctx, g); err != nil {
				e.Close()
				return nil, fmt.Errorf("query: duckdb refused %q: %w", g, err)
			}
		}
	}
	f := promauto.With(o.Registry)
	e.seconds = f.NewHistogram(prometheus.HistogramOpts{
		Name: "pinpipe_query_seconds", Help: "Time to run a SQL query and send its rows.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	})
	e.planHits = f.NewCounter(prometheus.CounterOpts{
		Name: "pinpipe_query_plan_cache_hits_total",
		Help: "Queries whose statement the gate had allowed before under the same views, so they skipped its checks and the preparing that finds their column types.",
	})
	e.outcomes = f.NewCounterVec(prometheus.CounterOpts{
		Name: "pinpipe_query_total", Help: "SQL queries by outcome.",
	}, []string{"outcome"})
	return e, nil
}

// sandbox applies the engine's settings, last of all locking them. They
// run on whichever connection database/sql hands out, so each is GLOBAL:
// a plain SET of a session-scoped option (TimeZone,
// parquet_metadata_cache, late_materialization_max_rows) would reach that
// one connection and not the others queries run on.
func (e *Engine) sandbox(ctx context.Context) error {
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		fmt.Sprintf("SET threads = %d", max(e.o.Threads, 1)),
		// Copies never change under a name (the ETag is in it), so footers can be cached.
		"SET GLOBAL parquet_metadata_cache = true",
		// Instants (the lake's timestamps are UTC-adjusted) show and
		// cast in UTC, whatever the host's zone.
		"SET GLOBAL TimeZone = 'UTC'",
		// A top-N or LIMIT up to this many rows first reads only the
		// columns it orders and filters by, then fetches its rows' other
		// columns by row id. DuckDB's default stops at 50, below the
		// dashboard's "LIMIT 100", which then decoded every column of
		// every pin.
		"SET GLOBAL late_materialization_max_rows = 1000",
	}
	if e.o.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+quoteString(e.o.MemoryLimit))
	}
	if e.o.TempDir != "" {
		settings = append(settings, "SET temp_directory = "+quoteString(e.o.TempDir),
			fmt.Sprintf("SET max_temp_directory_size = '%dB'", e.o.MaxSpill))
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
	if e.gate != nil {
		errs = append(errs, e.gate.c.Close())
	}
	errs = append(errs, e.db.Close())
	return errors.Join(errs...)
}

// Query runs one read-only statement and streams its answer to out: at most
// limit rows (DefaultLimit when limit ≤ 0, at most MaxLimit). It returns
// truncated=true when the answer had more rows. Errors, by code:
// EFORBIDDEN for anything but one read-only statement over the lake or for
// touching files outside it, or for calling a function or naming a table
// the allowlist does not have (gate.go); EINVALID for SQL DuckDB rejects
// (its message, without server paths); ETOOLARGE for an answer larger than
// Options.MaxResultBytes or a value larger than Options.MaxValueBytes;
// ETIMEOUT past Options.Timeout (DuckDB is
// interrupted); ETOOMANY when MaxConcurrent queries already run;
// EUNAVAILABLE when the lake was never readable. If ctx ends first (the
// client left), its error is returned.
func (e *Engine) Query(ctx context.Context, sqlText string, limit int, out Result) (truncated bool, err error) {
	return e.QueryAt(ctx, sqlText, 0, limit, out)
}

// QueryAt is Query from row offset of the answer on (0 when offset < 0):
// the rows before it are skipped inside DuckDB and count for nothing. An
// EXPLAIN answers its plan whatever the offset. Pages of a query without
// ORDER BY may overlap, as DuckDB does not promise one order twice.
func (e *Engine) QueryAt(ctx context.Context, sqlText string, offset, limit int, out Result) (truncated bool, err error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return e.exec(ctx, sqlText, bounds{
		offset: max(offset, 0), rows: min(limit, MaxLimit),
		bytes: e.o.MaxResultBytes, bytesSetting: "PINPIPE_QUERY_MAX_RESULT_BYTES",
		timeout: e.o.Timeout, timeoutSetting: "PINPIPE_QUERY_TIMEOUT",
	}, out)
}

// exec runs one statement within bd; see Query.
func (e *Engine) exec(ctx context.Context, sqlText string, bd bounds, out Result) (truncated bool, err error) {
	start := time.Now()
	defer func() { e.observe(ctx, start, err) }()
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

	qctx, cancel := context.WithTimeout(ctx, bd.timeout)
	defer cancel()
	snap, err := e.o.Mirror.Snapshot(qctx, mentionedDays(st.Text))
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return false, pin.Errorf(pin.ETIMEOUT,
				"The local copy of the lake was still downloading after %s (%s), so the query did not run; retry in a moment.", bd.timeout, bd.timeoutSetting)
		}
		return false, err
	}
	defer snap.Release()
	if c.gen != snap.Gen {
		current, err := e.rawCurrent(qctx, c, snap)
		if err != nil {
			return false, e.fail(ctx, qctx, bd, nil, err)
		}
		if _, err := c.c.ExecContext(qctx, viewsSQL(snap, current)); err != nil {
			return false, e.fail(ctx, qctx, bd, nil, err)
		}
		c.gen = snap.Gen
	}
	err = c.c.Raw(func(dc any) error {
		truncated, err = e.run(ctx, qctx, dc.(*duckdb.Conn), c.gen, st, bd, out)
		return err
	})
	return truncated, err
}

// rawCurrent reports whether every raw file of snap has exactly the
// columns the landing writes now, asking DuckDB on c for the columns of
// the files no earlier snapshot had (a copy's name holds its ETag, so a
// file's columns never change).
func (e *Engine) rawCurrent(ctx context.Context, c *conn, snap *Snapshot) (bool, error) {
	e.layoutMu.Lock()
	var unknown []string
	for _, f := range snap.Raw {
		if _, ok := e.current[f]; !ok {
			unknown = append(unknown, f)
		}
	}
	e.layoutMu.Unlock()
	found := map[string]bool{}
	if len(unknown) > 0 {
		rows, err := c.c.QueryContext(ctx, rawLayoutSQL(unknown))
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var file string
			var names []any
			if err := rows.Scan(&file, &names); err != nil {
				return false, err
			}
			found[file] = slices.EqualFunc(names, rawFileNames, func(a any, b string) bool { return a == b })
		}
		if err := rows.Err(); err != nil {
			return false, err
		}
	}
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	next := make(map[string]bool, len(snap.Raw))
	all := true
	for _, f := range snap.Raw {
		cur, ok := e.current[f]
		if !ok {
			cur = found[f] // a file DuckDB listed no columns of is not current
		}
		next[f] = cur
		all = all && cur
	}
	e.current = next
	return all && len(snap.Raw) > 0, nil
}

// run checks st, prepares and executes it on dc, whose views are of
// snapshot generation gen, and streams up to bd.rows rows to out.
func (e *Engine) run(ctx, qctx context.Context, dc *duckdb.Conn, gen uint64, st statement, bd bounds, out Result) (bool, error) {
	id, b := e.budgets.start(e.o.MaxValueBytes, bd.bytes, bd.bytesSetting)
	defer e.budgets.end(id)
	limit := bd.rows
	stmt, names, err := e.prepare(qctx, dc, gen, st, bd, id)
	if err != nil {
		return false, e.fail(ctx, qctx, bd, b, err)
	}
	defer stmt.Close()
	rows, err := stmt.QueryContext(qctx, nil)
	if err != nil {
		return false, e.fail(ctx, qctx, bd, b, err)
	}
	defer rows.Close()
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
	var sent int64
	for n := 0; ; n++ {
		err := rows.Next(vals)
		if errors.Is(err, io.EOF) {
			return false, nil
		} else if err != nil {
			return false, e.fail(ctx, qctx, bd, b, err)
		}
		if n == limit {
			return true, nil
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = jsonValue(v, types[i], e.scrub)
			sent += cellBytes(row[i])
		}
		if err := checkResultBytes(sent, bd.bytes, bd.bytesSetting); err != nil {
			return false, err
		}
		if err := out.Row(row); err != nil {
			return false, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
}

// prepare checks st with the gate and prepares what DuckDB runs for it,
// returning the statement and the names of its columns. A query runs
// wrapped (wrapSQL): at most bd.rows+1 rows from bd.offset on, each counted against the budget
// id, its columns renamed by position and given back their own names here.
// EXPLAIN runs as written, its explained statement checked; it answers a
// plan, not rows. Nothing that is not a SELECT is run: such a statement is
// prepared only to say what it is. A statement allowed before under the
// views' generation gen skips the gate and the first prepare (plans).
func (e *Engine) prepare(ctx context.Context, dc *duckdb.Conn, gen uint64, st statement, bd bounds, id int64) (*duckdb.Stmt, []string, error) {
	if st.Words[0] == "EXPLAIN" {
		return e.prepareExplain(ctx, dc, st)
	}
	if pl, ok := e.plans.get(gen, st.Text); ok {
		e.planHits.Inc()
		w, err := prepareWrapped(dc, wrapSQL(st.Text, pl.types, bd.offset, bd.rows, id), len(pl.names))
		return w, pl.names, err
	}
	if err := e.gate.check(ctx, st.Text); errors.Is(err, errNotSelect) {
		return nil, nil, refuseNotSelect(dc, st.Text)
	} else if err != nil {
		return nil, nil, err
	}
	raw, err := prepareOne(dc, st.Text)
	if err != nil {
		return nil, nil, err
	}
	names, types, err := describe(raw)
	raw.Close()
	if err != nil {
		return nil, nil, err
	}
	text := wrapSQL(st.Text, types, bd.offset, bd.rows, id)
	// The wrapper adds only the budget call: checked again as DuckDB parses
	// it, a query can never have meant something else inside it.
	if err := e.gate.check(ctx, text, budgetFunc); err != nil {
		return nil, nil, err
	}
	w, err := prepareWrapped(dc, text, len(names))
	if err != nil {
		return nil, nil, err
	}
	e.plans.put(gen, st.Text, plan{names: names, types: types})
	return w, names, nil
}

// prepareWrapped prepares a query's wrapper, text, which must answer as
// many columns as the query's columns.
func prepareWrapped(dc *duckdb.Conn, text string, columns int) (*duckdb.Stmt, error) {
	w, err := prepareOne(dc, text)
	if err != nil {
		return nil, err
	}
	if n, err := w.ColumnCount(); err != nil || n != columns {
		w.Close()
		return nil, fmt.Errorf("query: the wrapped statement has %d columns, the query %d (%v)", n, columns, err)
	}
	return w, nil
}

// prepareExplain prepares an EXPLAIN whose explained statement the gate
// allows. The options in parentheses may hold words, numbers and strings
// only, so DuckDB and the lexer agree where the explained statement starts.
func (e *Engine) prepareExplain(ctx context.Context, dc *duckdb.Conn, st statement) (*duckdb.Stmt, []string, error) {
	i := st.explainedIndex()
	depth := 0
	for _, w := range st.Words[:i] {
		if w == "(" {
			if depth++; depth > 1 {
				return nil, nil, forbidden("EXPLAIN's options are words, numbers and strings")
			}
		} else if w == ")" {
			depth--
		}
	}
	if err := e.gate.check(ctx, st.explained()); errors.Is(err, errNotSelect) {
		return nil, nil, refuseNotSelect(dc, st.explained())
	} else if err != nil {
		return nil, nil, err
	}
	s, err := prepareOne(dc, st.Text)
	if err != nil {
		return nil, nil, err
	}
	if typ, err := s.StatementType(); err != nil || typ != duckdb.STATEMENT_TYPE_EXPLAIN {
		s.Close()
		return nil, nil, forbidden("EXPLAIN explains one query")
	}
	names, _, err := describe(s)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, names, nil
}

// refuseNotSelect returns the error for a statement that is not a SELECT:
// it is prepared, never run, so the refusal can name what it is. Returns
// DuckDB's error when it cannot even prepare it.
func refuseNotSelect(dc *duckdb.Conn, text string) error {
	s, err := prepareOne(dc, text)
	if err != nil {
		return err
	}
	defer s.Close()
	typ, err := s.StatementType()
	if err != nil {
		return err
	}
	return forbidden(typeReason(typ))
}

// describe returns the names and types of a prepared statement's columns.
// Returns an error when the statement is not a query.
func describe(s *duckdb.Stmt) ([]string, []duckdb.Type, error) {
	typ, err := s.StatementType()
	if err != nil {
		return nil, nil, err
	}
	if typ != duckdb.STATEMENT_TYPE_SELECT && typ != duckdb.STATEMENT_TYPE_EXPLAIN {
		return nil, nil, forbidden(typeReason(typ))
	}
	n, err := s.ColumnCount()
	if err != nil {
		return nil, nil, err
	}
	names, types := make([]string, n), make([]duckdb.Type, n)
	for i := range n {
		if names[i], err = s.ColumnName(i); err != nil {
			return nil, nil, err
		}
		if types[i], err = s.ColumnType(i); err != nil {
			return nil, nil, err
		}
	}
	return names, types, nil
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
