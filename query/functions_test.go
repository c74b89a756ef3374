package query

import (
	"database/sql"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestEveryDuckDBFunctionIsDecided fails when the bundled DuckDB has a
// function functions.txt neither allows nor denies: a DuckDB upgrade that
// adds one must decide it. Pragma functions are left out: only the PRAGMA
// statement calls them, and it is refused.
func TestEveryDuckDBFunctionIsDecided(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT DISTINCT function_name, function_type FROM duckdb_functions()
		WHERE database_name = 'system' AND function_type <> 'pragma' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var undecided []string
	aggregates := map[string]bool{}
	n := 0
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		n++
		kind := kindExpr
		if typ == "table" || typ == "table_macro" {
			kind = kindTable
		}
		if typ == "aggregate" {
			aggregates[name] = true
		}
		lower := strings.ToLower(name)
		if !builtinFunctions.allow[kind][lower] && builtinFunctions.deny[kind][lower] == "" {
			undecided = append(undecided, kind.String()+" "+name+" ("+typ+")")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 500 {
		t.Fatalf("duckdb_functions() listed only %d functions", n)
	}
	sort.Strings(undecided)
	if len(undecided) > 0 {
		t.Errorf("functions.txt decides nothing for %d of DuckDB's functions; add each to [expr]/[table] or, with a reason, to [deny expr]/[deny table]:\n%s",
			len(undecided), strings.Join(undecided, "\n"))
	}
	// list_aggregate and its aliases call any aggregate by its name, given
	// as a string the gate cannot judge: all aggregates must then be allowed.
	for name := range aggregates {
		if why := builtinFunctions.deny[kindExpr][name]; why != "" {
			for _, caller := range []string{"aggregate", "list_aggr", "list_aggregate", "array_aggr", "array_aggregate"} {
				if builtinFunctions.allow[kindExpr][caller] {
					t.Errorf("the aggregate %s is denied (%s) but %s, which calls aggregates by name, is allowed", name, why, caller)
				}
			}
		}
	}
}

func TestFunctionListRefusesMistakes(t *testing.T) {
	for _, text := range []string{
		"abs",
		"[expr]\nabs\n[deny expr]\nabs\tbecause",
		"[deny table]\nread_csv",
		"[tables]\nrange",
	} {
		if _, err := parseFunctions(text); err == nil {
			t.Errorf("%q parsed", text)
		}
	}
	l, err := parseFunctions("[expr]\nAbs\n[deny table]\nread_csv\treads files")
	if err != nil {
		t.Fatal(err)
	}
	if l.check("ABS", kindExpr) != nil || l.check("abs", kindTable) == nil {
		t.Error("abs is allowed in expressions only")
	}
	if err := l.check("read_csv", kindTable); err == nil || !strings.Contains(err.Error(), "reads files") {
		t.Errorf("read_csv: %v", err)
	}
}
