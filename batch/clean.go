package batch

import (
	"errors"
	"fmt"
	"io"
)

// ErrNotRaw is returned (wrapped) by CleanObject when its input is not a
// raw-zone Parquet object.
var ErrNotRaw = errors.New("not a raw-zone Parquet object")

// CleanedObject is what CleanObject made of one raw object.
type CleanedObject struct {
	Rows     int // raw records read
	Pins     int // cleaned pins written (every version; nothing is deduplicated)
	Rejected int // records that failed cleaning, left out
}

// CleanObject cleans one raw-zone Parquet object of size bytes, read from r,
// record by record exactly as the daily job does (the same function), and
// writes the cleaned pins to w as one curated-schema Parquet object
// (WriteCurated), in the raw object's order. Versions are not
// deduplicated: a reader of several cleaned objects keeps the newest
// version of each unique_id itself (pin.NewestSQL). Records that fail
// cleaning are left out and counted. Returns an error, and writes nothing
// useful, when w fails, or ErrNotRaw (wrapped) when r is not a raw-zone
// object (see ReadRaw).
func CleanObject(r io.ReaderAt, size int64, w io.Writer) (CleanedObject, error) {
	recs, err := ReadRaw(r, size)
	if err != nil {
		return CleanedObject{}, fmt.Errorf("clean: %w: %w", ErrNotRaw, err)
	}
	pins, rejected := cleanRecords(recs)
	res := CleanedObject{Rows: len(recs), Pins: len(pins), Rejected: len(rejected)}
	if err := WriteCurated(w, pins); err != nil {
		return res, fmt.Errorf("clean: encode %d pins: %w", len(pins), err)
	}
	return res, nil
}
