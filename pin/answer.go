package pin

import (
	"encoding/json"
	"strconv"
)

// Row limits of one SQL query (POST /query, pinpipe query).
const (
	QueryDefaultLimit = 1000
	QueryMaxLimit     = 100000
)

// QueryResult receives a query's answer as it is read: the columns once,
// then each row. Values are JSON-friendly: nil, string, bool, int64,
// float64, json.Number, and lists and maps of those. An error from either
// method stops the query, and the query returns it.
type QueryResult interface {
	Columns(names, types []string) error
	Row(values []any) error
}

// ResultColumn is one column of a query's answer: its name and DuckDB
// type name.
type ResultColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// QueryResponse is the JSON answer of POST /query, as clients decode it
// (decode with UseNumber to keep big integers exact).
type QueryResponse struct {
	Columns   []ResultColumn `json:"columns"`
	Rows      [][]any        `json:"rows"`
	RowCount  int            `json:"row_count"`
	Truncated bool           `json:"truncated"` // more rows follow this page
	Offset    int            `json:"offset"`    // rows of the answer before this page
	ElapsedMS float64        `json:"elapsed_ms"`
}

// CellText returns a value of an answer row as text, for CSV and tables:
// NULL as "", text as is, numbers and booleans as in JSON, lists and
// objects as JSON ("" for a value JSON cannot encode).
func CellText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
