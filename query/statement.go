package query

import (
	"strings"
	"unicode"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"pinpipe/pin"
)

// readOnlyFirstWords are the words a read-only statement may start with.
// DuckDB's own statement type is checked as well (see Engine.prepare); this list
// catches what DuckDB rewrites before it classifies (PRAGMA becomes a SELECT)
// and gives a refusal its reason before anything is bound.
var readOnlyFirstWords = map[string]bool{
	"SELECT": true, "WITH": true, "FROM": true, "VALUES": true, "TABLE": true,
	"DESCRIBE": true, "SHOW": true, "SUMMARIZE": true, "EXPLAIN": true,
	"PIVOT": true, "UNPIVOT": true, "(": true,
}

// refusals say why a statement is not read-only, by its first word.
var refusals = map[string]string{
	"COPY":       "COPY writes files",
	"EXPORT":     "EXPORT writes files",
	"IMPORT":     "IMPORT loads files into the catalog",
	"ATTACH":     "ATTACH opens another database",
	"DETACH":     "DETACH closes a database",
	"USE":        "USE switches the database",
	"INSTALL":    "INSTALL downloads extensions",
	"FORCE":      "INSTALL downloads extensions",
	"LOAD":       "LOAD loads extensions",
	"UPDATE":     "UPDATE changes data",
	"SET":        "SET changes engine settings",
	"RESET":      "RESET changes engine settings",
	"PRAGMA":     "PRAGMA changes or reveals engine settings",
	"CALL":       "CALL runs procedures",
	"CREATE":     "CREATE changes the catalog",
	"DROP":       "DROP changes the catalog",
	"ALTER":      "ALTER changes the catalog",
	"COMMENT":    "COMMENT changes the catalog",
	"INSERT":     "INSERT changes data",
	"DELETE":     "DELETE changes data",
	"TRUNCATE":   "TRUNCATE changes data",
	"MERGE":      "MERGE changes data",
	"UPSERT":     "UPSERT changes data",
	"BEGIN":      "transactions are for changing data",
	"START":      "transactions are for changing data",
	"COMMIT":     "transactions are for changing data",
	"END":        "transactions are for changing data",
	"ROLLBACK":   "transactions are for changing data",
	"ABORT":      "transactions are for changing data",
	"CHECKPOINT": "CHECKPOINT maintains the database",
	"VACUUM":     "VACUUM maintains the database",
	"ANALYZE":    "ANALYZE maintains the database",
	"PREPARE":    "PREPARE keeps state between requests",
	"EXECUTE":    "EXECUTE runs prepared statements",
	"DEALLOCATE": "DEALLOCATE changes prepared statements",
}

// typeRefusals say why a statement is not read-only, by DuckDB's statement
// type, for statements that start with an allowed word (WITH … INSERT).
var typeRefusals = map[duckdb.StmtType]string{
	duckdb.STATEMENT_TYPE_INSERT:       "INSERT changes data",
	duckdb.STATEMENT_TYPE_UPDATE:       "UPDATE changes data",
	duckdb.STATEMENT_TYPE_DELETE:       "DELETE changes data",
	duckdb.STATEMENT_TYPE_COPY:         "COPY writes files",
	duckdb.STATEMENT_TYPE_EXPORT:       "EXPORT writes files",
	duckdb.STATEMENT_TYPE_CREATE:       "CREATE changes the catalog",
	duckdb.STATEMENT_TYPE_CREATE_FUNC:  "CREATE changes the catalog",
	duckdb.STATEMENT_TYPE_DROP:         "DROP changes the catalog",
	duckdb.STATEMENT_TYPE_ALTER:        "ALTER changes the catalog",
	duckdb.STATEMENT_TYPE_ATTACH:       "ATTACH opens another database",
	duckdb.STATEMENT_TYPE_DETACH:       "DETACH closes a database",
	duckdb.STATEMENT_TYPE_LOAD:         "LOAD loads extensions",
	duckdb.STATEMENT_TYPE_SET:          "SET changes engine settings",
	duckdb.STATEMENT_TYPE_VARIABLE_SET: "SET changes engine settings",
	duckdb.STATEMENT_TYPE_PRAGMA:       "PRAGMA changes or reveals engine settings",
	duckdb.STATEMENT_TYPE_CALL:         "CALL runs procedures",
	duckdb.STATEMENT_TYPE_TRANSACTION:  "transactions are for changing data",
	duckdb.STATEMENT_TYPE_PREPARE:      "PREPARE keeps state between requests",
	duckdb.STATEMENT_TYPE_EXECUTE:      "EXECUTE runs prepared statements",
	duckdb.STATEMENT_TYPE_VACUUM:       "VACUUM maintains the database",
	duckdb.STATEMENT_TYPE_ANALYZE:      "ANALYZE maintains the database",
	duckdb.STATEMENT_TYPE_EXTENSION:    "extension statements are not read-only",
	duckdb.STATEMENT_TYPE_MULTI:        "it is more than one statement",
}

// forbidden returns the EFORBIDDEN error for a statement refused because of
// why ("COPY writes files").
func forbidden(why string) error {
	return pin.Errorf(pin.EFORBIDDEN,
		"Only read-only queries are allowed: %s. Send one SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN statement over the views pins, pins_live and pins_raw.", why)
}

var errMultiple = pin.Errorf(pin.EFORBIDDEN,
	"Only one statement per request is allowed: remove the extra statements after the first ';' and send them one at a time.")

// statement is the one statement of a request, as the lexer saw it.
type statement struct {
	Text   string   // the statement without its trailing ';'
	Words  []string // its first tokens: words upper-cased, punctuation as is, quoted text as "'"
	Starts []int    // each of Words' byte offset in Text
}

// maxWords is how many leading tokens a statement keeps: enough for
// EXPLAIN ANALYZE (options…) and the first word of what it explains.
const maxWords = 64

// parseStatement splits sql into statements the way DuckDB does (quotes,
// comments and dollar-quoted strings respected) and returns the only one.
// Returns EINVALID when the text holds a NUL byte, there is no statement or
// it starts with a word no statement starts with, and EFORBIDDEN when there are several or the
// first word is that of a statement that is not read-only.
// EXPLAIN [ANALYZE] [(options)] is judged by the statement it explains.
func parseStatement(sql string) (statement, error) {
	if i := strings.IndexByte(sql, 0); i >= 0 {
		// DuckDB reads the text as a C string: it would see only what comes
		// before the NUL, and the checks here would judge the rest.
		return statement{}, pin.Errorf(pin.EINVALID,
			"The query contains a NUL byte (at byte %d); SQL text cannot hold one. Remove it, or write chr(0) where a value needs it.", i)
	}
	stmts := split(sql)
	switch {
	case len(stmts) == 0:
		return statement{}, pin.Errorf(pin.EINVALID, "The query is empty: send one SQL statement, such as SELECT count(*) FROM pins.")
	case len(stmts) > 1:
		return statement{}, errMultiple
	}
	st := stmts[0]
	i := st.explainedIndex()
	if i < 0 {
		return statement{}, pin.Errorf(pin.EINVALID, "EXPLAIN needs one statement to explain, such as EXPLAIN SELECT count(*) FROM pins.")
	}
	first := st.Words[i]
	if i > 0 && first == "EXPLAIN" {
		return statement{}, forbidden("EXPLAIN explains one statement")
	}
	if !readOnlyFirstWords[first] {
		if why, ok := refusals[first]; ok {
			return statement{}, forbidden(why)
		}
		return statement{}, pin.Errorf(pin.EINVALID,
			"A query starts with SELECT, WITH, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN, not %s.", st.word(i))
	}
	return st, nil
}

// word returns Words[i] as written: upper-casing can change a word's
// length (invalid UTF-8 becomes U+FFFD), so it is read again from Text.
func (st statement) word(i int) string {
	start := st.Starts[i]
	end := start + 1
	if isWordByte(st.Text[start]) {
		for end < len(st.Text) && (isWordByte(st.Text[end]) || st.Text[end] == '$') {
			end++
		}
	}
	return st.Text[start:end]
}

// explainedIndex returns the index in Words of the first word of the
// statement that st explains: 0 when st is not an EXPLAIN, past EXPLAIN,
// ANALYZE and a parenthesised options list otherwise. Returns -1 when an
// EXPLAIN has nothing after it.
func (st statement) explainedIndex() int {
	w := st.Words
	if w[0] != "EXPLAIN" {
		return 0
	}
	i := 1
	if i < len(w) && (w[i] == "ANALYZE" || w[i] == "ANALYSE") {
		i++
	}
	if i < len(w) && w[i] == "(" && i+1 < len(w) && w[i+1] != "SELECT" && w[i+1] != "WITH" && w[i+1] != "FROM" {
		depth := 0
		for ; i < len(w); i++ {
			if w[i] == "(" {
				depth++
			} else if w[i] == ")" {
				if depth--; depth == 0 {
					i++
					break
				}
			}
		}
	}
	if i >= len(w) {
		return -1
	}
	return i
}

// explained returns the text of the statement an EXPLAIN explains, or ""
// when st is not an EXPLAIN.
func (st statement) explained() string {
	i := st.explainedIndex()
	if i <= 0 {
		return ""
	}
	return st.Text[st.Starts[i]:]
}

// lexSpace is the whitespace lexFull skips. A statement's text is trimmed of
// exactly these bytes: trimming Unicode spaces too (U+2028) would cut a
// token the lexer kept as a word.
const lexSpace = " \t\n\r\f\v"

// split returns the statements of sql that have at least one token.
func split(sql string) []statement {
	var out []statement
	var cur *statement
	start := 0
	lexFull(sql, func(word string, at int) {
		if word == ";" {
			if cur != nil {
				cur.Text = strings.TrimRight(sql[start:at], lexSpace)
				out = append(out, *cur)
				cur = nil
			}
			return
		}
		if cur == nil {
			cur, start = &statement{}, at
		}
		if len(cur.Words) < maxWords {
			cur.Words = append(cur.Words, word)
			cur.Starts = append(cur.Starts, at-start)
		}
	})
	if cur != nil {
		cur.Text = strings.TrimRight(sql[start:], lexSpace)
		out = append(out, *cur)
	}
	return out
}

// lexFull walks text, skipping whitespace and comments, and calls f with
// each token and its byte offset: a word upper-cased, a quoted string or
// identifier as "'", any other character (';' included) as itself. An
// unterminated quote or comment runs to the end of the text, where DuckDB
// reports it.
func lexFull(text string, f func(word string, at int)) {
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case strings.IndexByte(lexSpace, c) >= 0:
			i++
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(text)
			}
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			i = skipBlockComment(text, i)
		case c == '\'' || c == '"':
			f("'", i)
			i = skipQuoted(text, i+1, c, false)
		case (c == 'e' || c == 'E') && i+1 < len(text) && text[i+1] == '\'':
			f("'", i)
			i = skipQuoted(text, i+2, '\'', true)
		case c == '$' && isDollarQuote(text, i):
			f("'", i)
			i = skipDollar(text, i)
		case isWordByte(c):
			j := i
			for j < len(text) && (isWordByte(text[j]) || text[j] == '$') {
				j++
			}
			f(strings.ToUpper(text[i:j]), i)
			i = j
		default:
			f(string(c), i)
			i++
		}
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))
}

// skipBlockComment returns the offset after the block comment at i;
// comments nest, as in DuckDB's (PostgreSQL-derived) parser.
func skipBlockComment(text string, i int) int {
	depth := 0
	for i < len(text) {
		switch {
		case strings.HasPrefix(text[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(text[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipQuoted returns the offset after the quote q that closes a string
// starting at i; a doubled quote is part of the string, and so is a
// backslash-escaped one when backslash is set (E'…' strings).
func skipQuoted(text string, i int, q byte, backslash bool) int {
	for i < len(text) {
		switch text[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case q:
			if i+1 < len(text) && text[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return i
}

// isDollarQuote reports whether the '$' at i opens a dollar-quoted string
// ($$…$$ or $tag$…$tag$) rather than a parameter such as $1. A tag is
// spelled like an identifier, as in DuckDB's (PostgreSQL's) scanner: a
// letter, '_' or non-ASCII byte, then any of those or digits ($a1$).
func isDollarQuote(text string, i int) bool {
	j := i + 1
	if j < len(text) && text[j] >= '0' && text[j] <= '9' {
		return false
	}
	for j < len(text) && isTagByte(text[j]) {
		j++
	}
	return j < len(text) && text[j] == '$'
}

func isTagByte(c byte) bool {
	return c == '_' || c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipDollar returns the offset after the dollar-quoted string at i.
func skipDollar(text string, i int) int {
	j := strings.IndexByte(text[i+1:], '$') + i + 1
	tag := text[i : j+1]
	if k := strings.Index(text[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(text)
}
