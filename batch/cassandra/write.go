package cassandra

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/internal/retry"
	"pinpipe/pin"
)

// cassandraBatchBytes caps the values in one unlogged batch of
// pins_by_category rows, below Cassandra's default
// batch_size_warn_threshold (5 KiB), so a day's writes do not fill its log.
const cassandraBatchBytes = 4 << 10

// cassandraReadKeys is how many unique_ids one read of the stored versions
// names in its IN list: few enough for one coordinator to gather, many
// enough that the reads cost a small part of the writes.
const cassandraReadKeys = 100

// ReplaceDay implements batch.ServingStore. Unlike the stand-in it is not one
// transaction: it records the day's categories, deletes the day's
// pins_by_category partitions (this run's categories and the previous
// run's), reads the stored versions of the day's pins (see winners), then
// writes the pins that win into pins (one prepared statement each) and
// every pin into pins_by_category (unlogged batches within one partition),
// Concurrency writes in flight, each retried with the Retry policy. A
// reader may see the day's partitions empty or partly filled meanwhile.
func (c *Store) ReplaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error {
	once := pins
	whole := func([]pin.Cleaned) ([]pin.Cleaned, error) {
		out := once
		once = nil
		return out, nil
	}
	return c.ReplaceDayFrom(ctx, dt, batch.Categories(pins), whole, progress)
}

// servingChunk is how many pins ReplaceDayFrom reads and writes at once.
const servingChunk = 20_000

// ReplaceDayFrom implements batch.ServingStore as ReplaceDay does, reading
// the stored versions and writing the pins servingChunk at a time.
func (c *Store) ReplaceDayFrom(ctx context.Context, dt string, categories []string, next batch.PinChunks, progress func(done int)) error {
	if err := c.replaceDay(ctx, dt, categories, next, progress); err != nil {
		return fmt.Errorf("cassandra at %s did not take the writes of %s: %w; check that Cassandra is up (GET /readyz), then run the day again (POST /batch/runs or pinpipe batch --date %s)",
			strings.Join(c.o.Hosts, ","), dt, err, dt)
	}
	return nil
}

func (c *Store) replaceDay(ctx context.Context, dt string, cats []string, next batch.PinChunks, progress func(done int)) error {
	var old []string
	err := c.retry(ctx, "read the categories of "+dt, func() error {
		var err error
		old, err = c.dayCategories(ctx, dt)
		return err
	})
	if err != nil {
		return err
	}
	// Record the new categories before deleting, so a failure at any later
	// point leaves every partition the day may hold listed for the next run.
	if err := c.each(ctx, len(cats), func(ctx context.Context, i int) error {
		return c.exec(ctx, "record category "+cats[i], `INSERT INTO `+c.ks+`.categories_by_dt (dt, category) VALUES (?, ?)`, dt, cats[i])
	}); err != nil {
		return err
	}
	touched := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(old), cats...))))
	if err := c.each(ctx, len(touched), func(ctx context.Context, i int) error {
		return c.exec(ctx, "delete partition "+touched[i], `DELETE FROM `+c.ks+`.pins_by_category WHERE category = ? AND dt = ?`, touched[i], dt)
	}); err != nil {
		return err
	}

	// The deletes above carry client timestamps from before every insert
	// below, so they never shadow this run's rows.
	written := 0
	buf := make([]pin.Cleaned, 0, servingChunk)
	for {
		pins, err := next(buf)
		if err != nil {
			return err
		}
		if len(pins) == 0 {
			break
		}
		if err := c.writePins(ctx, dt, pins, &written, progress); err != nil {
			return err
		}
	}

	var gone []string
	for _, cat := range old {
		if !slices.Contains(cats, cat) {
			gone = append(gone, cat)
		}
	}
	return c.each(ctx, len(gone), func(ctx context.Context, i int) error {
		return c.exec(ctx, "forget category "+gone[i], `DELETE FROM `+c.ks+`.categories_by_dt WHERE dt = ? AND category = ?`, dt, gone[i])
	})
}

// writePins writes pins, of one day, into pins (those that win, see
// winners) and pins_by_category, adding to *written and reporting it.
func (c *Store) writePins(ctx context.Context, dt string, pins []pin.Cleaned, written *int, progress func(done int)) error {
	stamps, err := c.winners(ctx, pins)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	insertPin := `INSERT INTO ` + c.ks + `.pins (` + pin.ColumnList("", pin.Schema) + `, dt) VALUES (` +
		strings.Repeat("?, ", len(pin.Schema)) + `?) USING TIMESTAMP ?`
	batches := byCategoryBatches(pins)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for i := range pins {
		p := &pins[i]
		g.Go(func() error {
			if stamps[i] != 0 {
				err := c.exec(gctx, "write pin "+p.UniqueID, insertPin, append(p.Values(), dt, stamps[i])...)
				if err != nil {
					return err
				}
			}
			if progress != nil {
				mu.Lock()
				if *written++; *written%2000 == 0 {
					progress(*written)
				}
				mu.Unlock()
			}
			return nil
		})
	}
	for _, b := range batches {
		g.Go(func() error { return c.writeBatch(gctx, dt, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if progress != nil {
		progress(*written)
	}
	return nil
}

// winners decides, with pin.Newer, which of pins replace the version pins
// holds, and returns the write timestamp of each (in microseconds; 0 for
// a pin that does not win, which is not written to pins).
//
// Cassandra keeps the write with the highest timestamp, and cannot compare
// Kafka offsets itself, so the order is decided here: the stored lineage
// and write time of the day's unique_ids are read first, cassandraReadKeys
// at a time. A winner is written at its ingested_at, or just above the
// stored write time when that is later: a version that is newer by offset
// but stamped earlier by its producer's clock must still replace the
// stored one. A pin equal to or older than the stored version is left
// alone, so a re-run changes nothing.
//
// Between the read and the write another process may write the same
// unique_id: a run of another day, which holds its own day lock. Then the
// write with the higher timestamp stays, which may be the older version;
// running either day again repairs it.
func (c *Store) winners(ctx context.Context, pins []pin.Cleaned) ([]int64, error) {
	type stored struct {
		lin       pin.Lineage
		writeTime int64
	}
	var mu sync.Mutex
	have := make(map[string]stored, len(pins))
	read := `SELECT unique_id, ingested_at, kafka_partition, kafka_offset, writetime(category) FROM ` + c.ks + `.pins WHERE unique_id IN ?`
	chunks := (len(pins) + cassandraReadKeys - 1) / cassandraReadKeys
	err := c.each(ctx, chunks, func(ctx context.Context, n int) error {
		part := pins[n*cassandraReadKeys : min((n+1)*cassandraReadKeys, len(pins))]
		ids := make([]string, len(part))
		for i := range part {
			ids[i] = part[i].UniqueID
		}
		return c.retry(ctx, fmt.Sprintf("read the stored versions of %d pins", len(ids)), func() error {
			start := time.Now()
			iter := c.session.Query(read, ids).Idempotent(true).IterContext(ctx)
			var (
				id string
				s  stored
			)
			found := map[string]stored{}
			for iter.Scan(&id, &s.lin.IngestedAt, &s.lin.Partition, &s.lin.Offset, &s.writeTime) {
				found[id] = s
			}
			if err := iter.Close(); err != nil {
				return err
			}
			c.o.Write.Observe(time.Since(start).Seconds())
			mu.Lock()
			maps.Copy(have, found)
			mu.Unlock()
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	stamps := make([]int64, len(pins))
	for i := range pins {
		p := &pins[i]
		stamps[i] = max(p.IngestedAt.UnixMicro(), 1)
		if s, ok := have[p.UniqueID]; ok {
			if !pin.Newer(p.Lineage(), s.lin) {
				stamps[i] = 0
			} else if s.writeTime >= stamps[i] {
				stamps[i] = s.writeTime + 1
			}
		}
	}
	return stamps, nil
}

func (c *Store) dayCategories(ctx context.Context, dt string) ([]string, error) {
	iter := c.session.Query(`SELECT category FROM `+c.ks+`.categories_by_dt WHERE dt = ?`, dt).IterContext(ctx)
	var out []string
	var cat string
	for iter.Scan(&cat) {
		out = append(out, cat)
	}
	return out, iter.Close()
}

// writeBatch writes rows of one pins_by_category partition as one unlogged
// batch. NULLs are left unset rather than written: the partition was just
// deleted, and unset values make no tombstones.
func (c *Store) writeBatch(ctx context.Context, dt string, rows []*pin.Cleaned) error {
	stmt := `INSERT INTO ` + c.ks + `.pins_by_category (` + pin.ColumnList("", pin.Schema) + `, dt) VALUES (` +
		strings.Repeat("?, ", len(pin.Schema)) + `?)`
	return c.retry(ctx, fmt.Sprintf("write %d pins of %s to pins_by_category", len(rows), rows[0].Category), func() error {
		b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		for _, p := range rows {
			args := make([]any, 0, len(pin.Schema)+1)
			for _, col := range pin.Schema {
				switch v := col.Value(p); {
				case col.Name == "follower_count":
					args = append(args, batch.FollowersKey(p.FollowerCount))
				case v == nil:
					args = append(args, gocql.UnsetValue)
				default:
					args = append(args, v)
				}
			}
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Idempotent: true, Args: append(args, dt)})
		}
		start := time.Now()
		err := b.ExecContext(ctx)
		c.o.Write.Observe(time.Since(start).Seconds())
		return err
	})
}

// byCategoryBatches groups pins by category (all of one day, so by
// pins_by_category partition) into batches of at most cassandraBatchBytes
// of values each.
func byCategoryBatches(pins []pin.Cleaned) [][]*pin.Cleaned {
	open := map[string]int{} // category → index of its batch being filled
	size := map[string]int{}
	var out [][]*pin.Cleaned
	for i := range pins {
		p := &pins[i]
		n := rowBytes(p)
		at, ok := open[p.Category]
		if !ok || size[p.Category]+n > cassandraBatchBytes {
			at = len(out)
			out = append(out, nil)
			open[p.Category], size[p.Category] = at, 0
		}
		out[at] = append(out[at], p)
		size[p.Category] += n
	}
	return out
}

// rowBytes estimates a pins_by_category row's size in a batch.
func rowBytes(p *pin.Cleaned) int {
	n := 64
	for _, col := range pin.Schema {
		switch v := col.Value(p).(type) {
		case string:
			n += len(v)
		case []string:
			for _, t := range v {
				n += 4 + len(t)
			}
		}
	}
	return n
}

// exec runs one statement with retries, timing each try.
func (c *Store) exec(ctx context.Context, what, stmt string, args ...any) error {
	return c.retry(ctx, what, func() error {
		start := time.Now()
		err := c.session.Query(stmt, args...).Idempotent(true).ExecContext(ctx)
		c.o.Write.Observe(time.Since(start).Seconds())
		return err
	})
}

func (c *Store) retry(ctx context.Context, what string, op func() error) error {
	return retry.Do(ctx, c.o.Retry, c.o.Log, "cassandra: "+what, op)
}

// each runs f(0..n-1), Concurrency at a time; the first error cancels the
// rest and is returned.
func (c *Store) each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for i := range n {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}
