package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"pinpipe/synth"
)

func runEmulate(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	url := fs.String("url", "http://127.0.0.1:8000", "pinpipe's base URL")
	apiKey := fs.String("api-key", env.Getenv("PINPIPE_API_KEY"), "API key (default $PINPIPE_API_KEY)")
	pinsPerSec := fs.Float64("rate", 100, "pins per second")
	duration := fs.Duration("duration", 0, "how long to run (0: until interrupted)")
	count := fs.Int64("count", 0, "stop after this many pins (0: no limit)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed; the same seed gives the same pins")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: pinpipe emulate [flags]\n\nPosts synthetic pins shaped like the source app's (placeholders, \"26k\"\nfollower counts, story pages) at a steady rate, for demos and load.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil || *pinsPerSec <= 0 {
		return errUsage
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	total := int64(-1)
	if *count > 0 {
		total = *count
	} else if *duration > 0 {
		total = int64(duration.Seconds() * *pinsPerSec)
	}
	// Batches small enough that the rate stays smooth: about ten a second.
	batch := max(1, int(*pinsPerSec/10))
	gen := synth.New(*seed)
	res := post(ctx, env, postOptions{
		client: newClient(*url, *apiKey, 8), batch: batch, concurrency: 8,
		rate: *pinsPerSec, quiet: *quiet, total: total, desc: fmt.Sprintf("emulating %.0f pins/s", *pinsPerSec),
	}, func(yield func([]byte) bool) {
		for i := int64(0); *count == 0 || i < *count; i++ {
			b, _ := json.Marshal(gen.Next())
			if !yield(b) {
				return
			}
		}
	})
	return res.report(env.Stdout)
}
