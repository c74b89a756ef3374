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
	"pinpipe/config"
	"pinpipe/lake"
	"pinpipe/server"
)

// startBatch starts the batch lane's parts among roles: the landing
// (topic → raw zone) with the landing role; the daily job's run control
// with its schedule with the batch role; the serving store, which answers
// the serving reads and the run history, with the api or the batch role.
func (p *Pipeline) startBatch(ctx context.Context, roles config.Roles) error {
	cfg := p.Config
	if roles.Has(config.RoleAPI) || roles.Has(config.RoleBatch) {
		svc, _, err := p.openBatch(ctx, p.Config.BatchCron)
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
			MaxRecords: cfg.LandingMaxRecords, Interval: cfg.LandingInterval, Log: p.Log, Registry: p.Registry,
		})
	})
	return nil
}

// openBatch opens the serving store — Cassandra, or the embedded stand-in
// under <data dir>/cassandra when PINPIPE_CASSANDRA_HOSTS is unset — to be
// closed after the lanes stop, adds its readiness check ("cassandra"), and
// returns the daily job over it and p.Lake, and the job's run control on
// schedule cron ("" for none). Returns an error naming Cassandra when it
// cannot be reached.
func (p *Pipeline) openBatch(ctx context.Context, cron string) (*batch.Service, *batch.Job, error) {
	cfg := p.Config
	m := batch.NewJobMetrics(p.Registry)
	log := p.Log.With(slog.String("lane", "batch"))
	var store batch.ServingStore
	embedded := len(cfg.CassandraHosts) == 0
	if embedded {
		s, err := standin.Open(ctx, filepath.Join(cfg.DataDir, "cassandra"), m.ServingWrite)
		if err != nil {
			return nil, nil, err
		}
		store = s
		p.Log.Info("cassandra: using the embedded stand-in tables (set PINPIPE_CASSANDRA_HOSTS for a real cluster)",
			slog.String("data", s.Path()))
	} else {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
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
	job := &batch.Job{Lake: p.Lake, Store: store, Log: log}
	svc := batch.NewService(batch.ServiceOptions{Job: job, Cron: cron, Log: log, Metrics: m})
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
	svc, job, err := p.openBatch(ctx, "")
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
