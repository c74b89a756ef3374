package batch

import (
	"bufio"
	"cmp"
	"container/heap"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"pinpipe/pin"
)

// A day whose cleaned pins would not fit the run's memory budget
// (Job.Memory) is deduplicated through files instead (spillDay):
//
//  1. every raw object is read and cleaned, Readers at a time, and each
//     cleaned pin is appended to one of n bucket files chosen by a hash of
//     its unique_id, so every version of a pin lands in the same bucket;
//     rejected records go to one more file, in the raw objects' order;
//  2. each bucket is loaded, deduplicated with pin.Newer and its winners
//     sorted in the curated order into a run file, dedupeParallel buckets
//     at a time;
//  3. the run files are merged, each time the day's pins are needed (for
//     the curated zone, then for the serving store), so only a chunk of
//     each run is in memory at once.
//
// n is chosen so one bucket's pins fit a share of the budget. The files
// live in a directory of their own under Job.SpillDir, removed when the
// run ends, whichever way; RemoveSpills removes what a crashed process
// left.

// dedupeParallel returns how many buckets are deduplicated at once: one a
// core, at most 8, past which the budget's shares (see spillBuckets) grow small
// and the run files many for little more speed.
func dedupeParallel() int { return max(1, min(runtime.GOMAXPROCS(0), 8)) }

// spillChunk is how many pins are encoded as one value: large enough
// that the per-value cost vanishes, small enough that a run file's
// reader holds little.
const spillChunk = 1024

// Memory a cleaned pin takes, as a multiple of its share of the raw
// zone's (zstd-compressed) bytes: decoded and cleaned pins, the dedupe
// index, and the garbage collector's headroom. Measured on synthetic pins
// (bench/batch, 1M pins, 125 MB raw): peak RSS up to the serving write
// 2,662 MiB, about 21 times; rounded up.
const rawExpansion = 24

// RemoveSpills removes every spill directory under j.SpillDir: what runs
// of a process that stopped without cleaning up left. Call it before any
// run starts. Returns nil when there is nothing to remove.
func (j *Job) RemoveSpills() error {
	if j.SpillDir == "" {
		return nil
	}
	if err := os.RemoveAll(j.SpillDir); err != nil {
		return fmt.Errorf("batch: remove the spill files of earlier runs: %w", err)
	}
	return nil
}

// spillBuckets returns how many buckets a day of rawBytes needs to be
// deduplicated within memory bytes; 0 when the whole day fits and nothing
// needs spilling.
func spillBuckets(rawBytes, memory int64) int {
	if memory <= 0 {
		return 0
	}
	need := rawBytes * rawExpansion
	if need <= memory {
		return 0
	}
	// The buckets deduplicated at once share a quarter of the budget: the
	// rest is the readers' decoded objects, the writers' buffers and the
	// collector's slack.
	share := max(memory/4/int64(dedupeParallel()), 1)
	return int(min((need+share-1)/share, 4096))
}

// bucketOf returns the bucket of uniqueID among n: FNV-1a of its
// lower-case form, so versions differing only in case meet.
func bucketOf(uniqueID string, n int) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(uniqueID); i++ {
		c := uniqueID[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

// Spilled pins use their own codec (spillcodec.go). Rejected records keep
// the raw bytes, which need not be UTF-8, and have no pointers: gob.

// encoder is a spill codec's writer of chunks.
type encoder interface{ Encode(any) error }

// decoder is a spill codec's reader of chunks.
type decoder interface{ Decode(any) error }

// codec makes a spill file's encoder and decoder.
type codec struct {
	enc func(io.Writer) encoder
	dec func(io.Reader) decoder
}

var (
	pinCodec = codec{
		func(w io.Writer) encoder { return &pinEncoder{w: w} },
		func(r io.Reader) decoder { return newPinDecoder(r) },
	}
	gobCodec = codec{func(w io.Writer) encoder { return gob.NewEncoder(w) }, func(r io.Reader) decoder { return gob.NewDecoder(r) }}
)

// spillFile is a file of encoded chunks.
type spillFile struct {
	f   *os.File
	w   *bufio.Writer
	enc encoder
}

func createSpill(path string, c codec) (*spillFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &spillFile{f: f, w: w, enc: c.enc(w)}, nil
}

func (s *spillFile) put(v any) error { return s.enc.Encode(v) }

// close flushes and closes the file; returns the first error.
func (s *spillFile) close() error {
	return errors.Join(s.w.Flush(), s.f.Close())
}

// readChunks calls fn with each chunk of T in the spill file at path, in
// the order written. Returns fn's error, or one naming a damaged file.
func readChunks[T any](path string, c codec, fn func([]T) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := c.dec(bufio.NewReaderSize(f, 64<<10))
	for {
		var chunk []T
		if err := dec.Decode(&chunk); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
}

// spilledDay is a day of raw records cleaned and deduplicated into sorted
// run files.
type spilledDay struct {
	dir        string
	runs       []string // run files, each sorted in the curated order
	rejected   string   // the rejected records' file, in partition, offset order
	in, out    int64
	rejects    int64
	categories []string // distinct, in no particular order
	read       map[int]int64
}

// spillDay reads, cleans and deduplicates the raw objects through n bucket
// files in a new directory under j.SpillDir (see above). progress is
// called as each raw object is read. On error the directory is removed.
func (j *Job) spillDay(ctx context.Context, runID string, objs []RawObject, n int, progress func(done int)) (day *spilledDay, err error) {
	if err := os.MkdirAll(j.SpillDir, 0o755); err != nil {
		return nil, fmt.Errorf("batch: spill directory: %w", err)
	}
	dir, err := os.MkdirTemp(j.SpillDir, runID+"-")
	if err != nil {
		return nil, fmt.Errorf("batch: spill directory: %w", err)
	}
	day = &spilledDay{dir: dir, rejected: filepath.Join(dir, "rejected")}
	defer func() {
		if err != nil {
			day.remove()
		}
	}()
	buckets := make([]string, n)
	for i := range buckets {
		buckets[i] = filepath.Join(dir, fmt.Sprintf("bucket-%04d", i))
	}
	if err := j.spillRead(ctx, objs, buckets, day, progress); err != nil {
		return nil, err
	}
	// dedupeParallel buckets at a time, each into its own run file and
	// category set.
	day.runs = make([]string, n)
	outs := make([]int64, n)
	cats := make([]map[string]bool, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dedupeParallel())
	for i, b := range buckets {
		day.runs[i] = filepath.Join(dir, fmt.Sprintf("run-%04d", i))
		cats[i] = map[string]bool{}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			out, err := dedupeBucket(b, day.runs[i], cats[i])
			if err != nil {
				return fmt.Errorf("batch: deduplicate spilled bucket %d of %d: %w", i+1, n, err)
			}
			outs[i] = out
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for i := range buckets {
		day.out += outs[i]
		maps.Copy(all, cats[i])
	}
	day.categories = slices.Sorted(maps.Keys(all))
	return day, nil
}

// remove deletes the day's spill directory, best effort.
func (d *spilledDay) remove() { _ = os.RemoveAll(d.dir) }

// objectResult is one raw object, cleaned.
type objectResult struct {
	in       int
	pins     []pin.Cleaned
	rejected []rejectedRow
	err      error
}

// spillRead reads and cleans objs, Readers at a time, and appends each
// object's pins to their buckets and its rejected records to the rejected
// file, in objs' order, so each bucket holds a pin's versions in the order
// the in-memory read meets them and the rejected records come in
// partition, offset order. At most Readers objects are in memory.
func (j *Job) spillRead(ctx context.Context, objs []RawObject, buckets []string, day *spilledDay, progress func(done int)) error {
	files := make([]*spillFile, len(buckets))
	defer func() {
		for _, f := range files {
			if f != nil {
				_ = f.close()
			}
		}
	}()
	for i, b := range buckets {
		f, err := createSpill(b, pinCodec)
		if err != nil {
			return fmt.Errorf("batch: spill: %w", err)
		}
		files[i] = f
	}
	rej, err := createSpill(day.rejected, gobCodec)
	if err != nil {
		return fmt.Errorf("batch: spill: %w", err)
	}
	defer rej.close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := cmp.Or(j.Readers, 4)
	slots := make(chan struct{}, readers)
	results := make([]chan objectResult, len(objs))
	for i := range results {
		results[i] = make(chan objectResult, 1)
	}
	go func() {
		for i, o := range objs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				recs, err := LoadRaw(ctx, j.Lake, o.Key)
				if err != nil {
					results[i] <- objectResult{err: fmt.Errorf("batch: read the raw zone: %w", err)}
					return
				}
				pins, rejected := cleanRecords(recs)
				results[i] <- objectResult{in: len(recs), pins: pins, rejected: rejected}
			}()
		}
	}()
	per := make([][]pin.Cleaned, len(buckets))
	for i := range objs {
		var r objectResult
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if r.err != nil {
			return r.err
		}
		day.in += int64(r.in)
		day.rejects += int64(len(r.rejected))
		for k := range per {
			per[k] = per[k][:0]
		}
		for _, p := range r.pins {
			b := bucketOf(p.UniqueID, len(buckets))
			per[b] = append(per[b], p)
		}
		for k, ps := range per {
			for len(ps) > 0 {
				n := min(len(ps), spillChunk)
				if err := files[k].put(ps[:n]); err != nil {
					return fmt.Errorf("batch: spill: %w", err)
				}
				ps = ps[n:]
			}
		}
		if len(r.rejected) > 0 {
			if err := rej.put(r.rejected); err != nil {
				return fmt.Errorf("batch: spill: %w", err)
			}
		}
		progress(i + 1)
	}
	for i, f := range files {
		files[i] = nil
		if err := f.close(); err != nil {
			return fmt.Errorf("batch: spill: %w", err)
		}
	}
	if err := rej.close(); err != nil {
		return fmt.Errorf("batch: spill: %w", err)
	}
	return nil
}

// dedupeBucket keeps the latest version of each unique_id in the bucket
// file (pin.Newer; of equal ones, the first), writes them to the run file
// in the curated order and removes the bucket file. Adds the winners'
// categories to cats. Returns the number of winners.
func dedupeBucket(bucket, run string, cats map[string]bool) (int64, error) {
	var (
		pins  []pin.Cleaned
		index = map[string]int{}
	)
	err := readChunks(bucket, pinCodec, func(chunk []pin.Cleaned) error {
		for i := range chunk {
			c := &chunk[i]
			if at, seen := index[c.UniqueID]; !seen {
				index[c.UniqueID] = len(pins)
				pins = append(pins, *c)
			} else if pin.Newer(c.Lineage(), pins[at].Lineage()) {
				pins[at] = *c
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	index = nil
	if err := os.Remove(bucket); err != nil {
		return 0, err
	}
	slices.SortFunc(pins, curatedOrder)
	f, err := createSpill(run, pinCodec)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(pins); i += spillChunk {
		for _, p := range pins[i:min(i+spillChunk, len(pins))] {
			cats[p.Category] = true
		}
		if err := f.put(pins[i:min(i+spillChunk, len(pins))]); err != nil {
			_ = f.close()
			return 0, err
		}
	}
	return int64(len(pins)), f.close()
}

// curatedOrder orders a day's curated pins: objects finish in any order,
// and sorting makes the curated objects of two runs over the same raw zone
// identical. It orders different pins, so it is not the version order.
func curatedOrder(a, b pin.Cleaned) int { return curatedCompare(&a, &b) }

// curatedCompare is curatedOrder without copying the pins, for the merge's
// heap, which compares far more often than it moves.
func curatedCompare(a, b *pin.Cleaned) int {
	return cmp.Or(a.IngestedAt.Compare(b.IngestedAt), cmp.Compare(a.KafkaPartition, b.KafkaPartition),
		cmp.Compare(a.KafkaOffset, b.KafkaOffset))
}

// merge returns a source of the day's pins in the curated order, merged
// from the run files; close it when done.
func (d *spilledDay) merge() (*mergedRuns, error) {
	m := &mergedRuns{}
	for _, path := range d.runs {
		f, err := os.Open(path)
		if err != nil {
			m.close()
			return nil, err
		}
		r := &runReader{f: f, dec: pinCodec.dec(bufio.NewReaderSize(f, 32<<10))}
		m.readers = append(m.readers, r)
		ok, err := r.advance()
		if err != nil {
			m.close()
			return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
		if ok {
			m.heap = append(m.heap, r)
		}
	}
	heap.Init(&m.heap)
	return m, nil
}

// runReader reads one run file a chunk at a time.
type runReader struct {
	f     *os.File
	dec   decoder
	chunk []pin.Cleaned
	at    int
}

// advance moves to the next pin; false at the end of the file.
func (r *runReader) advance() (bool, error) {
	r.at++
	if r.at < len(r.chunk) {
		return true, nil
	}
	r.chunk, r.at = nil, 0
	for len(r.chunk) == 0 {
		// A fresh slice each time: the merge may still hold pins of
		// the chunk before.
		var chunk []pin.Cleaned
		err := r.dec.Decode(&chunk)
		r.chunk = chunk
		if err == io.EOF {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	return true, nil
}

// mergedRuns yields the pins of several run files in the curated order.
type mergedRuns struct {
	readers []*runReader
	heap    runHeap
}

// next fills buf (up to its capacity) with the next pins and returns it;
// an empty slice at the end.
func (m *mergedRuns) next(buf []pin.Cleaned) ([]pin.Cleaned, error) {
	buf = buf[:0]
	for len(buf) < cap(buf) && len(m.heap) > 0 {
		r := m.heap[0]
		buf = append(buf, r.chunk[r.at])
		ok, err := r.advance()
		if err != nil {
			return nil, fmt.Errorf("read a spilled run: %w", err)
		}
		if ok {
			heap.Fix(&m.heap, 0)
		} else {
			heap.Pop(&m.heap)
		}
	}
	return buf, nil
}

func (m *mergedRuns) close() {
	for _, r := range m.readers {
		_ = r.f.Close()
	}
}

// prefetched is a chunk a prefetch goroutine read.
type prefetched struct {
	pins []pin.Cleaned
	err  error
}

// prefetch calls next in a goroutine of its own, one chunk ahead of the
// caller, so that reading the runs (decoding, merging) overlaps with what
// the caller does with the chunk before (encoding Parquet). The returned
// source ignores the buffer it is given and returns chunks of up to
// spillChunk pins; a chunk stays valid until the next call, as with next.
// Call stop when done, before closing what next reads: it waits for the
// goroutine.
func prefetch(next func([]pin.Cleaned) ([]pin.Cleaned, error)) (source func([]pin.Cleaned) ([]pin.Cleaned, error), stop func()) {
	ch := make(chan prefetched, 1)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer close(ch)
		// Three buffers: the caller's chunk, the one in ch and the one
		// being filled.
		var bufs [3][]pin.Cleaned
		for k := 0; ; k = (k + 1) % len(bufs) {
			if bufs[k] == nil {
				bufs[k] = make([]pin.Cleaned, 0, spillChunk)
			}
			pins, err := next(bufs[k])
			select {
			case ch <- prefetched{pins, err}:
			case <-done:
				return
			}
			if err != nil || len(pins) == 0 {
				return
			}
		}
	}()
	var ended prefetched
	source = func([]pin.Cleaned) ([]pin.Cleaned, error) {
		if ended.err != nil {
			return nil, ended.err
		}
		r, ok := <-ch
		if !ok || (r.err == nil && len(r.pins) == 0) {
			return nil, nil
		}
		if r.err != nil {
			ended = r
		}
		return r.pins, r.err
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		<-exited
	}
	return source, stop
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	return curatedCompare(&h[i].chunk[h[i].at], &h[j].chunk[h[j].at]) < 0
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

// runSpilled is Run's second half for a day deduplicated through n spill
// buckets (see spillDay): the same zones, marker and serving rows as the
// in-memory path, with the spill files removed however it ends.
func (j *Job) runSpilled(ctx context.Context, dt, runID string, objs []RawObject, n int, res JobResult, report func(string, int64, int64), log *slog.Logger) (JobResult, error) {
	start := time.Now()
	day, err := j.spillDay(ctx, runID, objs, n, func(done int) { report("read", int64(done), int64(len(objs))) })
	if err != nil {
		return res, err
	}
	defer day.remove()
	res.RowsIn, res.RowsOut, res.RowsRejected = day.in, day.out, day.rejects
	log.Info("batch: raw zone read, cleaned and deduplicated through spill files", slog.Int("objects", len(objs)),
		slog.Int64("rows_in", res.RowsIn), slog.Int64("rows_out", res.RowsOut), slog.Int64("rows_rejected", res.RowsRejected))

	out := dayOutput{rows: day.out, read: rawRead(objs),
		writeCurated: func(progress func(int)) ([]string, error) {
			m, err := day.merge()
			if err != nil {
				return nil, fmt.Errorf("curated: %w", err)
			}
			defer m.close()
			next, stop := prefetch(m.next)
			defer stop()
			return writeCuratedFrom(ctx, j.Lake, dt, next, progress)
		},
		serve: func(progress func(int)) error {
			m, err := day.merge()
			if err != nil {
				return err
			}
			defer m.close()
			return j.Store.ReplaceDayFrom(ctx, dt, day.categories, m.next, progress)
		}}
	if day.rejects > 0 {
		out.writeRejected = func() (string, error) { return writeRejectedFrom(ctx, j.Lake, dt, day.rejected) }
	}
	return j.publish(ctx, dt, runID, out, res, start, report, log)
}
