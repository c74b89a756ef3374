package query

import (
	"strings"

	"pinpipe/pin"
)

// column is one column of a view: its name and DuckDB type.
type column struct{ name, typ string }

// curatedColumns are the pins view's columns: the cleaned record in
// contract order (pin.Schema), then the hive partition dt. They type the
// view while the curated zone is empty; once it has files, the files' own
// schema rules.
var curatedColumns = func() []column {
	var out []column
	for _, c := range pin.Schema {
		out = append(out, column{c.Name, c.DuckDBType()})
	}
	return append(out, column{"dt", "DATE"})
}()

// rawColumns are the pins_raw view's columns: batch.RawRecord as the
// landing writes it, then the hive partition dt.
var rawColumns = []column{
	{"topic", "VARCHAR"}, {"partition", "INTEGER"}, {"offset", "BIGINT"},
	{"timestamp", "TIMESTAMP WITH TIME ZONE"}, {"key", "VARCHAR"}, {"value", "VARCHAR"},
	{"dt", "DATE"},
}

// Views are what queries read: pins (curated zone) and pins_raw (raw zone).
const (
	viewCurated = "pins"
	viewRaw     = "pins_raw"
)

// viewsSQL returns the statements that point a connection's views at a
// snapshot's files. They are temporary views, private to the connection, so
// a query on another connection keeps the files it started with. An empty
// zone gets a view with the zone's columns and no rows.
func viewsSQL(s *Snapshot) string {
	return viewSQL(viewCurated, s.Curated, curatedColumns) + ";\n" + viewSQL(viewRaw, s.Raw, rawColumns)
}

func viewSQL(name string, files []string, cols []column) string {
	var b strings.Builder
	b.WriteString("CREATE OR REPLACE TEMP VIEW ")
	b.WriteString(name)
	b.WriteString(" AS ")
	if len(files) == 0 {
		b.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("NULL::" + c.typ + " AS " + quoteIdent(c.name))
		}
		b.WriteString(" WHERE false")
		return b.String()
	}
	// An explicit file list, not a glob: the view reads exactly the
	// snapshot's files whatever else the directory holds meanwhile.
	b.WriteString("SELECT * FROM read_parquet([")
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteString(f))
	}
	b.WriteString("], hive_partitioning = true, hive_types = {'dt': DATE})")
	return b.String()
}

// quoteString returns s as a SQL string literal.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteIdent returns s as a SQL quoted identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
