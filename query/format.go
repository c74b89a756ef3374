package query

import (
	"encoding/json"
	"strconv"
)

// Column is one column of an answer: its name and DuckDB type name.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Response is the JSON answer of POST /query, as clients decode it
// (decode with UseNumber to keep big integers exact).
type Response struct {
	Columns   []Column `json:"columns"`
	Rows      [][]any  `json:"rows"`
	RowCount  int      `json:"row_count"`
	Truncated bool     `json:"truncated"`
	ElapsedMS float64  `json:"elapsed_ms"`
}

// CellText returns a value of an answer row as text, for CSV and tables:
// NULL as "", text as is, numbers and booleans as in JSON, lists and
// objects as JSON.
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
