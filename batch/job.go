package batch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/lake"
	"pinpipe/lake/layout"
	"pinpipe/pin"
)

// Job is the daily batch job: for one day it reads the raw zone, cleans
// every record with the shared cleaning rules, keeps the last version of
// each unique_id, replaces the day in the curated zone and then in the
// serving store. Records that fail cleaning go to the rejected zone with
// the reason. Running it again for a day gives the same curated rows and
// the same serving rows.
type Job struct {
	Lake  *lake.Store
	Store ServingStore
	Log   *slog.Logger
	// Readers is how many raw objects are read and cleaned at once
	// (default 4). Each holds one decoded object in memory.
	Readers int
	// Memory is what a run may hold (PINPIPE_BATCH_MEMORY); a day whose
	// cleaned pins would need more is deduplicated through spill files
	// under SpillDir. 0: no limit, the day is always held in memory.
	Memory int64
	// SpillDir holds the spill files of running runs, a directory per run
	// (see RemoveSpills). Needed when Memory is set.
	SpillDir string
	// BeforeCommit, when set, is called once the day's curated and
	// rejected objects are written and before the run's commit marker is,
	// and the objects of earlier runs removed; an error ends the run.
	// Tests use it to hold a run where a reader sees the day mid-run.
	BeforeCommit func(ctx context.Context) error
	// AfterCurated, when set, is called once the curated and rejected
	// zones are replaced and before the serving store is written; an error
	// ends the run. Tests use it to fail at a known point.
	AfterCurated func(ctx context.Context) error
}

// JobResult is what one run of the job did.
type JobResult struct {
	Objects      int   // raw objects read
	RowsIn       int64 // raw records read
	RowsOut      int64 // curated pins (RowsIn - RowsRejected - duplicates)
	RowsRejected int64 // records that failed cleaning
	CuratedKeys  []string
	RejectedKey  string        // "" when nothing was rejected
	Curated      time.Duration // read, clean, dedupe, write the curated and rejected zones
	Serving      time.Duration // write the serving store
}

// Progress is a run's progress in one phase: "read" (raw objects),
// "curated" (rows written to the curated zone), "serving" (rows written to
// the serving store).
type Progress struct {
	Phase       string
	Done, Total int64
}

// Run runs the job for day dt (YYYY-MM-DD) as run runID; progress, when
// not nil, is called as each phase advances (from several goroutines in
// turn, never at once). Returns what the run did so far and, when it
// failed, an error naming the step. A day without raw objects succeeds
// with no rows and leaves the day empty.
func (j *Job) Run(ctx context.Context, dt, runID string, progress func(Progress)) (JobResult, error) {
	var res JobResult
	log := j.Log.With(slog.String("run", runID), slog.String("dt", dt))
	report := func(phase string, done, total int64) {
		if progress != nil {
			progress(Progress{Phase: phase, Done: done, Total: total})
		}
	}
	start := time.Now()

	objs, err := RawObjects(ctx, j.Lake, dt)
	if err != nil {
		return res, fmt.Errorf("batch: list the raw zone of %s: %w", dt, err)
	}
	res.Objects = len(objs)
	if len(objs) == 0 {
		log.Warn("batch: the raw zone holds no objects for this day; the day will be empty")
	}
	report("read", 0, int64(len(objs)))
	var rawBytes int64
	for _, o := range objs {
		rawBytes += o.Size
	}
	if n := spillBuckets(rawBytes, j.Memory); n > 0 && j.SpillDir != "" {
		log.Info("batch: the day does not fit the memory budget; deduplicating through spill files",
			slog.Int64("raw_bytes", rawBytes), slog.Int64("budget", j.Memory), slog.Int("buckets", n))
		return j.runSpilled(ctx, dt, runID, objs, n, res, report, log)
	}
	day, err := j.read(ctx, objs, func(done int) { report("read", int64(done), int64(len(objs))) })
	if err != nil {
		return res, err
	}
	res.RowsIn, res.RowsOut, res.RowsRejected = day.in, int64(len(day.pins)), int64(len(day.rejected))
	log.Info("batch: raw zone read and cleaned", slog.Int("objects", len(objs)), slog.Int64("rows_in", res.RowsIn),
		slog.Int64("rows_out", res.RowsOut), slog.Int64("rows_rejected", res.RowsRejected))

	out := dayOutput{rows: int64(len(day.pins)), read: rawRead(objs),
		writeCurated: func(progress func(int)) ([]string, error) {
			return writeCurated(ctx, j.Lake, dt, day.pins, progress)
		},
		serve: func(progress func(int)) error { return j.Store.ReplaceDay(ctx, dt, day.pins, progress) }}
	if len(day.rejected) > 0 {
		out.writeRejected = func() (string, error) { return writeRejected(ctx, j.Lake, dt, day.rejected) }
	}
	return j.publish(ctx, dt, runID, out, res, start, report, log)
}

// cleanedDay is a day of raw records after cleaning and deduplication.
type cleanedDay struct {
	in       int64
	pins     []pin.Cleaned // one per unique_id, in ingestion order
	rejected []rejectedRow // in partition, offset order
}

// read decodes and cleans the raw objects, Readers at a time, keeping the
// latest version of each unique_id (see pin.Newer). Only the cleaned pins
// and at most Readers decoded objects are in memory at once.
func (j *Job) read(ctx context.Context, objs []RawObject, progress func(done int)) (*cleanedDay, error) {
	day := &cleanedDay{}
	var (
		mu    sync.Mutex
		index = map[string]int{} // unique_id → position in day.pins
		done  int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cmp.Or(j.Readers, 4))
	for _, o := range objs {
		g.Go(func() error {
			recs, err := LoadRaw(gctx, j.Lake, o.Key)
			if err != nil {
				return fmt.Errorf("batch: read the raw zone: %w", err)
			}
			pins, rejected := cleanRecords(recs)
			mu.Lock()
			defer mu.Unlock()
			day.in += int64(len(recs))
			day.rejected = append(day.rejected, rejected...)
			for i := range pins {
				c := &pins[i]
				if at, seen := index[c.UniqueID]; !seen {
					index[c.UniqueID] = len(day.pins)
					day.pins = append(day.pins, *c)
				} else if pin.Newer(c.Lineage(), day.pins[at].Lineage()) {
					day.pins[at] = *c
				}
			}
			done++
			progress(done)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(day.pins, curatedOrder)
	slices.SortFunc(day.rejected, func(a, b rejectedRow) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return day, nil
}

// cleanRecords cleans recs with the shared cleaning rules, in the order
// given. Returns the cleaned pins (every version, not deduplicated) and the
// records that failed cleaning, each with the reason.
func cleanRecords(recs []RawRecord) ([]pin.Cleaned, []rejectedRow) {
	pins := make([]pin.Cleaned, 0, len(recs))
	var rejected []rejectedRow
	for i := range recs {
		r := &recs[i]
		c, err := pin.CleanRaw([]byte(r.Value), pin.Lineage{IngestedAt: r.Timestamp, Partition: r.Partition, Offset: r.Offset})
		if err != nil {
			rejected = append(rejected, rejectedRow{
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(),
				Key: r.Key, Value: r.Value, Reason: reason(err),
			})
			continue
		}
		pins = append(pins, c)
	}
	return pins, rejected
}

// reason returns why a record failed cleaning, as a sentence.
func reason(err error) string {
	var e *pin.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// dayOutput is what replaceZones writes: the curated object (writeCurated
// returns its key, or none for an empty day), the rejected
// object when rejected is set, and the marker's counts.
type dayOutput struct {
	rows          int64
	read          map[int]int64
	writeCurated  func(progress func(done int)) ([]string, error)
	writeRejected func() (string, error) // nil: nothing was rejected
	serve         func(progress func(done int)) error
}

// publish replaces the day's curated and rejected objects, then its
// serving rows, timing and logging each; the run's other steps (reading,
// cleaning, deduplicating) are done and recorded in res, which began at
// start.
func (j *Job) publish(ctx context.Context, dt, runID string, out dayOutput, res JobResult, start time.Time,
	report func(string, int64, int64), log *slog.Logger) (JobResult, error) {
	if err := j.replaceZones(ctx, dt, runID, out, &res, report); err != nil {
		return res, err
	}
	res.Curated = time.Since(start)
	log.Info("batch: curated zone replaced", slog.Int("objects", len(res.CuratedKeys)), slog.Duration("took", res.Curated))

	if j.AfterCurated != nil {
		if err := j.AfterCurated(ctx); err != nil {
			return res, err
		}
	}
	start = time.Now()
	err := out.serve(func(done int) { report("serving", int64(done), res.RowsOut) })
	res.Serving = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("batch: serving tables: %w", err)
	}
	log.Info("batch: serving tables replaced", slog.Int64("rows", res.RowsOut), slog.Duration("took", res.Serving))
	return res, nil
}

// replaceZones writes the day's curated and rejected objects, each
// replacing an earlier run's whole at the day's fixed key, then the run's
// commit marker, then removes what earlier runs left (their markers, the
// old layout's parts, a rejected object this run has no rows for). A
// failed write leaves the day's object as it was; a failure after the
// curated object is written leaves the new rows without this run's marker,
// so the day reads as the new rows and the late-data check measures them
// against the earlier run's marker, which at worst calls a needless re-run.
// When a removal fails the next run of the day removes the rest.
func (j *Job) replaceZones(ctx context.Context, dt, runID string, out dayOutput, res *JobResult, report func(string, int64, int64)) error {
	report("curated", 0, out.rows)
	var err error
	res.CuratedKeys, err = out.writeCurated(func(done int) { report("curated", int64(done), out.rows) })
	if err == nil && out.writeRejected != nil {
		res.RejectedKey, err = out.writeRejected()
	}
	if err == nil && j.BeforeCommit != nil {
		err = j.BeforeCommit(ctx)
	}
	if err == nil {
		err = j.commit(ctx, dt, runID, res.CuratedKeys, int(out.rows), out.read)
	}
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	curated := append(slices.Clone(res.CuratedKeys), layout.CommitKey(dt, runID))
	if _, err = replaceObjects(ctx, j.Lake, layout.Curated.DayPrefix(dt), curated); err != nil {
		return fmt.Errorf("batch: remove the earlier curated objects of %s: %w", dt, err)
	}
	var keep []string
	if res.RejectedKey != "" {
		keep = []string{res.RejectedKey}
	}
	if _, err = replaceObjects(ctx, j.Lake, layout.Rejected.DayPrefix(dt), keep); err != nil {
		return fmt.Errorf("batch: remove the earlier rejected objects of %s: %w", dt, err)
	}
	return nil
}

// commit writes the run's marker for day dt, after all its curated objects:
// from then on readers take the day from this run. The marker also says
// how far into each partition's raw objects of the day the run read, so a
// raw object landed after it tells that the day is stale (see readDay).
func (j *Job) commit(ctx context.Context, dt, runID string, keys []string, rows int, read map[int]int64) error {
	body, err := json.Marshal(commitMarker{Run: runID, Rows: rows, Parts: keys, Raw: read})
	if err != nil {
		return err
	}
	if err := j.Lake.Put(ctx, layout.CommitKey(dt, runID), bytes.NewReader(body)); err != nil {
		return fmt.Errorf("commit %s: %w", dt, err)
	}
	return nil
}

// commitMarker is the body of a day's commit marker (layout.CommitKey).
type commitMarker struct {
	Run   string   `json:"run"`
	Rows  int      `json:"rows"`
	Parts []string `json:"parts"`
	// Raw maps each partition to the last offset of the day's raw objects
	// the run read; nil in markers written before it was kept.
	Raw map[int]int64 `json:"raw"`
}

// rawRead returns, per partition, the last offset of objs; an empty,
// non-nil map when objs is empty.
func rawRead(objs []RawObject) map[int]int64 {
	read := map[int]int64{}
	for _, o := range objs {
		if last, ok := read[o.Partition]; !ok || o.Last > last {
			read[o.Partition] = o.Last
		}
	}
	return read
}
