package pipeline_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/parquet-go/parquet-go"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/batch/standin"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/stream"
)

// TestStoresMatchTheContract is the one drift test: every store's cleaned
// columns — names, types and nullability, and the order of the curated files and the view —
// must be pin.Schema's. The Postgres migrations are files, so they are
// applied and read back; the other stores make their tables from pin.Schema,
// and are read back all the same.
func TestStoresMatchTheContract(t *testing.T) {
	ctx := context.Background()
	type col struct{ name, typ, null string }
	want := func(typ func(pin.Column) string, dt string, nullability bool) []col {
		var out []col
		for _, c := range pin.Schema {
			n := ""
			if nullability {
				n = map[bool]string{true: "YES", false: "NO"}[c.Nullable]
			}
			out = append(out, col{c.Name, typ(c), n})
		}
		if dt != "" {
			n := ""
			if nullability {
				n = "NO"
			}
			out = append(out, col{"dt", dt, n})
		}
		return out
	}
	diff := func(t *testing.T, what string, got, want []col) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s differs from the contract:\n got %v\nwant %v", what, got, want)
		}
	}
	// Tables compare by name: a migration (or a column added to an earlier
	// table) puts a new column after dt, and every statement names its
	// columns. The curated files and the view keep the contract's order.
	byName := func(cols []col) []col {
		out := slices.Clone(cols)
		slices.SortFunc(out, func(a, b col) int { return strings.Compare(a.name, b.name) })
		return out
	}
	diffTable := func(t *testing.T, what string, got, want []col) {
		t.Helper()
		if got, want := byName(got), byName(want); !slices.Equal(got, want) {
			t.Errorf("%s differs from the contract:\n got %v\nwant %v", what, got, want)
		}
	}
	duckColumns := func(t *testing.T, path, schema, table string, nullability bool) []col {
		t.Helper()
		db, err := sql.Open("duckdb", path+"?access_mode=read_only")
		testenv.Must(t, err)
		defer db.Close()
		rows, err := db.Query(`SELECT column_name, data_type, is_nullable FROM information_schema.columns
			WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`, schema, table)
		testenv.Must(t, err)
		defer rows.Close()
		var out []col
		for rows.Next() {
			var c col
			testenv.Must(t, rows.Scan(&c.name, &c.typ, &c.null))
			if !nullability {
				c.null = ""
			}
			out = append(out, c)
		}
		testenv.Must(t, rows.Err())
		return out
	}

	t.Run("postgres migrations", func(t *testing.T) {
		// Postgres types as the embedded stand-in (DuckDB) and Postgres name them.
		duckName := map[string]string{"BIGINT": "BIGINT", "INTEGER": "INTEGER", "TEXT": "VARCHAR", "TEXT[]": "VARCHAR[]", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "DATE": "DATE"}
		pgName := map[string]string{"BIGINT": "bigint", "INTEGER": "integer", "TEXT": "text", "TEXT[]": "text[]", "TIMESTAMPTZ": "timestamp with time zone", "DATE": "date"}
		dir := t.TempDir()
		d, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
		testenv.Must(t, err)
		testenv.Must(t, d.Check(ctx))
		testenv.Must(t, d.Close())
		diffTable(t, "the embedded stream store's pinterest.pins", duckColumns(t, filepath.Join(dir, "stream.duckdb"), "pinterest", "pins", true),
			want(func(c pin.Column) string { return duckName[c.PostgresType()] }, duckName["DATE"], true))

		url := testenv.Postgres(t)
		if url == "" {
			return
		}
		p, err := stream.OpenPostgres(ctx, url, testenv.Log(t))
		testenv.Must(t, err)
		defer p.Close()
		testenv.Must(t, p.Check(ctx))
		db, err := sql.Open("pgx", url)
		testenv.Must(t, err)
		defer db.Close()
		rows, err := db.Query(`SELECT a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END
			FROM pg_attribute a WHERE a.attrelid = 'pinterest.pins'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`)
		testenv.Must(t, err)
		defer rows.Close()
		var got []col
		for rows.Next() {
			var c col
			testenv.Must(t, rows.Scan(&c.name, &c.typ, &c.null))
			got = append(got, c)
		}
		testenv.Must(t, rows.Err())
		diffTable(t, "Postgres's pinterest.pins", got, want(func(c pin.Column) string { return pgName[c.PostgresType()] }, pgName["DATE"], true))
	})

	t.Run("serving store", func(t *testing.T) {
		if hosts, ks := testenv.Cassandra(t); hosts != nil {
			s, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
			testenv.Must(t, err)
			defer s.Close()
			cluster := gocql.NewCluster(hosts...)
			cluster.Timeout = 10 * time.Second
			session, err := cluster.CreateSession()
			testenv.Must(t, err)
			defer session.Close()
			wantCQL := want(pin.Column.CQLType, "date", false)
			for _, table := range []string{"pins", "pins_by_category"} {
				iter := session.Query(`SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`, ks, table).Iter()
				var got []col
				var c col
				for iter.Scan(&c.name, &c.typ) {
					got = append(got, c)
				}
				testenv.Must(t, iter.Close())
				diffTable(t, "Cassandra's "+table, got, wantCQL)
			}
			return
		}
		dir := t.TempDir()
		s, err := standin.Open(ctx, dir, 0, nil)
		testenv.Must(t, err)
		testenv.Must(t, s.Close())
		for _, table := range []string{"pins", "pins_by_category"} {
			diffTable(t, "the embedded serving store's "+table, duckColumns(t, filepath.Join(dir, "serving.duckdb"), "main", table, false),
				want(pin.Column.DuckDBType, "DATE", false))
		}
	})

	t.Run("curated zone and pins view", func(t *testing.T) {
		c, err := pin.CleanRaw([]byte(`{"index": 1, "unique_id": "0B5A4C6E-8F4E-4A39-9F0E-1D2C3B4A5F60", "category": "art"}`),
			pin.Lineage{IngestedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)})
		testenv.Must(t, err)
		var buf bytes.Buffer
		testenv.Must(t, batch.WriteCurated(&buf, []pin.Cleaned{c}))
		f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		testenv.Must(t, err)
		var got []col
		for _, field := range f.Schema().Fields() {
			got = append(got, col{field.Name(), parquetType(field), map[bool]string{true: "YES", false: "NO"}[field.Optional()]})
		}
		diff(t, "the curated Parquet schema", got, want(pin.Column.ParquetType, "", true))

		// The pins view reads the files with the hive partition dt.
		dir := filepath.Join(t.TempDir(), "curated", "dt=2024-05-01")
		testenv.Must(t, os.MkdirAll(dir, 0o755))
		testenv.Must(t, os.WriteFile(filepath.Join(dir, "part.parquet"), buf.Bytes(), 0o644))
		db, err := sql.Open("duckdb", "")
		testenv.Must(t, err)
		defer db.Close()
		rows, err := db.Query("DESCRIBE " + pin.CuratedSQL(fmt.Sprintf(`read_parquet('%s', hive_partitioning = true, hive_types = {'dt': DATE})`,
			filepath.ToSlash(filepath.Join(dir, "*.parquet")))))
		testenv.Must(t, err)
		defer rows.Close()
		got = nil
		for rows.Next() {
			var c col
			var key, def, extra sql.NullString
			testenv.Must(t, rows.Scan(&c.name, &c.typ, &c.null, &key, &def, &extra))
			c.null = ""
			got = append(got, c)
		}
		testenv.Must(t, rows.Err())
		diff(t, "the pins view over the curated zone", got, want(pin.Column.DuckDBType, "DATE", false))
	})
}

// parquetType names a curated field's type as pin.Column.ParquetType does:
// its logical type, else its physical type; a list as LIST<element>.
func parquetType(f parquet.Field) string {
	lt := f.Type().LogicalType()
	switch {
	case lt == nil:
		return f.Type().Kind().String()
	case lt.String() == "LIST":
		return "LIST<" + parquetType(f.Fields()[0].Fields()[0]) + ">"
	}
	return lt.String()
}
