package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"pinpipe/pin"
)

// Querier runs read-only SQL over the lake.
type Querier interface {
	// Query runs one read-only statement and streams up to limit rows to
	// out, returning truncated=true when there were more. Errors carry
	// codes: EFORBIDDEN (not one read-only statement, or a file outside
	// the lake), EINVALID (SQL DuckDB rejects), ETIMEOUT, ETOOMANY,
	// EUNAVAILABLE.
	Query(ctx context.Context, sql string, limit int, out pin.QueryResult) (truncated bool, err error)
	// QueryAt is Query from row offset of the answer on.
	QueryAt(ctx context.Context, sql string, offset, limit int, out pin.QueryResult) (truncated bool, err error)
	// Export streams the whole answer to out within the export limits;
	// ETOOLARGE when it has more rows or bytes than they allow, after out
	// got part of it. Other errors as Query's.
	Export(ctx context.Context, sql string, out pin.QueryResult) error
}

// maxSQLBytes bounds the SQL text of one request.
const maxSQLBytes = 1 << 20

var errQueryOff = pin.Errorf(pin.EUNAVAILABLE, "The query lane is not running in this process.")

// handleQuery answers POST /query {"sql": "...", "limit": 1000, "offset": 0}
// and GET /query?sql=...&limit=...&offset=... with one page of rows as JSON, or as CSV when the
// request accepts text/csv (or says format=csv). Rows are written as
// DuckDB hands them over; an error after the first row cuts the response
// short rather than ending it as if complete. The answer must be written
// within the query timeout of the request's body: a client that stops
// reading loses its connection then, and with it the query's slot.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.Query == nil {
		s.writeError(w, r, errQueryOff)
		return
	}
	req, err := s.readQueryRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.QueryTimeout))
	cw := &errWriter{ResponseWriter: w}
	var out queryWriter
	if wantsCSV(r) {
		out = &csvResult{w: cw, start: start}
	} else {
		out = &jsonResult{w: cw, start: start, offset: req.Offset}
	}
	truncated, err := s.Query.QueryAt(r.Context(), req.SQL, req.Offset, req.Limit, out)
	if err != nil {
		if !out.started() {
			// The query used up the time: leave the problem its own.
			_ = rc.SetWriteDeadline(time.Now().Add(s.limits.write))
			s.writeError(w, r, err)
			return
		}
		switch {
		case cw.err != nil:
			s.log.Info("query: the client did not take the answer in time; the query was stopped", slog.Any("err", cw.err))
		case r.Context().Err() == nil:
			s.log.Warn("query failed after its first rows were sent", slog.Any("err", err))
		}
		panic(http.ErrAbortHandler)
	}
	if err := out.finish(truncated); err != nil {
		s.log.Debug("query: client went away", slog.Any("err", err))
	}
}

// errWriter keeps the first error writing the answer to the client.
type errWriter struct {
	http.ResponseWriter
	err error
}

func (w *errWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// queryRequest is what a query or export request asks for.
type queryRequest struct {
	SQL    string
	Limit  int    // rows of one page, 1 to pin.QueryMaxLimit
	Offset int    // rows of the answer skipped before the page, ≥ 0
	Format string // of an export: csv, jsonl or parquet
}

// readQueryRequest returns the SQL, page and format of a query or export
// request: a JSON body {"sql", "limit", "offset", "format"}, an
// application/sql body, or the URL parameters of the same names (a JSON
// body's fields win). Returns EINVALID, saying what to send, when the SQL is
// missing or limit or offset is not a whole number in its range.
func (s *Server) readQueryRequest(r *http.Request) (queryRequest, error) {
	q := r.URL.Query()
	req := queryRequest{SQL: q.Get("sql"), Format: q.Get("format")}
	limitText, offsetText := q.Get("limit"), q.Get("offset")
	var limit, offset *int
	if r.Method == http.MethodPost {
		if err := checkContentType(r, queryTypes); err != nil {
			return req, err
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSQLBytes+1))
		if err != nil {
			return req, s.readError(err)
		}
		if len(body) > maxSQLBytes {
			return req, pin.Errorf(pin.ETOOLARGE, "The query is larger than %d bytes; send a shorter statement.", maxSQLBytes)
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case ct == "application/sql":
			// Not text/plain: a browser sends that from any page without
			// asking first; application/sql needs a CORS preflight, which
			// pinpipe never grants.
			req.SQL = string(body)
		case len(strings.TrimSpace(string(body))) > 0:
			var b struct {
				SQL    string  `json:"sql"`
				Limit  *int    `json:"limit"`
				Offset *int    `json:"offset"`
				Format *string `json:"format"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				return req, pin.Errorf(pin.EINVALID, `The body must be a JSON object such as {"sql": "SELECT count(*) FROM pins", "limit": 1000}: %v.`, err)
			}
			req.SQL, limit, offset = b.SQL, b.Limit, b.Offset
			if b.Format != nil {
				req.Format = *b.Format
			}
		}
	}
	if strings.TrimSpace(req.SQL) == "" {
		return req, pin.Errorf(pin.EINVALID,
			`Send the SQL: POST /query {"sql": "SELECT count(*) FROM pins"} or GET /query?sql=SELECT+count(*)+FROM+pins.`)
	}
	var err error
	if req.Limit, err = wholeNumber("limit", limit, limitText, pin.QueryDefaultLimit, 1, pin.QueryMaxLimit); err != nil {
		return req, err
	}
	if req.Offset, err = wholeNumber("offset", offset, offsetText, 0, 0, math.MaxInt32); err != nil {
		return req, err
	}
	return req, nil
}

// wholeNumber returns a request's number name: n when the body had it, else
// text from the URL, else def. Returns EINVALID when it is not a whole
// number from lo to hi.
func wholeNumber(name string, n *int, text string, def, lo, hi int) (int, error) {
	v := def
	switch {
	case n != nil:
		v = *n
	case text != "":
		var err error
		if v, err = strconv.Atoi(strings.TrimSpace(text)); err != nil {
			return 0, pin.Errorf(pin.EINVALID, "%s must be a whole number from %d to %d, got %q.", name, lo, hi, text)
		}
	}
	if v < lo || v > hi {
		return 0, pin.Errorf(pin.EINVALID, "%s must be a whole number from %d to %d, got %d.", name, lo, hi, v)
	}
	return v, nil
}

// wantsCSV reports whether the client asked for CSV: Accept: text/csv, or
// format=csv in the URL (for links a browser follows).
func wantsCSV(r *http.Request) bool {
	if r.URL.Query().Get("format") == "csv" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt == "text/csv" {
			return true
		}
	}
	return false
}

// queryWriter writes a query's answer in one format.
type queryWriter interface {
	pin.QueryResult
	started() bool               // the status line and first bytes are out
	finish(truncated bool) error // ends a response begun by Columns
}

// jsonResult writes {"columns":[…],"rows":[[…],…],"row_count":N,
// "truncated":bool,"offset":N,"elapsed_ms":N}, one row at a time.
// truncated says more rows follow the page.
type jsonResult struct {
	w      http.ResponseWriter
	buf    *bufio.Writer
	enc    *json.Encoder
	start  time.Time
	offset int
	rows   int
}

func (j *jsonResult) started() bool { return j.buf != nil }

func (j *jsonResult) Columns(names, types []string) error {
	cols := make([]pin.ResultColumn, len(names))
	for i := range names {
		cols[i] = pin.ResultColumn{Name: names[i], Type: types[i]}
	}
	j.w.Header().Set("Content-Type", "application/json")
	j.w.WriteHeader(http.StatusOK)
	j.buf = bufio.NewWriterSize(j.w, 32<<10)
	j.enc = json.NewEncoder(j.buf)
	j.enc.SetEscapeHTML(false)
	j.buf.WriteString(`{"columns":`)
	if err := j.enc.Encode(cols); err != nil {
		return err
	}
	_, err := j.buf.WriteString(`,"rows":[`)
	return err
}

func (j *jsonResult) Row(values []any) error {
	if j.rows > 0 {
		j.buf.WriteByte(',')
	}
	j.rows++
	return j.enc.Encode(values)
}

func (j *jsonResult) finish(truncated bool) error {
	if j.buf == nil {
		return nil
	}
	j.buf.WriteString(`],"row_count":` + strconv.Itoa(j.rows) + `,"truncated":` + strconv.FormatBool(truncated) +
		`,"offset":` + strconv.Itoa(j.offset) + `,"elapsed_ms":` + elapsedMS(j.start) + "}\n")
	return j.buf.Flush()
}

// csvResult writes a header line of column names, then the rows. The row
// count and the truncated flag follow as HTTP trailers.
type csvResult struct {
	csvRows
	w     http.ResponseWriter
	start time.Time
}

// csvRows writes a result as CSV: a header of the column names, then a
// line per row, each cell as the JSON answer shows it and defused against
// spreadsheet formulas. It counts the rows written.
type csvRows struct {
	buf   *bufio.Writer
	csv   *csv.Writer
	cells []string
	rows  int
}

// begin starts writing to w, buffered by size bytes, with the header.
func (c *csvRows) begin(w io.Writer, size int, names []string) error {
	c.buf = bufio.NewWriterSize(w, size)
	c.csv = csv.NewWriter(c.buf)
	header := make([]string, len(names))
	for i, n := range names {
		header[i] = defuseFormula(n)
	}
	return c.csv.Write(header)
}

// Row writes one row.
func (c *csvRows) Row(values []any) error {
	c.cells = c.cells[:0]
	for _, v := range values {
		c.cells = append(c.cells, defuseFormula(pin.CellText(v)))
	}
	c.rows++
	return c.csv.Write(c.cells)
}

func (c *csvResult) started() bool { return c.buf != nil }

func (c *csvResult) Columns(names, _ []string) error {
	h := c.w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Trailer", "X-Pinpipe-Row-Count, X-Pinpipe-Truncated, X-Pinpipe-Elapsed-Ms")
	c.w.WriteHeader(http.StatusOK)
	return c.begin(c.w, 32<<10, names)
}

func (c *csvResult) finish(truncated bool) error {
	if c.buf == nil {
		return nil
	}
	c.csv.Flush()
	if err := c.csv.Error(); err != nil {
		return err
	}
	err := c.buf.Flush()
	h := c.w.Header()
	h.Set("X-Pinpipe-Row-Count", strconv.Itoa(c.rows))
	h.Set("X-Pinpipe-Truncated", strconv.FormatBool(truncated))
	h.Set("X-Pinpipe-Elapsed-Ms", elapsedMS(c.start))
	return err
}

// defuseFormula returns cell with a leading single quote when a
// spreadsheet opening the CSV would read it as a formula: when it starts
// with =, +, -, @, a tab or a carriage return and is not a plain number
// (-5 and +1.5e3 stay as they are). This is OWASP's advice against CSV
// injection; the JSON answer always carries the exact value.
func defuseFormula(cell string) string {
	if cell == "" || !strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return cell
	}
	if plainNumber.MatchString(cell) {
		return cell
	}
	return "'" + cell
}

var plainNumber = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

func elapsedMS(start time.Time) string {
	ms := float64(time.Since(start).Microseconds()) / 1000
	return strconv.FormatFloat(math.Round(ms*10)/10, 'f', -1, 64)
}
