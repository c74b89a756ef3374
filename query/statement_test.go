package query

import (
	"strings"
	"testing"

	"pinpipe/lake"
	"pinpipe/pin"
)

func TestParseStatementCountsStatementsAsDuckDBDoes(t *testing.T) {
	cases := []struct {
		sql  string
		code string // "" when accepted
		text string // the statement kept, when accepted
	}{
		{"SELECT 1", "", "SELECT 1"},
		{"SELECT 1;", "", "SELECT 1"},
		{"  SELECT 1 ;  -- done\n", "", "SELECT 1"},
		{"SELECT ';' AS a", "", "SELECT ';' AS a"},
		{"SELECT 'it''s; fine'", "", "SELECT 'it''s; fine'"},
		{`SELECT "a;b" FROM pins`, "", `SELECT "a;b" FROM pins`},
		{`SELECT E'\'; COPY'`, "", `SELECT E'\'; COPY'`},
		{"SELECT $$;$$, $t$ ; $t$", "", "SELECT $$;$$, $t$ ; $t$"},
		{"SELECT 1 /* ; /* nested ; */ ; */", "", "SELECT 1 /* ; /* nested ; */ ; */"},
		{"SELECT 1 -- ; COPY x TO 'y'", "", "SELECT 1 -- ; COPY x TO 'y'"},
		{"/* lead */ with x as (select 1) select * from x", "", "with x as (select 1) select * from x"},
		{"SELECT 1; SELECT 2", pin.EFORBIDDEN, ""},
		{"SELECT 1;;COPY pins TO 'x'", pin.EFORBIDDEN, ""},
		{"", pin.EINVALID, ""},
		{" ;; -- nothing", pin.EINVALID, ""},
		{"copy pins to 'x'", pin.EFORBIDDEN, ""},
		{"EXPLAIN COPY pins TO 'x'", pin.EFORBIDDEN, ""},
		{"EXPLAIN ANALYZE (FORMAT json) INSERT INTO t VALUES (1)", pin.EFORBIDDEN, ""},
		{"EXPLAIN EXPLAIN SELECT 1", pin.EFORBIDDEN, ""},
		{"EXPLAIN", pin.EINVALID, ""},
		{"pragma version", pin.EFORBIDDEN, ""},
		{"GRANT ALL", pin.EINVALID, ""},
		{"SELECT $a1$;$a1$", "", "SELECT $a1$;$a1$"},
		{"SELECT $a1$ ; $a1$; COPY pins TO 'x'", pin.EFORBIDDEN, ""},
		{"SELECT $_b2$;$_b2$", "", "SELECT $_b2$;$_b2$"},
		{"SELECT $1", "", "SELECT $1"},
		{"SELECT a$b$ FROM t; SELECT 2", pin.EFORBIDDEN, ""}, // a$b$ is an identifier, not a quote
		{"SELECT 1\x00; COPY pins TO 'x'", pin.EINVALID, ""},
		{"\x00", pin.EINVALID, ""},
		{"\xff", pin.EINVALID, ""}, // upper-cased, the word grows: found by FuzzStatement
		{"gr\xffant all", pin.EINVALID, ""},
	}
	for _, c := range cases {
		st, err := parseStatement(c.sql)
		if code := pin.ErrorCode(err); code != c.code {
			t.Errorf("%q: code %q (%v), want %q", c.sql, code, err, c.code)
			continue
		}
		if err == nil && st.Text != c.text {
			t.Errorf("%q: statement %q, want %q", c.sql, st.Text, c.text)
		}
	}
}

func TestParseStatementRefusesNULBytesSayingSo(t *testing.T) {
	_, err := parseStatement("SELECT 1\x00 FROM pins")
	if pin.ErrorCode(err) != pin.EINVALID || !strings.Contains(pin.ErrorMessage(err), "NUL byte (at byte 8)") {
		t.Fatalf("%v", err)
	}
}

func TestExplainedIsTheStatementAfterExplainAndItsOptions(t *testing.T) {
	for sql, want := range map[string]string{
		"EXPLAIN SELECT 1":                               "SELECT 1",
		"explain analyze select 1":                       "select 1",
		"EXPLAIN (FORMAT json) SELECT 1":                 "SELECT 1",
		"EXPLAIN ANALYZE (FORMAT json, COSTS) FROM pins": "FROM pins",
		"EXPLAIN (SELECT 1) UNION ALL (SELECT 2)":        "(SELECT 1) UNION ALL (SELECT 2)",
		"SELECT 1": "",
		"EXPLAIN /* c */ WITH x AS (SELECT 1) FROM x":     "WITH x AS (SELECT 1) FROM x",
		"EXPLAIN ANALYZE\n  SELECT category FROM pins;  ": "SELECT category FROM pins",
	} {
		st, err := parseStatement(sql)
		if err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		if got := st.explained(); got != want {
			t.Errorf("%q explains %q, want %q", sql, got, want)
		}
	}
}

func TestChooseReadsEachCuratedDayAsItsNewestRun(t *testing.T) {
	objs := []lake.Object{
		{Key: "curated/dt=2026-11-20/part-20261121T080000Z-0000.parquet", ETag: "a"},
		{Key: "curated/dt=2026-11-20/part-20261121T080000Z-0001.parquet", ETag: "b"},
		{Key: "curated/dt=2026-11-20/part-20261122T080000Z-0000.parquet", ETag: "c"},
		{Key: "curated/dt=2026-11-21/part-20261122T080000Z-0000.parquet", ETag: "d"},
		{Key: "curated/dt=2026-11-22/legacy.parquet", ETag: "e"},
		{Key: "curated/dt=2026-11-22/other.parquet", ETag: "f"},
		{Key: "curated/dt=2026-11-22/_SUCCESS", ETag: "g"},
		{Key: "curated/dt=bad/part-1-0.parquet", ETag: "h"},
		{Key: "curated/dt=2026-11-23/sub/part-1-0.parquet", ETag: "i"},
		{Key: "raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet", ETag: `"j"`},
		{Key: "rejected/dt=2026-11-20/x.parquet", ETag: "k"},
	}
	var got []string
	for _, o := range choose(objs) {
		got = append(got, o.Rel)
	}
	want := []string{
		"curated/dt=2026-11-20/part-20261122T080000Z-0000~c.parquet",
		"curated/dt=2026-11-21/part-20261122T080000Z-0000~d.parquet",
		"curated/dt=2026-11-22/legacy~e.parquet",
		"curated/dt=2026-11-22/other~f.parquet",
		"raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009~j.parquet",
	}
	if len(got) != len(want) {
		t.Fatalf("chose\n %q\nwant\n %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chose\n %q\nwant\n %q", got, want)
		}
		if o, ok := parseLocal(got[i], 0); !ok || o.Rel != got[i] {
			t.Errorf("the local name %q does not read back", got[i])
		}
	}
}
