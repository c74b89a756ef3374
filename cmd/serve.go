package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"pinpipe/config"
	"pinpipe/pipeline"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: pinpipe serve [flags]\n\nRuns the whole pipeline: POST /pins into Kafka, the batch and stream lanes,\nSQL over the lake, the dashboard. Dependencies left unset run embedded.")
		config.Usage(env.Stderr)
	}
	cfg, _, err := config.Load(fs, args, env.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	log := newLogger(env, cfg.LogLevel, cfg.LogFormat)
	p, err := pipeline.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	waitErr := p.Wait(ctx)
	log.Info("stopping: draining, then no new requests; flushing the producer, finishing in-flight batches")
	// The drain period comes on top of the half minute the rest may take.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownDrain+30*time.Second)
	defer cancel()
	return errors.Join(waitErr, p.Stop(stopCtx))
}

func newLogger(env Env, level, format string) *slog.Logger {
	return config.NewLogger(env.Stderr, level, format)
}
