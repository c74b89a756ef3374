package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"pinpipe/pin"
)

// fail turns a DuckDB or driver error into the error users see: the limit
// b's answer hit (ETOOLARGE), ETIMEOUT when bd's time limit interrupted it,
// ctx's error when the client left, EFORBIDDEN for a file outside the
// lake, EINVALID for the rest, and the message always without server paths.
func (e *Engine) fail(ctx, qctx context.Context, bd bounds, b *budget, err error) error {
	var app *pin.Error
	switch {
	case errors.As(err, &app):
		if app.Detail == nil {
			return pin.Errorf(app.Code, "%s", e.scrub(app.Message)) // it may quote the query
		}
		return err
	case budgetError(b) != nil:
		return budgetError(b)
	case ctx.Err() != nil:
		return ctx.Err()
	case qctx.Err() != nil:
		return pin.Errorf(pin.ETIMEOUT,
			"The query ran longer than %s (%s) and was stopped. Filter on dt, aggregate, or ask for fewer rows.", bd.timeout, bd.timeoutSetting)
	}
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return pin.Errorf(pin.EINVALID, "DuckDB could not run the query: %s", e.scrub(err.Error()))
	}
	msg := e.scrub(de.Msg)
	if strings.Contains(msg, guardPhrase) {
		return pin.Errorf(pin.ETOOLARGE, "%s", strings.TrimPrefix(msg, "Invalid Input Error: "))
	}
	switch de.Type {
	case duckdb.ErrorTypePermission:
		return pin.Errorf(pin.EFORBIDDEN,
			"Queries may read only the lake's views pins, pins_live and pins_raw; other files, the network and extensions are off limits. DuckDB said: %s", msg)
	case duckdb.ErrorTypeOutOfMemory:
		return pin.Errorf(pin.EINVALID,
			"The query needs more memory than PINPIPE_QUERY_MEMORY_LIMIT (%s) allows: aggregate more or filter on dt. DuckDB said: %s", e.o.MemoryLimit, msg)
	case duckdb.ErrorTypeFatal, duckdb.ErrorTypeInternal:
		e.log.Error("query: duckdb internal error", slog.String("err", msg))
		return fmt.Errorf("query: duckdb: %s", msg)
	}
	return pin.Errorf(pin.EINVALID, "%s", msg)
}

// scrubber returns a function that hides the server's paths in text: the
// mirror directory reads as the bucket (s3://<bucket>/curated/dt=…/part-….parquet,
// without the local ETag suffix) and the spill directory as <temp>.
func scrubber(o Options) func(string) string {
	dir := strings.TrimSuffix(o.Mirror.Dir(), "/")
	pairs := []string{dir + "/", "s3://" + o.Bucket + "/", dir, "s3://" + o.Bucket}
	if o.TempDir != "" {
		pairs = append(pairs, o.TempDir, "<temp>")
	}
	r := strings.NewReplacer(pairs...)
	etag := regexp.MustCompile(`~[0-9A-Za-z-]+\.parquet`)
	return func(s string) string {
		if !strings.Contains(s, dir) && (o.TempDir == "" || !strings.Contains(s, o.TempDir)) {
			return s
		}
		return etag.ReplaceAllString(r.Replace(s), ".parquet")
	}
}
