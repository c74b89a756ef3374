package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"pinpipe/pin"
)

// exportFormat is one file format of GET/POST /query/export.
type exportFormat struct {
	ext, contentType string
	open             func(w io.Writer) exportEncoder
}

// exportFormats are the formats an export can be written in, by name.
var exportFormats = map[string]exportFormat{
	"csv":     {"csv", "text/csv; charset=utf-8", func(w io.Writer) exportEncoder { return &csvExport{w: w} }},
	"jsonl":   {"jsonl", "application/x-ndjson", func(w io.Writer) exportEncoder { return &jsonlExport{w: w} }},
	"parquet": {"parquet", "application/vnd.apache.parquet", func(w io.Writer) exportEncoder { return &parquetExport{w: w} }},
}

// exportEncoder writes a query's whole answer in one format; close ends
// the file (a Parquet footer) and returns the rows written.
type exportEncoder interface {
	pin.QueryResult
	close() (rows int, err error)
}

// csvExport writes a header line of column names, then one line a row, as
// the CSV answer of /query does (formulas defused).
type csvExport struct {
	csvRows
	w io.Writer
}

func (c *csvExport) Columns(names, _ []string) error {
	return c.begin(c.w, 64<<10, names)
}

func (c *csvExport) close() (int, error) {
	if c.csv == nil {
		return 0, nil
	}
	c.csv.Flush()
	if err := c.csv.Error(); err != nil {
		return 0, err
	}
	return c.rows, c.buf.Flush()
}

// jsonlExport writes one JSON object a row, keyed by column name in column
// order; a name seen before gets _2, _3… (uniqueNames).
type jsonlExport struct {
	w    io.Writer
	buf  *bufio.Writer
	enc  *json.Encoder
	keys [][]byte // each column's quoted name and colon
	rows int
}

func (j *jsonlExport) Columns(names, _ []string) error {
	j.buf = bufio.NewWriterSize(j.w, 64<<10)
	j.enc = json.NewEncoder(j.buf)
	j.enc.SetEscapeHTML(false)
	for _, n := range uniqueNames(names) {
		k, err := json.Marshal(n)
		if err != nil {
			return err
		}
		j.keys = append(j.keys, append(k, ':'))
	}
	return nil
}

func (j *jsonlExport) Row(values []any) error {
	for i, v := range values {
		if i == 0 {
			j.buf.WriteByte('{')
		} else {
			j.buf.WriteByte(',')
		}
		j.buf.Write(j.keys[i])
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("export: encode column %d: %w", i+1, err)
		}
		j.buf.Write(b)
	}
	if len(values) == 0 {
		j.buf.WriteByte('{')
	}
	j.rows++
	_, err := j.buf.WriteString("}\n")
	return err
}

func (j *jsonlExport) close() (int, error) {
	if j.buf == nil {
		return 0, nil
	}
	return j.rows, j.buf.Flush()
}

// uniqueNames returns names with each repeat suffixed _2, _3… so they can
// key an object or name a Parquet column.
func uniqueNames(names []string) []string {
	seen := map[string]bool{}
	out := make([]string, len(names))
	for i, n := range names {
		name := n
		for k := 2; seen[name]; k++ {
			name = n + "_" + strconv.Itoa(k)
		}
		seen[name] = true
		out[i] = name
	}
	return out
}

// parquetRowGroup bounds the rows a Parquet export buffers before it
// writes a row group.
const parquetRowGroup = 64 << 10

// parquetExport writes a zstd-compressed Parquet file whose columns keep
// the answer's order and, where Parquet has one, its type: booleans,
// integers, floating point, DATE, timestamps (µs, UTC) and lists of text;
// other types (DECIMAL, HUGEINT, UUID, INTERVAL, structs, maps, other
// lists) are written as the text the JSON answer shows.
type parquetExport struct {
	w     io.Writer
	pw    *parquet.Writer
	kinds []parquetKind
	row   parquet.Row
	rows  int
}

type parquetKind int

const (
	pqText parquetKind = iota
	pqBool
	pqInt32
	pqInt64
	pqUint64
	pqDouble
	pqDate
	pqTimestamp
	pqTextList
)

// parquetKindOf maps a DuckDB type name to how its values are written.
func parquetKindOf(typ string) (parquetKind, parquet.Node) {
	switch typ {
	case "BOOLEAN":
		return pqBool, parquet.Leaf(parquet.BooleanType)
	case "TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT":
		return pqInt32, parquet.Int(32)
	case "BIGINT", "UINTEGER":
		return pqInt64, parquet.Int(64)
	case "UBIGINT":
		return pqUint64, parquet.Uint(64)
	case "FLOAT", "DOUBLE":
		return pqDouble, parquet.Leaf(parquet.DoubleType)
	case "DATE":
		return pqDate, parquet.Date()
	case "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
		return pqTimestamp, parquet.Timestamp(parquet.Microsecond)
	case "VARCHAR[]":
		return pqTextList, parquet.List(parquet.Optional(parquet.String()))
	}
	return pqText, parquet.String()
}

// orderedGroup is a Parquet group whose fields keep the answer's column
// order (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	rank := make(map[string]int, len(g.order))
	for i, n := range g.order {
		rank[n] = i
	}
	slices.SortFunc(fields, func(a, b parquet.Field) int { return rank[a.Name()] - rank[b.Name()] })
	return fields
}

func (p *parquetExport) Columns(names, types []string) error {
	names = uniqueNames(names)
	g := parquet.Group{}
	p.kinds = make([]parquetKind, len(names))
	for i, n := range names {
		kind, node := parquetKindOf(types[i])
		p.kinds[i] = kind
		g[n] = parquet.Optional(node)
	}
	schema := parquet.NewSchema("pinpipe_export", orderedGroup{Group: g, order: names})
	p.pw = parquet.NewWriter(p.w, schema, parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(parquetRowGroup), parquet.CreatedBy("pinpipe", "", ""))
	return nil
}

func (p *parquetExport) Row(values []any) error {
	p.row = p.row[:0]
	for i, v := range values {
		if p.kinds[i] == pqTextList {
			p.row = appendTextList(p.row, v, i)
			continue
		}
		if v == nil {
			p.row = append(p.row, parquet.NullValue().Level(0, 0, i))
			continue
		}
		pv, err := parquetValue(p.kinds[i], v)
		if err != nil {
			return fmt.Errorf("export: column %d: %w", i+1, err)
		}
		p.row = append(p.row, pv.Level(0, 1, i))
	}
	if _, err := p.pw.WriteRows([]parquet.Row{p.row}); err != nil {
		return fmt.Errorf("export: write a Parquet row: %w", err)
	}
	p.rows++
	return nil
}

// appendTextList appends a list column's values: an optional list of
// optional strings has definition levels 0 (no list), 1 (empty list),
// 2 (a NULL element) and 3 (an element); each element but the first
// repeats at level 1.
func appendTextList(row parquet.Row, v any, col int) parquet.Row {
	list, ok := v.([]any)
	switch {
	case v == nil:
		return append(row, parquet.NullValue().Level(0, 0, col))
	case !ok: // not a list after all: keep its text as the one element
		return append(row, parquet.ByteArrayValue([]byte(pin.CellText(v))).Level(0, 3, col))
	case len(list) == 0:
		return append(row, parquet.NullValue().Level(0, 1, col))
	}
	for k, e := range list {
		rep := min(k, 1)
		if e == nil {
			row = append(row, parquet.NullValue().Level(rep, 2, col))
			continue
		}
		row = append(row, parquet.ByteArrayValue([]byte(pin.CellText(e))).Level(rep, 3, col))
	}
	return row
}

// parquetValue converts a value of the JSON answer (see query.jsonValue)
// back into the Parquet value of kind.
func parquetValue(kind parquetKind, v any) (parquet.Value, error) {
	switch kind {
	case pqBool:
		b, _ := v.(bool)
		return parquet.BooleanValue(b), nil
	case pqInt32, pqInt64, pqUint64:
		n, err := strconv.ParseInt(pin.CellText(v), 10, 64)
		if kind == pqUint64 {
			u, uerr := strconv.ParseUint(pin.CellText(v), 10, 64)
			return parquet.Int64Value(int64(u)), uerr
		}
		if kind == pqInt32 {
			return parquet.Int32Value(int32(n)), err
		}
		return parquet.Int64Value(n), err
	case pqDouble:
		switch x := v.(type) {
		case float64:
			return parquet.DoubleValue(x), nil
		case string: // NaN and the infinities
			f, err := strconv.ParseFloat(strings.Replace(x, "Infinity", "Inf", 1), 64)
			return parquet.DoubleValue(f), err
		}
		f, err := strconv.ParseFloat(pin.CellText(v), 64)
		return parquet.DoubleValue(f), err
	case pqDate:
		t, err := time.Parse(time.DateOnly, pin.CellText(v))
		return parquet.Int32Value(int32(math.Floor(float64(t.Unix()) / 86400))), err
	case pqTimestamp:
		t, err := time.Parse(time.RFC3339Nano, pin.CellText(v))
		return parquet.Int64Value(t.UnixMicro()), err
	}
	return parquet.ByteArrayValue([]byte(pin.CellText(v))), nil
}

func (p *parquetExport) close() (int, error) {
	if p.pw == nil {
		return 0, nil
	}
	if err := p.pw.Close(); err != nil {
		return 0, fmt.Errorf("export: finish the Parquet file: %w", err)
	}
	return p.rows, nil
}
