package batch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/sync/errgroup"

	"pinpipe/internal/retry"
	"pinpipe/pin"
)

// cassandraBatchBytes caps the values in one unlogged batch of
// pins_by_category rows, below Cassandra's default
// batch_size_warn_threshold (5 KiB), so a day's writes do not fill its log.
const cassandraBatchBytes = 4 << 10

// ReplaceDay implements ServingStore. Unlike the stand-in it is not one
// transaction: it records the day's categories, deletes the day's
// pins_by_category partitions (this run's categories and the previous
// run's), then writes every pin into pins (one prepared statement each)
// and pins_by_category (unlogged batches within one partition),
// Concurrency writes in flight, each retried with the Retry policy. A
// reader may see the day's partitions empty or partly filled meanwhile.
func (c *Cassandra) ReplaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error {
	if err := c.replaceDay(ctx, dt, pins, progress); err != nil {
		return fmt.Errorf("cassandra at %s did not take the writes of %s: %w; check that Cassandra is up (GET /readyz), then run the day again (POST /batch/runs or pinpipe batch --date %s)",
			strings.Join(c.o.Hosts, ","), dt, err, dt)
	}
	return nil
}

func (c *Cassandra) replaceDay(ctx context.Context, dt string, pins []pin.Cleaned, progress func(done int)) error {
	cats := categoriesOf(pins)
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
	var (
		mu      sync.Mutex
		written int
	)
	insertPin := `INSERT INTO ` + c.ks + `.pins (id_index, title, category, unique_id, description, poster_name,
		follower_count, tag_list, tags, is_image_or_video, image_src, downloaded, save_location, ingested_at,
		kafka_partition, kafka_offset, dt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`
	batches := byCategoryBatches(pins)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for i := range pins {
		p := &pins[i]
		g.Go(func() error {
			// The pin's ingested_at is the write's timestamp: the later
			// version of a pin wins in pins whatever the order of runs.
			err := c.exec(gctx, "write pin "+p.UniqueID, insertPin, p.IDIndex, p.Title, p.Category, p.UniqueID,
				p.Description, p.PosterName, p.FollowerCount, p.TagList, p.Tags, p.IsImageOrVideo, p.ImageSrc,
				p.Downloaded, p.SaveLocation, p.IngestedAt, p.KafkaPartition, p.KafkaOffset, dt, p.IngestedAt.UnixMicro())
			if err != nil {
				return err
			}
			if progress != nil {
				mu.Lock()
				if written++; written%2000 == 0 || written == len(pins) {
					progress(written)
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

func (c *Cassandra) dayCategories(ctx context.Context, dt string) ([]string, error) {
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
func (c *Cassandra) writeBatch(ctx context.Context, dt string, rows []*pin.Cleaned) error {
	stmt := `INSERT INTO ` + c.ks + `.pins_by_category (category, dt, follower_count, unique_id, id_index, title,
		description, poster_name, tag_list, tags, is_image_or_video, image_src, downloaded, save_location,
		ingested_at, kafka_partition, kafka_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	return c.retry(ctx, fmt.Sprintf("write %d pins of %s to pins_by_category", len(rows), rows[0].Category), func() error {
		b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
		for _, p := range rows {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: stmt, Idempotent: true, Args: []any{
				p.Category, dt, followersKey(p.FollowerCount), p.UniqueID, p.IDIndex, unset(p.Title),
				unset(p.Description), unset(p.PosterName), unset(p.TagList), p.Tags, unset(p.IsImageOrVideo),
				unset(p.ImageSrc), unset(p.Downloaded), unset(p.SaveLocation), p.IngestedAt, p.KafkaPartition,
				p.KafkaOffset,
			}})
		}
		start := time.Now()
		err := b.ExecContext(ctx)
		c.o.Write.Observe(time.Since(start).Seconds())
		return err
	})
}

// unset returns *p, or gocql.UnsetValue when p is nil.
func unset[T any](p *T) any {
	if p == nil {
		return gocql.UnsetValue
	}
	return *p
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
	n := 64 + len(p.Category) + len(p.UniqueID)
	for _, s := range []*string{p.Title, p.Description, p.PosterName, p.TagList, p.IsImageOrVideo, p.ImageSrc, p.SaveLocation} {
		if s != nil {
			n += len(*s)
		}
	}
	for _, t := range p.Tags {
		n += 4 + len(t)
	}
	return n
}

// exec runs one statement with retries, timing each try.
func (c *Cassandra) exec(ctx context.Context, what, stmt string, args ...any) error {
	return c.retry(ctx, what, func() error {
		start := time.Now()
		err := c.session.Query(stmt, args...).Idempotent(true).ExecContext(ctx)
		c.o.Write.Observe(time.Since(start).Seconds())
		return err
	})
}

func (c *Cassandra) retry(ctx context.Context, what string, op func() error) error {
	return retry.Do(ctx, c.o.Retry, c.o.Log, "cassandra: "+what, op)
}

// each runs f(0..n-1), Concurrency at a time; the first error cancels the
// rest and is returned.
func (c *Cassandra) each(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for i := range n {
		g.Go(func() error { return f(gctx, i) })
	}
	return g.Wait()
}
