// Package pipeline assembles pinpipe from its configuration: it picks each
// dependency's real or embedded implementation (in this one place), starts
// the lanes and the HTTP server, and stops them in order so that no accepted
// pin is lost.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"pinpipe/batch"
	"pinpipe/broker"
	"pinpipe/config"
	"pinpipe/ingest"
	"pinpipe/internal/buildinfo"
	"pinpipe/lake"
	"pinpipe/server"
)

// Pipeline is a running pinpipe.
type Pipeline struct {
	Config   *config.Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	Brokers  []string
	Lake     *lake.Store
	Producer *ingest.Producer
	Server   *server.Server
	Addr     string // the HTTP server's bound address

	opts     server.Options  // what the lanes register for the server
	clock    clockwork.Clock // the batch lane's schedule, wait and checks; nil: the real clock
	schedule *batch.Service  // the daily schedule, with the batch role
	lanes    *errgroup.Group
	stopLane context.CancelFunc
	httpSrv  *http.Server
	httpDone chan error
	closers  []func(context.Context) error // closed last-in first-out
}

// Option changes how Start assembles a pipeline; the configuration says
// everything a user sets, options only what tests inject.
type Option func(*Pipeline)

// WithClock drives the batch lane's schedule, its wait for completeness,
// the late-data checks and the completeness it asks for with clock instead
// of the real one, so a test can move time across a day's end.
func WithClock(clock clockwork.Clock) Option {
	return func(p *Pipeline) { p.clock = clock }
}

// Start brings up the dependencies (embedded defaults for those left
// unset), the lanes and the HTTP server. Returns an error naming the
// dependency that could not be reached; whatever was started is stopped.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Pipeline, err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := buildinfo.Register(reg); err != nil {
		return nil, fmt.Errorf("metrics: register pinpipe_build_info: %w", err)
	}
	p := &Pipeline{Config: cfg, Log: log, Registry: reg}
	for _, o := range opts {
		o(p)
	}
	// Bind first: a taken address should fail before anything else starts.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s (PINPIPE_ADDR): %w; is another pinpipe running? Choose another address with --addr", cfg.Addr, err)
	}
	p.Addr = ln.Addr().String()
	defer func() {
		if err != nil {
			_ = ln.Close()
			// Stop whatever did start: lanes first, then stores.
			if p.stopLane != nil {
				p.stopLane()
				_ = p.lanes.Wait()
			}
			if p.Producer != nil {
				_ = p.Producer.Close()
			}
			_ = p.closeAll(context.Background())
		}
	}()
	roles := cfg.Roles
	if len(roles) == 0 {
		roles = config.AllRoles
	}
	has := roles.Has
	if has(config.RoleAPI) || has(config.RoleLanding) || has(config.RoleStream) {
		if err := p.startKafka(ctx); err != nil {
			return nil, err
		}
	}
	if has(config.RoleLanding) || has(config.RoleBatch) || has(config.RoleQuery) {
		if err := p.startLake(ctx); err != nil {
			return nil, err
		}
	}
	if has(config.RoleAPI) {
		p.Producer = ingest.NewProducer(p.Brokers, cfg.Topic, reg)
	}

	laneCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stopLane = stop
	p.lanes, laneCtx = errgroup.WithContext(laneCtx)
	if err := p.startBatch(laneCtx, roles); err != nil {
		return nil, err
	}
	if err := p.startStream(laneCtx, roles); err != nil {
		return nil, err
	}
	if has(config.RoleQuery) {
		if err := p.startQuery(laneCtx); err != nil {
			return nil, err
		}
	}

	o := p.opts
	o.Log, o.Registry, o.APIKey, o.MaxBodyBytes = log, reg, cfg.APIKey, cfg.MaxBodyBytes
	o.AccessLog = cfg.AccessLog
	if p.Producer != nil {
		o.Producer = p.Producer
	}
	o.Roles = roles
	o.MaxFieldBytes = cfg.MaxFieldBytes
	o.Addr, o.AllowedHosts, o.AllowedOrigins, o.QueryTimeout = p.Addr, cfg.AllowedHosts, cfg.AllowedOrigins, cfg.QueryTimeout
	o.ExportMaxBytes, o.ExportTimeout, o.ExportDir = cfg.ExportMaxBytes, cfg.ExportTimeout, filepath.Join(cfg.DataDir, "export")
	p.Server = server.New(o)
	p.httpSrv = p.Server.HTTPServer()
	p.httpDone = make(chan error, 1)
	go func() { p.httpDone <- p.httpSrv.Serve(ln) }()
	log.Info("pinpipe is serving", slog.String("url", "http://"+p.Addr), slog.String("dashboard", "http://"+p.Addr+"/"),
		slog.String("roles", strings.Join(roles, ",")))
	return p, nil
}

func (p *Pipeline) startKafka(ctx context.Context) error {
	cfg := p.Config
	p.Brokers = cfg.KafkaBrokers
	embedded := len(p.Brokers) == 0
	if embedded {
		dir := filepath.Join(cfg.DataDir, "kafka")
		b, err := broker.Start(dir, "127.0.0.1:0", cfg.Topic, p.Log)
		if err != nil {
			return err
		}
		p.closers = append(p.closers, func(context.Context) error { b.Close(); return nil })
		p.Brokers = b.Addrs()
		p.Log.Info("kafka: using the embedded Kafka-protocol broker (set PINPIPE_KAFKA_BROKERS for a real cluster)",
			slog.String("data", dir), slog.Any("addrs", p.Brokers))
	} else {
		p.Log.Info("kafka: using external brokers", slog.Any("brokers", p.Brokers))
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topic := broker.Topic{Name: cfg.Topic, Partitions: cfg.TopicPartitions, Replication: cfg.TopicReplication}
	if err := broker.Ensure(tctx, p.Brokers, topic, p.Log); err != nil {
		return fmt.Errorf("%w (PINPIPE_KAFKA_BROKERS=%v)", err, cfg.KafkaBrokers)
	}
	brokers := p.Brokers
	p.opts.Checks = append(p.opts.Checks, server.Check{Name: "kafka", Embedded: embedded, Check: func(ctx context.Context) error {
		return broker.Check(ctx, brokers)
	}})
	return nil
}

func (p *Pipeline) startLake(ctx context.Context) error {
	cfg := p.Config
	o := lake.Options{Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.AWSRegion, AccessKey: cfg.AWSAccessKeyID, SecretKey: cfg.AWSSecretKey}
	embedded := o.Endpoint == ""
	if embedded {
		dir := filepath.Join(cfg.DataDir, "s3")
		e, err := lake.StartEmbedded(dir, "127.0.0.1:0", p.Log)
		if err != nil {
			return err
		}
		p.closers = append(p.closers, e.Close)
		o.Endpoint, o.AccessKey, o.SecretKey = e.Endpoint, lake.EmbeddedKey, lake.EmbeddedSecret
		p.Log.Info("s3: using the embedded S3 server (set PINPIPE_S3_ENDPOINT for a real one)",
			slog.String("data", dir), slog.String("endpoint", e.Endpoint))
	} else {
		p.Log.Info("s3: using an external S3 server", slog.String("endpoint", o.Endpoint), slog.String("bucket", o.Bucket))
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := lake.Open(tctx, o)
	if err != nil {
		return err
	}
	p.Lake = store
	p.opts.Checks = append(p.opts.Checks, server.Check{Name: "s3", Embedded: embedded, Check: store.Check})
	return nil
}

// goLane runs a lane until shutdown; a lane that fails stops the others.
func (p *Pipeline) goLane(name string, run func() error) {
	p.lanes.Go(func() error {
		if err := run(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// onClose registers a store to close after the lanes stopped.
func (p *Pipeline) onClose(f func(context.Context) error) { p.closers = append(p.closers, f) }

// Wait blocks until the HTTP server or a lane fails, or ctx ends.
func (p *Pipeline) Wait(ctx context.Context) error {
	lanes := make(chan error, 1)
	go func() { lanes <- p.lanes.Wait() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-p.httpDone:
		p.httpDone <- err
		return fmt.Errorf("http: %w", err)
	case err := <-lanes:
		if err != nil {
			return err
		}
		// Every lane returned without error before shutdown: nothing left
		// to watch but the server.
		select {
		case <-ctx.Done():
			return nil
		case err := <-p.httpDone:
			p.httpDone <- err
			return fmt.Errorf("http: %w", err)
		}
	}
}

// Stop drains in order: stop bidding for the schedule's firings (another
// instance takes them), turn /readyz unready while still serving for
// PINPIPE_SHUTDOWN_DRAIN (cut short when ctx ends), stop accepting
// requests, flush the producer, stop the lanes (each finishes its
// in-flight batch and commits its offsets), then close the stores and the
// embedded defaults.
func (p *Pipeline) Stop(ctx context.Context) error {
	var errs []error
	if p.schedule != nil {
		p.schedule.StopSchedule()
	}
	if p.Server != nil && p.Config.ShutdownDrain > 0 {
		p.Server.Drain()
		p.Log.Info("stopping: /readyz answers 503 while requests are still served for the drain period",
			slog.Duration("drain", p.Config.ShutdownDrain))
		t := time.NewTimer(p.Config.ShutdownDrain)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if p.httpSrv != nil {
		if err := p.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
	}
	if p.Producer != nil {
		if err := p.Producer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("producer: %w", err))
		}
	}
	if p.stopLane != nil {
		p.stopLane()
		if err := p.lanes.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.closeAll(ctx))
	p.Log.Info("pinpipe stopped")
	return errors.Join(errs...)
}

func (p *Pipeline) closeAll(ctx context.Context) error {
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.closers = nil
	return errors.Join(errs...)
}
