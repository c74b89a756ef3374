package cmd

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"pinpipe/config"
	"pinpipe/pipeline"
)

func newServe(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "serve [flags]",
		Short: "run the pipeline and the HTTP API (the default)",
		Long: `Runs the whole pipeline: POST /pins into Kafka, the batch and stream lanes,
SQL over the lake, the dashboard. Dependencies left unset run embedded.

Every flag below is also an environment variable (shown with it); a flag
wins over the variable, which wins over the default.`,
		Args: noArgs,
	}
	c.Flags().SortFlags = false // the settings in the order of the table
	load := config.Bind(c.Flags(), false)
	c.RunE = func(c *cobra.Command, _ []string) error {
		cfg, err := load(env.Getenv)
		if err != nil {
			return usageError{err}
		}
		return serve(c.Context(), env, cfg)
	}
	return c
}

func serve(ctx context.Context, env Env, cfg *config.Config) error {
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
