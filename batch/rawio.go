package batch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"

	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// rawRowGroup caps a row group's rows. A raw object holds at most
// PINPIPE_LANDING_MAX_RECORDS records, so with the default every object is
// one row group, which DuckDB and Spark read in one go.
const rawRowGroup = 64 << 10

// WriteRaw encodes recs as one zstd-compressed Parquet object into w, in the
// order given. An empty recs writes a valid object with no rows. Returns w's
// or the encoder's error.
func WriteRaw(w io.Writer, recs []RawRecord) error {
	err := parquet.Write(w, recs, append(zoneOptions(rawRowGroup),
		// Min/max bounds of opaque JSON filter nothing, and for large
		// messages they copied whole values into the footer.
		parquet.SkipPageBounds("value"))...)
	if err != nil {
		return fmt.Errorf("raw: encode %d records: %w", len(recs), err)
	}
	return nil
}

// ReadRaw decodes one raw-zone Parquet object of size bytes, in the order it
// was written (offset order for objects the landing wrote), with either
// column names: RawRecord's, or the partition, offset and timestamp of
// objects landed before. Timestamps are in UTC. Returns an error when r is
// not Parquet or its schema lacks a column of RawRecord.
func ReadRaw(r io.ReaderAt, size int64) ([]RawRecord, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("raw: decode: %w", err)
	}
	var recs []RawRecord
	if _, old := f.Schema().Lookup("offset"); old {
		var v1 []rawRecordV1
		v1, err = parquet.Read[rawRecordV1](r, size)
		recs = make([]RawRecord, len(v1))
		for i, v := range v1 {
			recs[i] = RawRecord(v)
		}
	} else {
		recs, err = parquet.Read[RawRecord](r, size)
	}
	if err != nil {
		return nil, fmt.Errorf("raw: decode: %w", err)
	}
	for i := range recs {
		recs[i].Timestamp = recs[i].Timestamp.UTC()
	}
	return recs, nil
}

// LoadRaw fetches the raw-zone object at key and decodes it with ReadRaw.
// Returns lake.ErrNotFound (wrapped) when there is no such object.
func LoadRaw(ctx context.Context, s *lake.Store, key string) ([]RawRecord, error) {
	body, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("raw: read %s: %w", key, err)
	}
	recs, err := ReadRaw(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%w (object %s)", err, key)
	}
	return recs, nil
}

// RawObject is one raw-zone object and what its name says about it.
type RawObject struct {
	lake.Object
	DT          string
	Partition   int
	First, Last int64 // offsets of the object's first and last records
}

// RawObjects lists the raw zone's objects for day dt (YYYY-MM-DD), or for
// every day when dt == "", ordered by day, then partition, then first offset,
// so each partition's objects of a day come in offset order. Objects whose
// names are not raw parts as layout.RawKey writes them are skipped. Returns an empty slice when the
// zone has none.
func RawObjects(ctx context.Context, s *lake.Store, dt string) ([]RawObject, error) {
	prefix := layout.Raw.Prefix()
	if dt != "" {
		prefix = layout.Raw.DayPrefix(dt)
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	out := make([]RawObject, 0, len(objs))
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		if !ok || k.Kind != layout.RawPart {
			continue
		}
		out = append(out, RawObject{Object: o, DT: k.DT, Partition: k.Partition, First: k.First, Last: k.Last})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if c := strings.Compare(a.DT, b.DT); c != 0 {
			return c < 0
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.First < b.First
	})
	return out, nil
}
