package query

import (
	"slices"
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
// landing writes it, the hive partition dt, then the lineage under the
// names objects landed before had (partition, offset, timestamp), so
// queries written for them still run.
var rawColumns = append(rawFileColumns[:len(rawFileColumns):len(rawFileColumns)],
	column{"dt", "DATE"}, column{"partition", "INTEGER"}, column{"offset", "BIGINT"},
	column{"timestamp", "TIMESTAMP WITH TIME ZONE"})

// rawFileColumns are the columns of a raw object as the landing writes it.
var rawFileColumns = []column{
	{"topic", "VARCHAR"}, {"kafka_partition", "INTEGER"}, {"kafka_offset", "BIGINT"},
	{"kafka_timestamp", "TIMESTAMP WITH TIME ZONE"}, {"key", "VARCHAR"}, {"value", "VARCHAR"},
}

// rawViewSQL returns the query of pins_raw over files. When every file
// has exactly the columns the landing writes now (current: rawFileNames),
// it reads them as they are, without matching columns by name across
// files, and names the lineage columns twice. Otherwise the files may have
// either column names: every file's columns by name (a file without a
// column gives NULLs), each lineage column from whichever name the file
// has, under both names. That union costs a query about what it reads (a
// count over it read the rows where the plain read answers from the
// Parquet footers), so it is only used when needed.
func rawViewSQL(files []string, current bool) string {
	if current {
		return `SELECT topic, kafka_partition, kafka_offset, kafka_timestamp, key, value, dt, kafka_partition AS "partition", ` +
			`kafka_offset AS "offset", kafka_timestamp AS "timestamp" FROM read_parquet(` + fileListSQL(files) + ", " + hiveOptions + ")"
	}
	// All ten names, typed, so a snapshot of only new or only old files
	// still has each.
	all := append(rawFileColumns[:len(rawFileColumns):len(rawFileColumns)],
		column{"partition", "INTEGER"}, column{"offset", "BIGINT"}, column{"timestamp", "TIMESTAMP WITH TIME ZONE"},
		column{"dt", "DATE"})
	src := "(" + emptySQL(all) + " UNION ALL BY NAME SELECT * FROM " + readParquetSQL(files) + ") AS pinpipe_raw"
	p, o, ts := `coalesce(kafka_partition, "partition")`, `coalesce(kafka_offset, "offset")`, `coalesce(kafka_timestamp, "timestamp")`
	return "SELECT topic, " + p + " AS kafka_partition, " + o + " AS kafka_offset, " + ts + " AS kafka_timestamp, key, value, dt, " +
		p + ` AS "partition", ` + o + ` AS "offset", ` + ts + ` AS "timestamp" FROM ` + src
}

// rawFileNames are rawFileColumns' names in sorted order, as
// rawLayoutSQL lists each file's columns.
var rawFileNames = func() []string {
	var out []string
	for _, c := range rawFileColumns {
		out = append(out, c.name)
	}
	slices.Sort(out)
	return out
}()

// rawLayoutSQL returns the query that answers, for each of files, the
// sorted names of its columns.
func rawLayoutSQL(files []string) string {
	return "SELECT file_name, list_sort(list(name)) FROM parquet_schema(" + fileListSQL(files) +
		") WHERE coalesce(num_children, 0) = 0 GROUP BY file_name"
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
// snapshot's files; rawCurrent says every raw file has exactly the current
// columns (rawFileNames). They are temporary views, private to the connection, so
// a query on another connection keeps the files it started with. An empty
// zone gets a view with the zone's columns and no rows.
func viewsSQL(s *Snapshot, rawCurrent bool) string {
	curated := "CREATE OR REPLACE TEMP VIEW " + viewCurated + " AS " + emptySQL(curatedColumns)
	if len(s.Curated) > 0 {
		curated = "CREATE OR REPLACE TEMP VIEW " + viewCurated + " AS " + pin.CuratedSQL(readParquetSQL(s.Curated))
	}
	raw := "CREATE OR REPLACE TEMP VIEW " + viewRaw + " AS " + emptySQL(rawColumns)
	if len(s.Raw) > 0 {
		raw = "CREATE OR REPLACE TEMP VIEW " + viewRaw + " AS " + rawViewSQL(s.Raw, rawCurrent)
	}
	return curated + ";\n" + raw +
		";\n" + liveViewSQL(s)
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
	return "read_parquet(" + fileListSQL(files) + ", " + hiveOptions + ", union_by_name = true)"
}

// hiveOptions are read_parquet's options for the day partition dt, taken
// from each file's directory.
const hiveOptions = "hive_partitioning = true, hive_types = {'dt': DATE}"

// fileListSQL returns files as a SQL list of string literals.
func fileListSQL(files []string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteString(f))
	}
	b.WriteString("]")
	return b.String()
}

// quoteString returns s as a SQL string literal.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteIdent returns s as a SQL quoted identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
