package cmd

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"pinpipe/config"
	"pinpipe/pin"
	"pinpipe/pipeline"
	"pinpipe/query"
)

func newQuery(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   `query [flags] "SQL"   (or "-" to read the SQL from stdin)`,
		Short: "run one SQL query over the lake and print a table",
		Long: `Runs one read-only SQL statement over the lake's views pins (curated zone)
and pins_raw (raw zone) and prints the answer. By default it reads the lake
itself (a local copy is kept under the data directory); with --url or
PINPIPE_URL it asks a running pinpipe server instead.
` + settingsPointer,
		Example: `  pinpipe query "SELECT category, count(*) AS pins FROM pins GROUP BY 1 ORDER BY 2 DESC"
  pinpipe query --format csv "SELECT * FROM pins WHERE dt = DATE '2026-11-24'" > day.csv
  pinpipe query --url http://127.0.0.1:8000 "DESCRIBE pins"`,
	}
	fs := c.Flags()
	format := fs.String("format", "table", "output: table, csv or json (the JSON of POST /query)")
	limit := fs.Int("limit", query.DefaultLimit, fmt.Sprintf("most rows to print (1 to %d)", query.MaxLimit))
	url := fs.String("url", "", "ask the pinpipe server at this base URL (default $PINPIPE_URL) instead of reading the lake in this process")
	local := fs.Bool("local", false, "read the lake in this process even when PINPIPE_URL is set")
	load := config.Bind(fs, true)
	c.RunE = func(c *cobra.Command, args []string) error {
		ctx := c.Context()
		cfg, err := load(env.Getenv)
		if err != nil {
			return usageError{err}
		}
		switch *format {
		case "table", "csv", "json":
		default:
			return usagef("--format must be table, csv or json, got %q", *format)
		}
		if *limit < 1 || *limit > query.MaxLimit {
			return usagef("--limit must be from 1 to %d, got %d", query.MaxLimit, *limit)
		}
		server := *url
		if server == "" && !*local {
			server = strings.TrimSpace(env.Getenv("PINPIPE_URL"))
			server, _, _ = strings.Cut(server, ",")
		}
		if *local && *url != "" {
			return usagef("give --url or --local, not both")
		}
		if server != "" {
			if err := checkBaseURL(server); err != nil {
				return err
			}
		}
		sql := strings.Join(args, " ")
		if sql == "-" {
			b, err := io.ReadAll(env.Stdin)
			if err != nil {
				return fmt.Errorf("read the SQL from stdin: %w", err)
			}
			sql = string(b)
		}
		if strings.TrimSpace(sql) == "" {
			return usagef("give the SQL to run as an argument, or - to read it from stdin")
		}
		if server != "" {
			return queryServer(ctx, env, server, cfg.APIKey, sql, *limit, *format)
		}
		if cfg.S3Endpoint == "" {
			// The embedded lake lives under the data directory; opening it
			// would create an empty one and answer as if it held nothing.
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "s3")); err != nil {
				return fmt.Errorf("no lake at %s: run pinpipe query where 'pinpipe serve' keeps its data, point --data-dir (PINPIPE_DATA_DIR) at it, or ask a running server with --url (PINPIPE_URL)",
					filepath.Join(cfg.DataDir, "s3"))
			}
		}
		return queryLake(ctx, env, cfg, sql, *limit, *format)
	}
	return c
}

// queryLake runs the query in this process, over the configured lake.
func queryLake(ctx context.Context, env Env, cfg *config.Config, sql string, limit int, format string) error {
	q, err := pipeline.OpenQueryLane(ctx, cfg, newLogger(env, "warn", cfg.LogFormat))
	if err != nil {
		return err
	}
	defer q.Close()
	start := time.Now()
	var out interface {
		query.Result
		end(truncated bool) error
	}
	switch format {
	case "csv":
		out = &csvOut{w: csv.NewWriter(env.Stdout)}
	default:
		out = &collected{format: format, w: env.Stdout, start: start}
	}
	truncated, err := q.Query(ctx, sql, limit, out)
	if err != nil {
		return queryError(err)
	}
	return out.end(truncated)
}

// queryError shows an application error's sentence rather than its code.
func queryError(err error) error {
	var e *pin.Error
	if errors.As(err, &e) {
		return errors.New(e.Message)
	}
	return err
}

// queryServer posts the query to a pinpipe server and prints its answer.
func queryServer(ctx context.Context, env Env, url, apiKey, sql string, limit int, format string) error {
	body, _ := json.Marshal(map[string]any{"sql": sql, "limit": limit})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/query", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if format == "csv" {
		req.Header.Set("Accept", "text/csv")
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pinpipe at %s is not reachable: %w; is `pinpipe serve` running there?", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p problem
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(data))
		}
		return fmt.Errorf("%d: %s", resp.StatusCode, p.Detail)
	}
	if format != "table" {
		if _, err := io.Copy(env.Stdout, resp.Body); err != nil {
			return fmt.Errorf("read the answer: %w", err)
		}
		return nil
	}
	var r pin.QueryResponse
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("read the answer (cut short?): %w", err)
	}
	c := &collected{format: format, w: env.Stdout, rows: r.Rows, elapsed: time.Duration(r.ElapsedMS * float64(time.Millisecond))}
	for _, col := range r.Columns {
		c.names, c.types = append(c.names, col.Name), append(c.types, col.Type)
	}
	return c.end(r.Truncated)
}

// csvOut writes rows as CSV as they come, header first.
type csvOut struct{ w *csv.Writer }

func (c *csvOut) Columns(names, _ []string) error { return c.w.Write(names) }

func (c *csvOut) Row(values []any) error {
	cells := make([]string, len(values))
	for i, v := range values {
		cells[i] = pin.CellText(v)
	}
	return c.w.Write(cells)
}

func (c *csvOut) end(bool) error {
	c.w.Flush()
	return c.w.Error()
}

// collected keeps an answer to print it as an aligned table, or as the
// JSON of POST /query.
type collected struct {
	format       string
	w            io.Writer
	names, types []string
	rows         [][]any
	start        time.Time
	elapsed      time.Duration
}

func (c *collected) Columns(names, types []string) error {
	c.names, c.types = names, types
	return nil
}

func (c *collected) Row(values []any) error {
	c.rows = append(c.rows, values)
	return nil
}

func (c *collected) end(truncated bool) error {
	if !c.start.IsZero() {
		c.elapsed = time.Since(c.start)
	}
	if c.format == "json" {
		r := pin.QueryResponse{Rows: c.rows, RowCount: len(c.rows), Truncated: truncated, ElapsedMS: float64(c.elapsed.Microseconds()) / 1000}
		if r.Rows == nil {
			r.Rows = [][]any{}
		}
		for i := range c.names {
			r.Columns = append(r.Columns, pin.ResultColumn{Name: c.names[i], Type: c.types[i]})
		}
		enc := json.NewEncoder(c.w)
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	return c.table(truncated)
}

// table prints the answer as aligned columns, numbers right-aligned and
// NULL spelled out, then a line with the row count.
func (c *collected) table(truncated bool) error {
	cells := make([][]string, len(c.rows))
	width := make([]int, len(c.names))
	for i, n := range c.names {
		width[i] = utf8.RuneCountInString(n)
	}
	numeric := make([]bool, len(c.names))
	for i, t := range c.types {
		numeric[i] = isNumericType(t)
	}
	for r, row := range c.rows {
		cells[r] = make([]string, len(row))
		for i, v := range row {
			s := "NULL"
			if v != nil {
				s = strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(pin.CellText(v))
			}
			cells[r][i] = s
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	line := func(vals []string) {
		for i, s := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if numeric[i] {
				b.WriteString(pad + s)
			} else if i < len(vals)-1 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(s)
			}
		}
		b.WriteString("\n")
	}
	line(c.names)
	for i := range width {
		if i > 0 {
			b.WriteString("-+-")
		}
		b.WriteString(strings.Repeat("-", width[i]))
	}
	b.WriteString("\n")
	for _, row := range cells {
		line(row)
	}
	n := len(c.rows)
	noun := "rows"
	if n == 1 {
		noun = "row"
	}
	fmt.Fprintf(&b, "(%d %s", n, noun)
	if truncated {
		b.WriteString(", truncated: raise --limit to see more")
	}
	fmt.Fprintf(&b, "; %s)\n", c.elapsed.Round(100*time.Microsecond))
	_, err := io.WriteString(c.w, b.String())
	return err
}

func isNumericType(t string) bool {
	for _, p := range []string{"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"} {
		if t == p || strings.HasPrefix(t, p+"(") {
			return true
		}
	}
	return false
}
