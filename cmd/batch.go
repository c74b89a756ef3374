package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"pinpipe/batch"
	"pinpipe/config"
	"pinpipe/pin"
	"pinpipe/pipeline"
)

func runBatch(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	date := fs.String("date", "", "day to run, YYYY-MM-DD (default: yesterday, UTC)")
	from := fs.String("from", "", "first day of a backfill, YYYY-MM-DD (with --to)")
	to := fs.String("to", "", "last day of a backfill, YYYY-MM-DD, inclusive (with --from)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: pinpipe batch [--date YYYY-MM-DD | --from YYYY-MM-DD --to YYYY-MM-DD] [flags]\n\nRuns the daily batch job for one day in the foreground: reads the day's raw\nzone, cleans and deduplicates it, replaces the day in the curated zone and the\nserving tables (Cassandra or its embedded stand-in), records the run in the\nhistory, and exits non-zero when the run fails. It uses the same settings as\n'pinpipe serve' but needs no HTTP server; with PINPIPE_KAFKA_BROKERS set it first\nwaits until the raw zone holds everything the topic held when it started. With the embedded\nstand-in, stop a running 'pinpipe serve' first (or use POST /batch/runs).\n\nWith --from and --to it backfills the range (at most 366 days): one run per\nday, in date order, --batch-concurrency days at a time, with a progress bar\nover the days; days without raw data are skipped, and it exits non-zero when\na day failed.\n\nFlags:\n  --date YYYY-MM-DD    day to run (default: yesterday, UTC)\n  --from, --to         the first and last day of a backfill\n  --quiet              no progress bar; log at PINPIPE_LOG_LEVEL (with the bar: warn and above)")
		config.Usage(env.Stderr)
	}
	cfg, rest, err := config.Load(fs, args, env.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return errUsage
	}
	backfill := *from != "" || *to != ""
	if backfill && (*date != "" || *from == "" || *to == "") {
		fmt.Fprintln(env.Stderr, "pinpipe batch: give either --date for one day, or both --from and --to for a range")
		return errUsage
	}
	if *date == "" {
		*date = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	level := cfg.LogLevel
	if !*quiet && (level == "debug" || level == "info") {
		level = "warn" // the progress bars say what the info lines would
	}
	log := newLogger(env, level)
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
		return errors.New(pin.ErrorMessage(err)) // refused before it started: a bad date, a run already active
	}
	fmt.Fprintf(env.Stdout, "run %s for %s %s in %s: %d rows in, %d out, %d rejected\n",
		run.ID, run.Date, run.Status, time.Since(start).Round(time.Millisecond), run.RowsIn, run.RowsOut, run.RowsRejected)
	return err
}

// runBackfill runs the days from..to with a progress bar over the days,
// prints a line per day, and returns an error when a day failed or the
// range was refused.
func runBackfill(ctx context.Context, env Env, svc *batch.Service, from, to string, quiet bool) error {
	start := time.Now()
	var bar *progressbar.ProgressBar
	b, err := svc.Backfill(ctx, from, to, batch.TriggerCLI, func(done, total int) {
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(env.Stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("backfilling %s to %s", from, to)),
				progressbar.OptionShowCount(),
				progressbar.OptionSetItsString("days"),
				progressbar.OptionSetVisibility(!quiet),
				progressbar.OptionFullWidth(),
			)
		}
		_ = bar.Set(done)
	})
	if bar != nil {
		_ = bar.Finish()
		if !quiet {
			fmt.Fprintln(env.Stderr)
		}
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
	bar   *progressbar.ProgressBar
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
		b.bar = progressbar.NewOptions64(max(p.Total, 1),
			progressbar.OptionSetWriter(b.env.Stderr),
			progressbar.OptionSetDescription(name.desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(name.unit),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetVisibility(!b.quiet),
			progressbar.OptionFullWidth(),
		)
	}
	_ = b.bar.Set64(p.Done)
}

func (b *phaseBars) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
		if !b.quiet {
			fmt.Fprintln(b.env.Stderr)
		}
	}
	b.bar = nil
}
