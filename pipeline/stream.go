package pipeline

import (
	"context"
	"log/slog"
	"path/filepath"

	"pinpipe/config"
	"pinpipe/server"
	"pinpipe/stream"
)

// startStream starts the stream lane over Postgres, or over the embedded
// stand-in under <data dir>/postgres when PINPIPE_POSTGRES_URL is unset:
// the consumer with the stream role, the real-time reads with the api or
// the stream role. Postgres being down does not stop the start: the lane
// waits for it.
func (p *Pipeline) startStream(ctx context.Context, roles config.Roles) error {
	if !roles.Has(config.RoleAPI) && !roles.Has(config.RoleStream) {
		return nil
	}
	cfg := p.Config
	var sink stream.Sink
	embedded := cfg.PostgresURL == ""
	if embedded {
		dir := filepath.Join(cfg.DataDir, "postgres")
		s, err := stream.OpenDuckDB(ctx, dir, p.Log)
		if err != nil {
			return err
		}
		sink = s
		p.Log.Info("postgres: using the embedded stand-in tables (set PINPIPE_POSTGRES_URL for a real Postgres)", slog.String("data", dir))
	} else {
		s, err := stream.OpenPostgres(ctx, cfg.PostgresURL, p.Log)
		if err != nil {
			return err
		}
		sink = s
	}
	p.onClose(func(context.Context) error { return sink.Close() })

	// A Postgres write costs little beyond its rows, so a micro-batch goes
	// as soon as the records stop coming. The stand-in's costs the same
	// whatever its size (each reads the stored pins' IDs), so it waits for
	// the interval: lingering there raised the embedded pipeline's CPU per
	// single-pin request by a quarter (bench/ingest).
	linger := cfg.StreamLinger
	if embedded {
		linger = 0
	}
	lane := stream.New(stream.Options{
		Brokers:    p.Brokers,
		Topic:      cfg.Topic,
		Group:      cfg.GroupPrefix + "-stream",
		MaxRecords: cfg.StreamMaxRecords,
		MaxWait:    cfg.StreamInterval,
		Linger:     linger,
		Sink:       sink,
		Registry:   p.Registry,
		Log:        p.Log,
	})
	p.opts.Stream = lane
	p.opts.Checks = append(p.opts.Checks, server.Check{Name: "postgres", Embedded: embedded, Check: sink.Check})
	if roles.Has(config.RoleStream) {
		p.goLane("stream", func() error { return lane.Run(ctx) })
	}
	return nil
}
