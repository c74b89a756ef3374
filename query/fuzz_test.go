package query

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// fuzzGate is one gate over a bare DuckDB, shared by all fuzz inputs.
var fuzzGate = sync.OnceValues(func() (*gate, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	c, err := db.Conn(context.Background())
	if err != nil {
		return nil, err
	}
	return &gate{c: c, fns: builtinFunctions}, nil
})

// FuzzStatement feeds the statement gate arbitrary text: the lexer and the
// syntax-tree check must not panic, the lexer must never accept a
// statement whose first word is a refused one, and what the tree check
// accepts must be a query in DuckDB's eyes too. Run it for a while with
//
//	go test -run XXX -fuzz FuzzStatement -fuzztime 20s ./query/
//
// The seed corpus is in testdata/fuzz/FuzzStatement.
func FuzzStatement(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT $a1$)$a1$", "WITH x AS (SELECT 1) SELECT * FROM x", "EXPLAIN ANALYZE (FORMAT json) SELECT 1",
		"SELECT * FROM enable_logging(level='info')", "COPY pins TO 'x'", "SELECT 1; SELECT 2", "/* c */ FROM pins",
		"DESCRIBE pins", "SELECT list_transform([1], x -> x + 1)", "SELECT 1\x00", "SELECT a$b$ FROM t",
	} {
		f.Add(s)
	}
	g, err := fuzzGate()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		st, err := parseStatement(text)
		if err != nil {
			return
		}
		first := st.Words[st.explainedIndex()]
		if !readOnlyFirstWords[first] || refusals[first] != "" {
			t.Fatalf("%q was accepted, starting with %s", text, first)
		}
		if strings.IndexByte(st.Text, 0) >= 0 || !strings.Contains(text, st.Text) {
			t.Fatalf("%q was accepted as %q", text, st.Text)
		}
		checked := st.Text
		if st.Words[0] == "EXPLAIN" {
			checked = st.explained()
		}
		if g.check(context.Background(), checked) != nil {
			return
		}
		// Accepted: DuckDB must see one query (it is prepared, never run).
		g.mu.Lock()
		defer g.mu.Unlock()
		err = g.c.Raw(func(dc any) error {
			s, err := dc.(*duckdb.Conn).Prepare(checked)
			if err != nil {
				return nil // it does not bind over a bare DuckDB: nothing to judge
			}
			defer s.Close()
			typ, err := s.(*duckdb.Stmt).StatementType()
			if err == nil && typ != duckdb.STATEMENT_TYPE_SELECT {
				t.Fatalf("the gate accepted %q, which DuckDB prepares as statement type %d", checked, typ)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
