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

// Views are what queries read: pins (curated zone), pins_raw (raw zone)
// and pins_live (every landed pin, cleaned: the curated zone where it is
// current, cleaned raw records elsewhere).
const (
	viewCurated = "pins"
	viewRaw     = "pins_raw"
	viewLive    = "pins_live"
)

// viewsSQL returns the statements that point a connection's views at a
// snapshot's files. They are temporary views, private to the connection, so
// a query on another connection keeps the files it started with. An empty
// zone gets a view with the zone's columns and no rows.
func viewsSQL(s *Snapshot) string {
	curated := "CREATE OR REPLACE TEMP VIEW " + viewCurated + " AS " + emptySQL(curatedColumns)
	if len(s.Curated) > 0 {
		curated = "CREATE OR REPLACE TEMP VIEW " + viewCurated + " AS " + pin.CuratedSQL(readParquetSQL(s.Curated))
	}
	return curated + ";\n" + viewSQL(viewRaw, s.Raw, rawColumns) +
		";\n" + liveViewSQL(s)
}

func viewSQL(name string, files []string, cols []column) string {
	if len(files) == 0 {
		return "CREATE OR REPLACE TEMP VIEW " + name + " AS " + emptySQL(cols)
	}
	return "CREATE OR REPLACE TEMP VIEW " + name + " AS SELECT * FROM " + readParquetSQL(files)
}

// liveViewSQL returns the statement that points pins_live at a snapshot:
// the curated files of the days whose curated run is current, as they are
// (one row per unique_id and day already), and the cleaned copies of the
// other days' raw objects with the newest version of each unique_id per
// day (pin.NewestSQL), the dedupe the batch job does. Both sides name the
// columns of pins, in its order.
func liveViewSQL(s *Snapshot) string {
	cols := make([]string, len(curatedColumns))
	for i, c := range curatedColumns {
		cols[i] = quoteIdent(c.name)
	}
	list := strings.Join(cols, ", ")
	var parts []string
	if len(s.LiveCurated) > 0 {
		parts = append(parts, "SELECT "+list+" FROM ("+pin.CuratedSQL(readParquetSQL(s.LiveCurated))+") AS pinpipe_curated")
	}
	if len(s.LiveCleaned) > 0 {
		cleaned := "(" + pin.CuratedSQL(readParquetSQL(s.LiveCleaned)) + ") AS pinpipe_cleaned"
		parts = append(parts, "SELECT "+list+" FROM ("+pin.NewestSQL(cleaned, "dt, unique_id")+") AS pinpipe_newest")
	}
	if len(parts) == 0 {
		parts = append(parts, emptySQL(curatedColumns))
	}
	return "CREATE OR REPLACE TEMP VIEW " + viewLive + " AS " + strings.Join(parts, " UNION ALL ")
}

// emptySQL returns a query with the columns cols and no rows.
func emptySQL(cols []column) string {
	var b strings.Builder
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

// readParquetSQL returns a read_parquet call over files, with the day
// partition dt from their directories. An explicit file list, not a glob:
// a view reads exactly the snapshot's files whatever else the directory
// holds meanwhile.
func readParquetSQL(files []string) string {
	var b strings.Builder
	b.WriteString("read_parquet([")
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
