package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/config"
	"pinpipe/lake"
	"pinpipe/query"
)

// startQuery starts the query lane: a mirror of the lake's raw and curated
// zones under <data dir>/mirror, and DuckDB over it for POST /query. The
// mirror starts filling at once, so the first query is quick.
func (p *Pipeline) startQuery(ctx context.Context) error {
	m, e, err := openQuery(ctx, p.Config, p.Lake, filepath.Join(p.Config.DataDir, "mirror"), p.Registry, p.Log)
	if err != nil {
		return err
	}
	p.onClose(func(context.Context) error { return m.Close() })
	p.onClose(func(context.Context) error { return e.Close() })
	m.Warm()
	p.opts.Query = e
	return nil
}

// openQuery opens the mirror in dir and the engine over it.
func openQuery(ctx context.Context, cfg *config.Config, store *lake.Store, dir string, reg prometheus.Registerer, log *slog.Logger) (*query.Mirror, *query.Engine, error) {
	m, err := query.NewMirror(store, query.MirrorOptions{
		Dir: dir, MaxBytes: cfg.MirrorMaxBytes, Staleness: cfg.MirrorStaleness, Registry: reg, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	tmp := dir + "-spill"
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("query: %w", err)
	}
	e, err := query.Open(ctx, query.Options{
		Mirror: m, Bucket: store.Bucket(), TempDir: tmp,
		Timeout: cfg.QueryTimeout, MemoryLimit: cfg.QueryMemoryLimit, Threads: cfg.QueryThreads,
		MaxConcurrent: cfg.QueryMaxConcurrent, MaxResultBytes: cfg.QueryMaxResult, MaxSpill: cfg.QueryMaxSpill,
		ExportMaxRows: cfg.ExportMaxRows, ExportMaxBytes: cfg.ExportMaxBytes, ExportTimeout: cfg.ExportTimeout,
		Registry: reg, Log: log,
	})
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, e, nil
}

// QueryLane is the query lane on its own, for `pinpipe query`: the lake
// (the embedded S3 server over <data dir>/s3 when PINPIPE_S3_ENDPOINT is
// unset), a mirror and DuckDB, without Kafka or the other lanes.
type QueryLane struct {
	*query.Engine
	closers []func() error
}

// OpenQueryLane opens the query lane for one process. It uses the mirror
// under <data dir>/mirror, or, when a running pinpipe holds that, a
// private one under the data directory that Close removes. Returns an
// error naming S3 when the lake cannot be reached.
func OpenQueryLane(ctx context.Context, cfg *config.Config, log *slog.Logger) (q *QueryLane, err error) {
	q = &QueryLane{}
	defer func() {
		if err != nil {
			q.Close()
		}
	}()
	o := lake.Options{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.AWSRegion, AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey}
	if o.Endpoint == "" {
		e, err := lake.StartEmbedded(filepath.Join(cfg.DataDir, "s3"), "127.0.0.1:0", log)
		if err != nil {
			return nil, err
		}
		q.closers = append(q.closers, func() error { return e.Close(context.Background()) })
		o.Endpoint, o.AccessKey, o.SecretKey = e.Endpoint, lake.EmbeddedKey, lake.EmbeddedSecret
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := lake.Open(tctx, o)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	dir := filepath.Join(cfg.DataDir, "mirror")
	m, e, err := openQuery(ctx, cfg, store, dir, reg, log)
	if errors.Is(err, query.ErrMirrorLocked) {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		if dir, err = os.MkdirTemp(cfg.DataDir, "mirror-cli-"); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		log.Warn("query: a running pinpipe holds the lake mirror, so this command keeps its own copy until it exits (use --url to ask the server instead)",
			slog.String("dir", dir))
		q.closers = append(q.closers, func() error { os.RemoveAll(dir + "-spill"); return os.RemoveAll(dir) })
		m, e, err = openQuery(ctx, cfg, store, dir, reg, log)
	}
	if err != nil {
		return nil, err
	}
	q.Engine = e
	q.closers = append(q.closers, m.Close, e.Close)
	return q, nil
}

// Close closes the engine, the mirror and the embedded S3 server, in that
// order.
func (q *QueryLane) Close() error {
	var errs []error
	for i := len(q.closers) - 1; i >= 0; i-- {
		errs = append(errs, q.closers[i]())
	}
	q.closers = nil
	return errors.Join(errs...)
}
