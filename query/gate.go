package query

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"pinpipe/pin"
)

// gate judges a statement by DuckDB's own parse of it, not by its words: it
// asks DuckDB to serialize the statement's syntax tree (json_serialize_sql,
// which parses without binding or running anything) and walks the tree.
// A statement passes when every function it calls is on the allowlist
// (functions.txt) and every table it names is one of the views pins,
// pins_live and pins_raw or a CTE of its own. The lexer in statement.go
// stays in front as a first, cheaper fence.
type gate struct {
	mu  sync.Mutex
	c   *sql.Conn // private: never runs a user's statement
	fns *functionList
}

// views are the relations a query may name.
var views = map[string]bool{viewCurated: true, viewRaw: true, viewLive: true}

// errNotSelect marks a statement json_serialize_sql cannot serialize
// because it is not a SELECT (EXPLAIN, or a statement that changes
// something).
var errNotSelect = fmt.Errorf("query: not a SELECT")

// parse returns DuckDB's syntax tree of text: the statements' nodes.
// Returns errNotSelect for a statement that is not a SELECT, EINVALID with
// DuckDB's message for SQL it cannot parse, and an error for a failure of
// the engine itself.
func (g *gate) parse(ctx context.Context, text string) ([]any, error) {
	g.mu.Lock()
	var out string
	err := g.c.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", text).Scan(&out)
	g.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("query: parse the statement: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(out)))
	dec.UseNumber()
	var tree struct {
		Error      bool   `json:"error"`
		ErrorType  string `json:"error_type"`
		Message    string `json:"error_message"`
		Statements []struct {
			Node any `json:"node"`
		} `json:"statements"`
	}
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("query: read the parse of the statement: %w", err)
	}
	if tree.Error {
		if tree.ErrorType == "not implemented" {
			return nil, errNotSelect
		}
		return nil, pin.Errorf(pin.EINVALID, "%s", tree.Message)
	}
	if len(tree.Statements) != 1 {
		return nil, errMultiple
	}
	return []any{tree.Statements[0].Node}, nil
}

// check parses text and walks its tree; internal names functions the
// engine's own wrapper calls, allowed on top of the list. Returns
// EFORBIDDEN naming the first function or table a query may not use, and
// parse's errors.
func (g *gate) check(ctx context.Context, text string, internal ...string) error {
	tree, err := g.parse(ctx, text)
	if err != nil {
		return err
	}
	w := &walker{fns: g.fns, internal: map[string]bool{}}
	for _, n := range internal {
		w.internal[n] = true
	}
	return w.value(tree)
}

// walker walks a serialized syntax tree, keeping the CTE names in scope.
type walker struct {
	fns      *functionList
	internal map[string]bool
	scope    []string
}

// Expression classes of DuckDB's parsed expressions. A class not listed
// here is refused: the walk fails closed when DuckDB adds one.
var exprClasses = map[string]bool{
	"CONSTANT": true, "COLUMN_REF": true, "FUNCTION": true, "AGGREGATE": true, "WINDOW": true,
	"OPERATOR": true, "CAST": true, "COMPARISON": true, "CONJUNCTION": true, "CASE": true,
	"BETWEEN": true, "SUBQUERY": true, "STAR": true, "LAMBDA": true, "LAMBDA_REF": true,
	"COLLATE": true, "POSITIONAL_REFERENCE": true, "PARAMETER": true, "DEFAULT": true,
}

// showTables are the SHOW forms that list the views (SHOW TABLES, SHOW ALL
// TABLES); other SHOW forms reveal engine state.
var showTables = map[string]bool{`"tables"`: true, "__show_tables_expanded": true}

func (w *walker) value(v any) error {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := w.value(e); err != nil {
				return err
			}
		}
	case map[string]any:
		return w.object(x)
	}
	return nil
}

// fields walks every member of o but those named in skip.
func (w *walker) fields(o map[string]any, skip ...string) error {
outer:
	for k, v := range o {
		for _, s := range skip {
			if k == s {
				continue outer
			}
		}
		if err := w.value(v); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) object(o map[string]any) error {
	typ, _ := o["type"].(string)
	if class, ok := o["class"].(string); ok {
		if !exprClasses[class] {
			return refused(fmt.Sprintf("DuckDB parsed an expression of a kind pinpipe does not know (%s)", class))
		}
		if name, ok := o["function_name"].(string); ok {
			if err := w.call(name, kindExpr, o); err != nil {
				return err
			}
		}
		return w.fields(o)
	}
	if cm, ok := o["cte_map"].(map[string]any); ok {
		return w.node(o, cm)
	}
	if _, ok := o["sample"]; !ok {
		return w.fields(o) // modifiers, orders, types, values…
	}
	switch typ { // a table reference
	case "BASE_TABLE":
		return w.table(o)
	case "TABLE_FUNCTION":
		f, _ := o["function"].(map[string]any)
		name, _ := f["function_name"].(string)
		if err := w.call(name, kindTable, f); err != nil {
			return err
		}
		if err := w.fields(f); err != nil {
			return err
		}
		return w.fields(o, "function")
	case "SHOW_REF":
		name, _ := o["table_name"].(string)
		if q, ok := o["query"].(map[string]any); ok && name == "" {
			return w.object(q) // DESCRIBE, SUMMARIZE, SHOW of a query or a view
		}
		if showTables[name] && o["query"] == nil {
			return nil
		}
		return refused("SHOW shows engine state except for SHOW TABLES, SHOW ALL TABLES and DESCRIBE")
	case "JOIN", "SUBQUERY", "EXPRESSION_LIST", "PIVOT", "EMPTY":
		return w.fields(o)
	}
	return refused(fmt.Sprintf("DuckDB parsed a table reference of a kind pinpipe does not know (%s)", typ))
}

// node walks a query node: its CTEs first, each seeing those before it and
// itself (DuckDB refuses a circular one, and a recursive one reads itself),
// then the rest seeing them all.
func (w *walker) node(o, cm map[string]any) error {
	mark := len(w.scope)
	defer func() { w.scope = w.scope[:mark] }()
	entries, _ := cm["map"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		name, _ := entry["key"].(string)
		w.scope = append(w.scope, strings.ToLower(name))
		if err := w.value(entry["value"]); err != nil {
			return err
		}
	}
	return w.fields(o, "cte_map")
}

// table checks a table a query names.
func (w *walker) table(o map[string]any) error {
	name, _ := o["table_name"].(string)
	schema, _ := o["schema_name"].(string)
	catalog, _ := o["catalog_name"].(string)
	lower := strings.ToLower(name)
	if schema == "" && catalog == "" {
		if views[lower] {
			return w.fields(o)
		}
		for _, s := range w.scope {
			if s == lower {
				return w.fields(o)
			}
		}
	}
	full := name
	if schema != "" {
		full = schema + "." + full
	}
	if catalog != "" {
		full = catalog + "." + full
	}
	return refused(fmt.Sprintf("a query reads the views pins, pins_live and pins_raw and its own CTEs, not %q", full))
}

// widthPattern finds what makes printf and format pad to a width the
// query chooses: a number of five or more digits, '*' (width from an
// argument) or a nested '{' (fmt's width from an argument).
var widthPattern = regexp.MustCompile(`\d{5,}|\*|\{[^}]*\{`)

// call checks a call of the function name as kind; o is its expression.
func (w *walker) call(name string, kind functionKind, o map[string]any) error {
	lower := strings.ToLower(name)
	schema, _ := o["schema"].(string)
	catalog, _ := o["catalog"].(string)
	// DuckDB's parser itself names main for what it spells as a call
	// ([1, 2] is main.list_value); main.f is f, but for the guarded
	// builders, whose guards are temporary macros main.f would skip.
	if catalog != "" || schema != "" && (!strings.EqualFold(schema, "main") || guarded[lower]) {
		return refusedCall(kind, strings.Trim(catalog+"."+schema, ".")+"."+name, "call functions by their name alone")
	}
	if kind == kindExpr && w.internal[lower] {
		return nil
	}
	if err := w.fns.check(lower, kind); err != nil {
		return err
	}
	if kind == kindExpr && (lower == "printf" || lower == "format") {
		// A width in the format string builds a value of any size from a
		// few bytes of SQL; only a literal format with modest widths passes.
		args, _ := o["children"].([]any)
		var f string
		if len(args) > 0 {
			if c, _ := args[0].(map[string]any); c["class"] == "CONSTANT" {
				v, _ := c["value"].(map[string]any)
				f, _ = v["value"].(string)
			}
		}
		if f == "" || widthPattern.MatchString(f) {
			return refusedCall(kind, lower, "its format must be a string literal without '*' widths, nested '{' or widths of 10000 or more")
		}
	}
	return nil
}

// refused returns the EFORBIDDEN error for a statement the gate refuses.
func refused(why string) error {
	return pin.Errorf(pin.EFORBIDDEN,
		"The query was refused: %s. Queries may compute over the views pins, pins_live and pins_raw; see docs/sql-sandbox.md for what they may call.", why)
}

// refusedCall returns the EFORBIDDEN error for a call of a function a query
// may not make.
func refusedCall(kind functionKind, name, why string) error {
	return pin.Errorf(pin.EFORBIDDEN,
		"The query calls the %s %s, which queries may not call: %s. Queries may compute over the views pins, pins_live and pins_raw with the functions listed in query/functions.txt; to allow another, add it there after review (docs/sql-sandbox.md).",
		kind, name, why)
}
