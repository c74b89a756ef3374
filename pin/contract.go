package pin

import (
	"fmt"
	"strings"
	"time"
)

// The contract as data: Schema (beside Cleaned in pin.go) lists each
// cleaned column once, and every store's column list, statements and tables
// are made from it; what must stay a file (the Postgres migrations) is
// checked against it by a test.

// Kind is a column's type; each store's type follows from it.
type Kind int

const (
	Int64     Kind = iota // a 64-bit integer
	Int32                 // a 32-bit integer
	Text                  // UTF-8 text
	TextList              // a list of texts, empty rather than NULL
	Timestamp             // an instant in microseconds, held as UTC wall time
)

// Column is one column of the cleaned record.
type Column struct {
	Name     string
	Kind     Kind
	Nullable bool
	// Value returns the column's value in c as a driver takes it: int64,
	// int32, string, []string or time.Time, or nil for NULL.
	Value func(c *Cleaned) any
	// Field returns a pointer to c's field holding the column, to scan
	// into: a *T, or a **T for a nullable column (nil for NULL).
	Field func(c *Cleaned) any
}

// Columns lists Schema's column names in contract order; they are also
// Cleaned's JSON and Parquet names, and Values returns the values in this
// order.
var Columns = func() []string {
	out := make([]string, len(Schema))
	for i, c := range Schema {
		out[i] = c.Name
	}
	return out
}()

// Values returns the cleaned record's values in Columns order, ready for a
// row writer (pgx CopyFrom, DuckDB's appender, a CQL insert): plain values,
// nil for NULL (see Column.Value).
func (c Cleaned) Values() []any {
	out := make([]any, len(Schema))
	for i := range Schema {
		out[i] = Schema[i].Value(&c)
	}
	return out
}

// Fields returns pointers to c's fields in Columns order, to scan a row
// into (see Column.Field).
func (c *Cleaned) Fields() []any {
	out := make([]any, len(Schema))
	for i := range Schema {
		out[i] = Schema[i].Field(c)
	}
	return out
}

// ColumnList returns the names of cols joined by ", ", each prefixed with
// prefix ("" or an alias and a dot), for a SELECT or an INSERT.
func ColumnList(prefix string, cols []Column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix)
		b.WriteString(c.Name)
	}
	return b.String()
}

// The column types in each store. Parquet is the curated zone's physical
// and logical type as Cleaned's parquet tags make it.
var (
	parquetTypes = [...]string{Int64: "INT(64,true)", Int32: "INT(32,true)", Text: "STRING", TextList: "LIST<STRING>", Timestamp: "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)"}
	cqlTypes     = [...]string{Int64: "bigint", Int32: "int", Text: "text", TextList: "frozen<list<text>>", Timestamp: "timestamp"}
	pgTypes      = [...]string{Int64: "BIGINT", Int32: "INTEGER", Text: "TEXT", TextList: "TEXT[]", Timestamp: "TIMESTAMPTZ"}
	duckTypes    = [...]string{Int64: "BIGINT", Int32: "INTEGER", Text: "VARCHAR", TextList: "VARCHAR[]", Timestamp: "TIMESTAMP"}
)

// ParquetType returns the column's logical type in the curated zone:
// INT(64,true) and INT(32,true) (signed INT64 and INT32), STRING,
// LIST<STRING> or TIMESTAMP(isAdjustedToUTC=true,unit=MICROS) (an
// instant, which Spark, Trino and Athena read as such, like the raw
// zone's timestamps).
func (c Column) ParquetType() string { return parquetTypes[c.Kind] }

// CQLType returns the column's Cassandra type.
func (c Column) CQLType() string { return cqlTypes[c.Kind] }

// PostgresType returns the column's Postgres type.
func (c Column) PostgresType() string { return pgTypes[c.Kind] }

// DuckDBType returns the column's DuckDB type, as the pins view and the
// embedded stand-ins have it.
func (c Column) DuckDBType() string { return duckTypes[c.Kind] }

// required returns the column of a field that is never NULL.
func required[T any](name string, field func(*Cleaned) *T) Column {
	return Column{
		Name:  name,
		Kind:  kindOf[T](name),
		Value: func(c *Cleaned) any { return *field(c) },
		Field: func(c *Cleaned) any { return field(c) },
	}
}

// optional returns the column of a field that is NULL when nil.
func optional[T any](name string, field func(*Cleaned) **T) Column {
	return Column{
		Name:     name,
		Kind:     kindOf[T](name),
		Nullable: true,
		Value: func(c *Cleaned) any {
			if p := *field(c); p != nil {
				return *p
			}
			return nil
		},
		Field: func(c *Cleaned) any { return field(c) },
	}
}

// kindOf returns the Kind of a field of Go type T; it panics on a type the
// contract has no store types for, so a wrong entry fails at start.
func kindOf[T any](name string) Kind {
	var zero T
	switch any(zero).(type) {
	case int64:
		return Int64
	case int32:
		return Int32
	case string:
		return Text
	case []string:
		return TextList
	case time.Time:
		return Timestamp
	}
	panic(fmt.Sprintf("pin: column %s: no store type for Go type %T", name, zero))
}

// CuratedSQL returns a query over rows (a table function call such as
// read_parquet(…), or a parenthesised subquery with an alias) of curated
// files that gives their columns with the DuckDB types of DuckDBType:
// ingested_at, an instant (TIMESTAMP WITH TIME ZONE) in files written since
// the curated zone is UTC-adjusted and a TIMESTAMP of UTC wall time in
// older ones, becomes a TIMESTAMP of UTC wall time either way. epoch_us
// reads both as the same instant whatever the session's TimeZone, so a
// lake mixing old and new days answers alike. Other columns pass as they
// are.
func CuratedSQL(rows string) string {
	return "SELECT * REPLACE (make_timestamp(epoch_us(ingested_at)) AS ingested_at) FROM " + rows
}
