package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"pinpipe/batch"
	"pinpipe/config"
	"pinpipe/pin"
	"pinpipe/pipeline"
)

// settingsPointer ends the help of the commands that read serve's settings
// without listing them.
const settingsPointer = `
It reads the same settings as 'pinpipe serve' (environment variables, or
their flags, such as --data-dir or --s3-endpoint); 'pinpipe serve --help'
lists them.`

func newBatch(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "batch [--date YYYY-MM-DD | --from YYYY-MM-DD --to YYYY-MM-DD] [flags]",
		Short: "run the daily batch job for one day (or a range), then exit",
		Long: `Runs the daily batch job for one day in the foreground: reads the day's raw
zone, cleans and deduplicates it, replaces the day in the curated zone and the
serving tables (Cassandra or its embedded stand-in), records the run in the
history, and exits non-zero when the run fails. It needs no HTTP server; with
PINPIPE_KAFKA_BROKERS set it first waits until the raw zone holds everything
the topic held when it started. With the embedded stand-in, stop a running
'pinpipe serve' first (or use POST /batch/runs).

With --from and --to it backfills the range (at most 366 days): one run per
day, in date order, --batch-concurrency days at a time, with a progress bar
over the days; days without raw data are skipped, and it exits non-zero when
a day failed.
` + settingsPointer,
		Example: `  pinpipe batch --date 2026-11-24
  pinpipe batch --from 2026-11-01 --to 2026-11-30 --batch-concurrency 2`,
		Args: noArgs,
	}
	fs := c.Flags()
	date := fs.String("date", "", "day to run, YYYY-MM-DD (default: yesterday, UTC)")
	from := fs.String("from", "", "first day of a backfill, YYYY-MM-DD (with --to)")
	to := fs.String("to", "", "last day of a backfill, YYYY-MM-DD, inclusive (with --from)")
	quiet := fs.Bool("quiet", false, "no progress bar; log at PINPIPE_LOG_LEVEL (with the bar: warn and above)")
	load := config.Bind(fs, true)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		cfg, err := load(env.Getenv)
		if err != nil {
			return usageError{err}
		}
		backfill := *from != "" || *to != ""
		if backfill && (*date != "" || *from == "" || *to == "") {
			return usagef("give either --date for one day, or both --from and --to for a range")
		}
		// Check the dates before anything opens the lake, which creates
		// the embedded one's directories.
		for _, d := range []struct{ flag, v string }{{"--date", *date}, {"--from", *from}, {"--to", *to}} {
			if _, err := time.Parse(time.DateOnly, d.v); d.v != "" && err != nil {
				return usagef("%s %q is not a date: want YYYY-MM-DD, such as 2026-11-24", d.flag, d.v)
			}
		}
		if *date == "" {
			*date = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
		}
		level := cfg.LogLevel
		if !*quiet && (level == "debug" || level == "info") {
			level = "warn" // the progress bars say what the info lines would
		}
		log := newLogger(env, level, cfg.LogFormat)
		r, err := pipeline.OpenBatch(ctx, cfg, log, prometheus.NewRegistry())
		if err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = r.Close(cctx)
		}()

		if backfill {
			return runBackfill(ctx, env, r.Service, *from, *to, *quiet)
		}
		bars := &phaseBars{env: env, quiet: *quiet}
		start := time.Now()
		run, err := r.Service.RunNow(ctx, *date, batch.TriggerCLI, bars.update)
		bars.finish()
		if run.ID == "" {
			return errors.New(pin.ErrorMessage(err)) // refused before it started: a day in the future, a run already active
		}
		fmt.Fprintf(env.Stdout, "run %s for %s %s in %s: %d rows in, %d out, %d rejected\n",
			run.ID, run.Date, run.Status, time.Since(start).Round(time.Millisecond), run.RowsIn, run.RowsOut, run.RowsRejected)
		return err
	}
	return c
}

// runBackfill runs the days from..to with a progress bar over the days,
// prints a line per day, and returns an error when a day failed or the
// range was refused.
func runBackfill(ctx context.Context, env Env, svc *batch.Service, from, to string, quiet bool) error {
	start := time.Now()
	var bar *meter
	b, err := svc.Backfill(ctx, from, to, batch.TriggerCLI, func(done, total int) {
		if bar == nil {
			bar = newMeter(env.Stderr, fmt.Sprintf("backfilling %s to %s", from, to), "days", int64(total), quiet)
		}
		bar.set(int64(done))
	})
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return errors.New(pin.ErrorMessage(err))
	}
	failed := 0
	for _, run := range b.Runs {
		if run.Status != batch.StatusSucceeded {
			failed++
			fmt.Fprintf(env.Stdout, "run %s for %s %s: %s\n", run.ID, run.Date, run.Status, run.Error)
		} else {
			fmt.Fprintf(env.Stdout, "run %s for %s %s: %d rows in, %d out, %d rejected\n", run.ID, run.Date, run.Status, run.RowsIn, run.RowsOut, run.RowsRejected)
		}
	}
	for _, d := range b.Skipped {
		fmt.Fprintf(env.Stdout, "%s skipped: %s\n", d.Date, d.Reason)
	}
	fmt.Fprintf(env.Stdout, "backfill %s to %s: %d days run, %d failed, %d skipped in %s\n", from, to, len(b.Runs), failed, len(b.Skipped),
		time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return fmt.Errorf("%d of %d days failed; run them again with pinpipe batch --date", failed, len(b.Runs))
	}
	return nil
}

// phaseBars shows one progress bar per phase of a run.
type phaseBars struct {
	env   Env
	quiet bool
	phase string
	bar   *meter
}

var phaseNames = map[string]struct{ desc, unit string }{
	"read":    {"reading the raw zone", "objects"},
	"curated": {"writing the curated zone", "pins"},
	"serving": {"writing the serving tables", "pins"},
}

func (b *phaseBars) update(p batch.Progress) {
	if p.Phase != b.phase {
		b.finish()
		b.phase = p.Phase
		name := phaseNames[p.Phase]
		b.bar = newMeter(b.env.Stderr, name.desc, name.unit, max(p.Total, 1), b.quiet)
	}
	b.bar.set(p.Done)
}

func (b *phaseBars) finish() {
	if b.bar != nil {
		b.bar.finish()
	}
	b.bar = nil
}
