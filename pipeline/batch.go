package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/batch/standin"
	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/consume"
	"pinpipe/lake"
	"pinpipe/server"
)

// startBatch starts the batch lane's parts among roles: the landing
// (topic → raw zone) with the landing role; the daily job's run control
// with its schedule with the batch role; the serving store, which answers
// the serving reads and the run history, with the api or the batch role.
func (p *Pipeline) startBatch(ctx context.Context, roles config.Roles) error {
	cfg := p.Config
	var flush *consume.Flush
	if roles.Has(config.RoleLanding) {
		flush = &consume.Flush{}
	}
	if roles.Has(config.RoleAPI) || roles.Has(config.RoleBatch) {
		svc, _, err := p.openBatch(ctx, p.Config.BatchCron, flush)
		if err != nil {
			return err
		}
		p.opts.Batch, p.opts.Serving = svc, svc
		if roles.Has(config.RoleBatch) {
			p.schedule = svc
			p.goLane("batch", func() error { return svc.Serve(ctx) })
		} else {
			// Reads only: the server refuses POST /batch/runs without the
			// batch role, so this service never starts a run.
			p.onClose(func(context.Context) error { svc.Close(); return nil })
		}
	}
	if !roles.Has(config.RoleLanding) {
		return nil
	}
	p.goLane("landing", func() error {
		return batch.RunLanding(ctx, batch.LandingOptions{
			Brokers: p.Brokers, Topic: cfg.Topic, Group: cfg.GroupPrefix + "-landing", Lake: p.Lake,
			MaxRecords: cfg.LandingMaxRecords, Interval: cfg.LandingInterval, Flush: flush, Log: p.Log, Registry: p.Registry,
		})
	})
	return nil
}

// landingProgress returns what the batch lane reads of the landing's
// progress: the flush barrier of on-demand runs, which asks flush (the
// in-process landing's; nil without the landing role) to store its open
// batches and waits for the checkpoints to reach the topic's end offsets
// for as long as they advance, giving up when they stall for
// barrierStall (a landing in another instance closes its batches within
// PINPIPE_LANDING_INTERVAL, and its uploads take time on a loaded
// machine) or after ten times that in all; and the completeness of days (PINPIPE_LATE_GRACE), whose watermark
// goes to the registry. Both read the end offsets from the partitions'
// leaders through one reader, closed with the pipeline. Returns nils when
// no Kafka is known to this process (the embedded broker lives only in a
// serving pinpipe).
func (p *Pipeline) landingProgress(flush *consume.Flush) (*batch.Barrier, batch.Completeness) {
	brokers := p.Brokers
	if len(brokers) == 0 {
		brokers = p.Config.KafkaBrokers
	}
	if len(brokers) == 0 || p.Lake == nil {
		return nil, nil
	}
	offsets := broker.NewOffsets(brokers)
	p.onClose(func(context.Context) error { offsets.Close(); return nil })
	barrier := &batch.Barrier{Brokers: brokers, Topic: p.Config.Topic, Lake: p.Lake, Flush: flush,
		Timeout: barrierStall(p.Config.LandingInterval), Offsets: offsets}
	var reg prometheus.Registerer
	if p.Registry != nil {
		reg = p.Registry
	}
	complete := batch.NewCompleteness(batch.CompletenessOptions{Brokers: brokers, Topic: p.Config.Topic, Lake: p.Lake,
		Grace: p.Config.LateGrace, Offsets: offsets, Registry: reg, Log: p.Log})
	return barrier, complete
}

// barrierStall is how long the flush barrier lets the landing store
// nothing more before a run fails: twice the landing interval, plus 15 s
// for an upload and its checkpoint on a busy S3.
func barrierStall(interval time.Duration) time.Duration {
	return 2*interval + 15*time.Second
}

// openBatch opens the serving store — Cassandra, or the embedded stand-in
// under <data dir>/cassandra when PINPIPE_CASSANDRA_HOSTS is unset — to be
// closed after the lanes stop, adds its readiness check ("cassandra"), and
// returns the daily job over it and p.Lake, and the job's run control on
// schedule cron ("" for none), with the landing's progress (see
// landingProgress; flush is the in-process landing's, or nil). Returns an
// error naming Cassandra when it cannot be reached.
func (p *Pipeline) openBatch(ctx context.Context, cron string, flush *consume.Flush) (*batch.Service, *batch.Job, error) {
	cfg := p.Config
	m := batch.NewJobMetrics(p.Registry)
	log := p.Log.With(slog.String("lane", "batch"))
	var store batch.ServingStore
	embedded := len(cfg.CassandraHosts) == 0
	if embedded {
		// The stand-in's DuckDB writes after the job's curated phase has
		// let go of most of its memory. DuckDB's memory_limit bounds its
		// buffers, not all it allocates: at half the run's budget a 1M-pin
		// day's write peaked at 926 MiB, at a quarter 552 MiB, as fast
		// (bench/batch). A quarter, then.
		s, err := standin.Open(ctx, filepath.Join(cfg.DataDir, "cassandra"), cfg.BatchMemory/4, m.ServingWrite)
		if err != nil {
			return nil, nil, err
		}
		store = s
		p.Log.Info("cassandra: using the embedded stand-in tables (set PINPIPE_CASSANDRA_HOSTS for a real cluster)",
			slog.String("data", s.Path()))
	} else {
		// Connecting and each schema statement retry for up to a minute
		// apiece (cassandra.StartupRetry); a busy cluster changing schemas
		// for several pinpipes at once may need a few of those minutes.
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		s, err := cassandra.Open(cctx, cassandra.Options{
			Hosts: cfg.CassandraHosts, Keyspace: cfg.CassandraKeyspace, Log: log, Write: m.ServingWrite,
		})
		if err != nil {
			return nil, nil, err
		}
		store = s
		p.Log.Info("cassandra: using an external cluster", slog.String("hosts", strings.Join(cfg.CassandraHosts, ",")),
			slog.String("keyspace", cfg.CassandraKeyspace))
	}
	p.onClose(func(context.Context) error {
		if err := store.Close(); err != nil {
			return fmt.Errorf("cassandra: close: %w", err)
		}
		return nil
	})
	p.opts.Checks = append(p.opts.Checks, server.Check{Name: "cassandra", Embedded: embedded, Check: store.Check})
	job := &batch.Job{Lake: p.Lake, Store: store, Log: log,
		Memory: cfg.BatchMemory, SpillDir: filepath.Join(cfg.DataDir, "batch-spill")}
	// Spill files outlive a process that crashed mid-run; no run has
	// started yet, so all of them are leftovers.
	if err := job.RemoveSpills(); err != nil {
		return nil, nil, err
	}
	barrier, complete := p.landingProgress(flush)
	o := batch.ServiceOptions{Job: job, Cron: cron, Log: log, Metrics: m, Barrier: barrier, Completeness: complete,
		Wait: cfg.BatchWait, Clock: p.clock, Concurrency: cfg.BatchConcurrency, LateLookback: cfg.LateLookback, RawRetention: cfg.RawRetention}
	if cron != "" {
		// The serving pinpipe checks for late data; `pinpipe batch` does not.
		o.LateCheck = cfg.LateCheckInterval
	}
	svc := batch.NewService(o)
	return svc, job, nil
}

// BatchRunner is what a batch run needs outside a serving pinpipe: the
// lake and the serving store of a configuration, for `pinpipe batch` and
// the benchmark.
type BatchRunner struct {
	Lake    *lake.Store
	Job     *batch.Job
	Service *batch.Service // unscheduled: call RunNow
	p       *Pipeline
}

// OpenBatch opens the lake and the serving store of cfg, each dependency
// left unset as its embedded default under cfg.DataDir, without Kafka, the
// lanes or the HTTP server; metrics go to reg. Returns an error naming the
// dependency that could not be reached, after closing what was opened.
func OpenBatch(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry) (r *BatchRunner, err error) {
	p := &Pipeline{Config: cfg, Log: log, Registry: reg}
	defer func() {
		if err != nil {
			_ = p.closeAll(context.Background())
		}
	}()
	if err := p.startLake(ctx); err != nil {
		return nil, err
	}
	svc, job, err := p.openBatch(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	return &BatchRunner{Lake: p.Lake, Job: job, Service: svc, p: p}, nil
}

// Close stops the run control, then closes the serving store and the
// embedded defaults.
func (r *BatchRunner) Close(ctx context.Context) error {
	r.Service.Close()
	return r.p.closeAll(ctx)
}
