package query

import (
	"context"
	"time"

	"pinpipe/pin"
)

// Limits of one export, by default.
const (
	DefaultExportMaxRows  = 10_000_000
	DefaultExportMaxBytes = 1 << 30
	DefaultExportTimeout  = 5 * time.Minute
)

// bounds are the limits of one run: which rows, how many bytes, how long,
// and the settings that set them, named in the errors.
type bounds struct {
	offset, rows   int
	bytes          int64
	bytesSetting   string
	timeout        time.Duration
	timeoutSetting string
}

// Export runs one read-only statement, checked exactly as Query checks it,
// and streams its whole answer to out, within the export limits:
// Options.ExportMaxRows rows, Options.ExportMaxBytes bytes (counted as for
// Query) and Options.ExportTimeout. Returns ETOOLARGE, naming the setting,
// when the answer has more rows or bytes than that; out then got part of
// the answer only, so a caller must buffer what it got before it sends any
// of it. Other errors as Query's.
func (e *Engine) Export(ctx context.Context, sqlText string, out Result) error {
	truncated, err := e.exec(ctx, sqlText, bounds{
		rows:  e.o.ExportMaxRows,
		bytes: e.o.ExportMaxBytes, bytesSetting: "PINPIPE_EXPORT_MAX_BYTES",
		timeout: e.o.ExportTimeout, timeoutSetting: "PINPIPE_EXPORT_TIMEOUT",
	}, out)
	if err == nil && truncated {
		err = pin.Errorf(pin.ETOOLARGE,
			"The answer has more than %d rows, the most one export may have (PINPIPE_EXPORT_MAX_ROWS): filter on dt or aggregate, or export it in parts (WHERE dt = …).", e.o.ExportMaxRows)
	}
	return err
}
