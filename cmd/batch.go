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
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: pinpipe batch [--date YYYY-MM-DD] [flags]\n\nRuns the daily batch job for one day in the foreground: reads the day's raw\nzone, cleans and deduplicates it, replaces the day in the curated zone and the\nserving tables (Cassandra or its embedded stand-in), records the run in the\nhistory, and exits non-zero when the run fails. It uses the same settings as\n'pinpipe serve' but needs neither Kafka nor the HTTP server. With the embedded\nstand-in, stop a running 'pinpipe serve' first (or use POST /batch/runs).\n\nFlags:\n  --date YYYY-MM-DD    day to run (default: yesterday, UTC)\n  --quiet              no progress bar; log at PINPIPE_LOG_LEVEL (with the bar: warn and above)")
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
