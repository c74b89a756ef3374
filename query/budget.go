package query

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"pinpipe/pin"
)

// Result size limits of one query, by default.
const (
	DefaultMaxResultBytes = 64 << 20
	DefaultMaxValueBytes  = 16 << 20
	DefaultMaxSpill       = 4 << 30
)

// budgetFunc is the function the row-cap wrapper calls once per row of an
// answer, inside DuckDB, before DuckDB keeps the row for the driver: it
// refuses a value larger than Options.MaxValueBytes and an answer larger
// than Options.MaxResultBytes, so DuckDB never materialises more.
const budgetFunc = "pinpipe_result_budget"

// guardPhrase is in the message of every guard of guardsSQL.
const guardPhrase = "the most one call of it may build"

// fixedCellBytes is what a value of a fixed-size type (numbers, dates,
// booleans) counts for.
const fixedCellBytes = 16

// budget is the running size of one query's answer.
type budget struct {
	maxValue, maxTotal int64
	setting            string // the setting that sets maxTotal
	used               atomic.Int64
	err                atomic.Pointer[pin.Error] // the limit the answer hit, once it has
}

// budgets are the budgets of the running queries, by the id their wrapper
// passes to budgetFunc.
type budgets struct {
	mu   sync.Mutex
	next int64
	m    map[int64]*budget
}

func (bs *budgets) start(maxValue, maxTotal int64, setting string) (int64, *budget) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = map[int64]*budget{}
	}
	bs.next++
	b := &budget{maxValue: maxValue, maxTotal: maxTotal, setting: setting}
	bs.m[bs.next] = b
	return bs.next, b
}

func (bs *budgets) end(id int64) {
	bs.mu.Lock()
	delete(bs.m, id)
	bs.mu.Unlock()
}

func (bs *budgets) get(id int64) *budget {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.m[id]
}

// add counts one row of fixed bytes plus the sizes of its variable-size
// values. Returns ETOOLARGE once a value or the answer is over its limit.
func (b *budget) add(fixed int64, sizes []int64) error {
	total := fixed
	for _, n := range sizes {
		if n > b.maxValue {
			return b.fail(errValueTooLarge(n, b.maxValue))
		}
		total += n
	}
	if b.used.Add(total) > b.maxTotal {
		return b.fail(errResultTooLarge(b.maxTotal, b.setting))
	}
	return nil
}

func (b *budget) fail(err *pin.Error) error {
	b.err.CompareAndSwap(nil, err)
	return err
}

func errValueTooLarge(n, limit int64) *pin.Error {
	return pin.Errorf(pin.ETOOLARGE,
		"One value of the answer has %d bytes, more than the %d one value may have: cut it down in the query (left(col, n), a list slice, an aggregate).", n, limit)
}

func errResultTooLarge(limit int64, setting string) *pin.Error {
	return pin.Errorf(pin.ETOOLARGE,
		"The answer is larger than %d bytes (%s): ask for fewer rows or columns, aggregate, or cut long values down.", limit, setting)
}

// budgetUDF is budgetFunc: budgetFunc(id, fixed, size…) returns true, or
// fails the query once its budget is spent.
type budgetUDF struct{ bs *budgets }

func (u budgetUDF) Config() duckdb.ScalarFuncConfig {
	bigint, _ := duckdb.NewTypeInfo(duckdb.TYPE_BIGINT)
	boolean, _ := duckdb.NewTypeInfo(duckdb.TYPE_BOOLEAN)
	return duckdb.ScalarFuncConfig{
		InputTypeInfos:      []duckdb.TypeInfo{bigint, bigint},
		VariadicTypeInfo:    bigint,
		ResultTypeInfo:      boolean,
		Volatile:            true, // never folded, never pushed below the LIMIT
		SpecialNullHandling: true, // a NULL value has size NULL: counts as 0
	}
}

func (u budgetUDF) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(values []driver.Value) (any, error) {
		id, _ := values[0].(int64)
		fixed, _ := values[1].(int64)
		b := u.bs.get(id)
		if b == nil {
			return nil, fmt.Errorf("%s: no query %d", budgetFunc, id)
		}
		sizes := make([]int64, 0, len(values)-2)
		for _, v := range values[2:] {
			n, _ := v.(int64)
			sizes = append(sizes, n)
		}
		if err := b.add(fixed, sizes); err != nil {
			return nil, err
		}
		return true, nil
	}}
}

// registerBudget makes budgetFunc known to the database c belongs to.
func registerBudget(c *sql.Conn, bs *budgets) error {
	if err := duckdb.RegisterScalarUDF(c, budgetFunc, budgetUDF{bs}); err != nil {
		return fmt.Errorf("query: register %s: %w", budgetFunc, err)
	}
	return nil
}

// maxBuiltBytes bounds what one call of a guarded builder may build.
// DuckDB computes a column 2048 rows at a time before the wrapper sees any
// of them, so a chunk of built values holds up to 2048 times this much
// (128 MiB) outside DuckDB's memory limit.
const maxBuiltBytes = 64 << 10

// guarded are the functions guardsSQL puts size checks in front of.
var guarded = map[string]bool{
	"repeat": true, "lpad": true, "rpad": true, "range": true, "generate_series": true,
	"list_resize": true, "array_resize": true,
}

// guardsSQL returns the statements that put size checks in front of the
// functions that build a large value from a few bytes of SQL (repeat,
// lpad, rpad, range, generate_series, list_resize, array_resize): temporary
// macros of the same names, private to a connection, that refuse a result
// larger than maxValue bytes before DuckDB allocates it, then call the
// built-in (system.main.…). Table functions of those names are not macros
// and stay as they are.
func guardsSQL(maxValue int64) []string {
	maxValue = min(maxValue, maxBuiltBytes)
	fail := func(what string) string {
		return "error(" + quoteString(fmt.Sprintf(
			"%s would build a value larger than %d bytes, "+guardPhrase+"; ask for less.", what, maxValue)) + ")"
	}
	size := func(s string) string { return "strlen(CAST(" + s + " AS VARCHAR))" }
	count := func(n, per, what string) string {
		return fmt.Sprintf("CASE WHEN (%s) * (%s) > %d THEN %s ELSE %s END", n, per, maxValue, fail(what), n)
	}
	var out []string
	add := func(format string, args ...any) {
		out = append(out, "CREATE OR REPLACE TEMP MACRO "+fmt.Sprintf(format, args...))
	}
	add("repeat(s, n) AS system.main.repeat(s, %s)", count("n", size("s"), "repeat"))
	for _, f := range []string{"lpad", "rpad"} {
		add("%s(s, n, p) AS system.main.%s(s, %s, p)", f, f, count("n", "greatest("+size("p")+", 1)", f))
	}
	for _, f := range []string{"range", "generate_series"} {
		add("%s(n) AS system.main.%s(%s), (a, b) AS system.main.%s(a, %s), (a, b, c) AS system.main.%s(a, b, c)",
			f, f, count("n", "8", f), f, "a + "+count("b - a", "8", f), f)
	}
	for _, f := range []string{"list_resize", "array_resize"} {
		add("%s(l, n) AS system.main.%s(l, %s), (l, n, v) AS system.main.%s(l, %s, v)",
			f, f, count("n", "8", f), f, count("n", "8 + "+size("v"), f))
	}
	return out
}

// wrapSQL returns the text DuckDB runs for a query: the query as a
// subquery, its columns renamed by position (so duplicate names need no
// renaming), at most limit+1 rows from row offset on, each row counted by budgetFunc against
// the budget id. types are the query's column types, which tell which
// values vary in size.
func wrapSQL(text string, types []duckdb.Type, offset, limit int, id int64) string {
	var aliases, sizes []string
	fixed := 0
	for i, t := range types {
		c := fmt.Sprintf("c%d", i+1)
		aliases = append(aliases, c)
		switch t {
		case duckdb.TYPE_VARCHAR:
			sizes = append(sizes, "strlen("+c+")")
		case duckdb.TYPE_BLOB, duckdb.TYPE_BIT:
			sizes = append(sizes, "octet_length("+c+")")
		case duckdb.TYPE_BOOLEAN, duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_INTEGER,
			duckdb.TYPE_BIGINT, duckdb.TYPE_UTINYINT, duckdb.TYPE_USMALLINT, duckdb.TYPE_UINTEGER,
			duckdb.TYPE_UBIGINT, duckdb.TYPE_FLOAT, duckdb.TYPE_DOUBLE, duckdb.TYPE_TIMESTAMP,
			duckdb.TYPE_DATE, duckdb.TYPE_TIME, duckdb.TYPE_INTERVAL, duckdb.TYPE_HUGEINT,
			duckdb.TYPE_UHUGEINT, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS,
			duckdb.TYPE_TIMESTAMP_NS, duckdb.TYPE_ENUM, duckdb.TYPE_UUID, duckdb.TYPE_TIME_TZ,
			duckdb.TYPE_TIMESTAMP_TZ, duckdb.TYPE_DECIMAL, duckdb.TYPE_SQLNULL:
			fixed += fixedCellBytes
		default: // lists, structs, maps, unions and whatever comes: their text
			sizes = append(sizes, "strlen(CAST("+c+" AS VARCHAR))")
		}
	}
	args := append([]string{fmt.Sprint(id), fmt.Sprint(fixed)}, sizes...)
	return fmt.Sprintf("SELECT * FROM (SELECT * FROM (\n%s\n) LIMIT %d OFFSET %d) AS pinpipe_answer(%s) WHERE %s(%s)",
		text, limit+1, offset, strings.Join(aliases, ", "), budgetFunc, strings.Join(args, ", "))
}

// cellBytes returns about how many bytes v takes in a JSON answer.
func cellBytes(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 4
	case string:
		return jsonStringBytes(x)
	case json.Number:
		return int64(len(x))
	case []any:
		n := int64(1 + max(len(x), 1)) // brackets and commas
		for _, e := range x {
			n += cellBytes(e)
		}
		return n
	case map[string]any:
		n := int64(1 + max(len(x), 1)) // braces and commas
		for k, e := range x {
			n += jsonStringBytes(k) + 1 + cellBytes(e)
		}
		return n
	}
	return fixedCellBytes
}

// jsonStringBytes returns the length of s as encoding/json writes it:
// quotes, backslashes and the short escapes (\n, \t…) take two bytes, other
// control characters and the characters it escapes for HTML six (\u003c),
// so a value of NUL bytes counts six times its length.
func jsonStringBytes(s string) int64 {
	n := int64(len(s)) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			n++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		}
	}
	return n
}

// checkResultBytes returns ETOOLARGE, naming setting, once sent bytes pass
// limit.
func checkResultBytes(sent, limit int64, setting string) error {
	if sent > limit {
		return errResultTooLarge(limit, setting)
	}
	return nil
}

// budgetError returns the limit b's answer hit, or nil.
func budgetError(b *budget) error {
	if b == nil {
		return nil
	}
	if err := b.err.Load(); err != nil {
		return err
	}
	return nil
}
