package batch

import (
	"context"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"pinpipe/internal/buildinfo"
	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// curatedRowGroup caps a curated row group's rows: the unit DuckDB and
// Spark read in parallel, and what the writer buffers in memory.
const curatedRowGroup = 64 << 10

// rejectedRow is one raw record that failed cleaning, as it came, with
// the reason: the rejected zone keeps what the curated zone could not. Its
// lineage columns are named as the raw zone's (RawRecord).
type rejectedRow struct {
	Topic     string `parquet:"topic,dict"`
	Partition int32  `parquet:"kafka_partition"`
	Offset    int64  `parquet:"kafka_offset"`
	Timestamp int64  `parquet:"kafka_timestamp,timestamp(millisecond)"`
	Key       string `parquet:"key"`
	Value     string `parquet:"value"`
	Reason    string `parquet:"reason"`
}

// writeCurated stores pins, in the order given, as day dt's curated
// object (layout.CuratedDayKey), replacing the one an earlier run left
// whole: S3 makes a PUT or a completed multipart upload visible at once,
// and a failed upload leaves the earlier object as it was. An empty pins
// writes nothing. progress, when not nil, is called after each row group
// with the rows written so far. Returns the keys written: none, or the
// day's key.
func writeCurated(ctx context.Context, store *lake.Store, dt string, pins []pin.Cleaned, progress func(done int)) ([]string, error) {
	rest := pins
	return writeCuratedFrom(ctx, store, dt, func(buf []pin.Cleaned) ([]pin.Cleaned, error) {
		chunk := rest[:min(len(rest), curatedRowGroup)]
		rest = rest[len(chunk):]
		return chunk, nil
	}, progress)
}

// WriteCurated encodes pins, in the order given, as one curated Parquet
// object into w. Its schema is pin.Cleaned's: the contract's columns in
// order, pointers optional (nil is NULL), ingested_at a TIMESTAMP of
// microseconds adjusted to UTC (an instant, as in every zone). There is no dt column: the day
// comes from the object's hive partition (curated/dt=YYYY-MM-DD/).
func WriteCurated(w io.Writer, pins []pin.Cleaned) error {
	pw := newCuratedWriter(w)
	if _, err := pw.Write(pins); err != nil {
		return err
	}
	return pw.Close()
}

func newCuratedWriter(w io.Writer) *parquet.GenericWriter[pin.Cleaned] {
	return parquet.NewGenericWriter[pin.Cleaned](w, zoneOptions(curatedRowGroup)...)
}

// writeCuratedFrom is writeCurated over pins that come from next in the
// curated order, a chunk at a time: next fills the buffer it is given (or
// returns a slice of its own) and returns it, empty at the end. The object
// is streamed to S3 (a multipart upload past the part size), so only one
// chunk, a row group and the upload's parts are in memory however large
// the day.
func writeCuratedFrom(ctx context.Context, store *lake.Store, dt string, next func([]pin.Cleaned) ([]pin.Cleaned, error), progress func(done int)) ([]string, error) {
	buf := make([]pin.Cleaned, 0, spillChunk)
	chunk, err := next(buf)
	if err != nil {
		return nil, fmt.Errorf("curated: %w", err)
	}
	if len(chunk) == 0 {
		return nil, nil
	}
	key := layout.CuratedDayKey(dt)
	err = putParquet(ctx, store, key, func(w io.Writer) error {
		pw := newCuratedWriter(w)
		done := 0
		for len(chunk) > 0 {
			if _, err := pw.Write(chunk); err != nil {
				return err
			}
			done += len(chunk)
			if progress != nil {
				progress(done)
			}
			if chunk, err = next(buf); err != nil {
				return err
			}
		}
		return pw.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("curated: write %s: %w", key, err)
	}
	return []string{key}, nil
}

// writeRejectedFrom is writeRejected over the rejected rows of a spill
// file (see readChunks), in the order written, a row group at a time.
func writeRejectedFrom(ctx context.Context, store *lake.Store, dt, path string) (string, error) {
	key := layout.RejectedDayKey(dt)
	err := putParquet(ctx, store, key, func(w io.Writer) error {
		pw := newRejectedWriter(w)
		err := readChunks(path, gobCodec, func(rows []rejectedRow) error {
			_, err := pw.Write(rows)
			return err
		})
		if err != nil {
			return err
		}
		return pw.Close()
	})
	if err != nil {
		return "", fmt.Errorf("rejected: write %s: %w", key, err)
	}
	return key, nil
}

// writeRejected stores rows as day dt's rejected object
// (layout.RejectedDayKey), replacing an earlier run's whole. Returns the
// key written.
func writeRejected(ctx context.Context, store *lake.Store, dt string, rows []rejectedRow) (string, error) {
	key := layout.RejectedDayKey(dt)
	err := putParquet(ctx, store, key, func(w io.Writer) error {
		return encodeRejected(w, rows)
	})
	if err != nil {
		return "", fmt.Errorf("rejected: write %s: %w", key, err)
	}
	return key, nil
}

// encodeRejected encodes rows as one rejected-zone Parquet object into w.
func encodeRejected(w io.Writer, rows []rejectedRow) error {
	pw := newRejectedWriter(w)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}

func newRejectedWriter(w io.Writer) *parquet.GenericWriter[rejectedRow] {
	return parquet.NewGenericWriter[rejectedRow](w, zoneOptions(rawRowGroup)...)
}

// zoneCodec is every zone's codec: zstd, which readers of every engine
// decode and which packs the pins' text better than Snappy, at its fastest
// level. One value, so its pooled encoders serve every writer. On
// synthetic pins the fastest level writes 149 bytes a curated pin against
// the default level's 129 (Snappy: 174) and took a fifth off a spilled
// day's run (bench/batch, 1M pins: 15.8 to 12.9 s).
var zoneCodec = &zstd.Codec{Level: zstd.SpeedFastest}

// zoneOptions are the writer options every zone shares: zoneCodec; row
// groups of at most rowGroup rows; and pinpipe's version as the writer.
func zoneOptions(rowGroup int64) []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(zoneCodec),
		parquet.MaxRowsPerRowGroup(rowGroup),
		parquet.CreatedBy("pinpipe", buildinfo.Get().Version, buildinfo.Get().ShortCommit()),
	}
}

// putParquet streams what encode writes into the object at key, so an
// object is never held whole in memory. It returns once encode has
// returned, so encode may use the caller's state.
func putParquet(ctx context.Context, store *lake.Store, key string, encode func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(encode(pw))
	}()
	err := store.Put(ctx, key, pr)
	// Unblock the encoder if the upload stopped reading early.
	pr.CloseWithError(io.ErrClosedPipe)
	<-done
	return err
}

// replaceObjects removes every object under prefix but the keep keys:
// what a run leaves of the day besides its own objects and marker (earlier
// runs' markers, and a day's parts in the old layout, which a reader that
// ignores markers sees beside the day's object until then). Returns the
// number of objects removed.
func replaceObjects(ctx context.Context, store *lake.Store, prefix string, keep []string) (int, error) {
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	kept := make(map[string]bool, len(keep))
	for _, k := range keep {
		kept[k] = true
	}
	var old []string
	for _, o := range objs {
		if !kept[o.Key] {
			old = append(old, o.Key)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	return len(old), store.Delete(ctx, old...)
}
