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
	pf := newPosterFlags("emulate", "Usage: pinpipe emulate [flags]\n\nPosts synthetic pins shaped like the source app's (placeholders, \"26k\"\nfollower counts, story pages) at a steady rate, for demos and load.", env)
	fs := pf.fs
	pinsPerSec := fs.Float64("rate", 100, "pins per second")
	duration := fs.Duration("duration", 0, "how long to run (0: until interrupted)")
	count := fs.Int64("count", 0, "stop after this many pins (0: no limit)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed; the same seed gives the same pins")
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
		client: newClient(pf.url.list(), *pf.apiKey, 8), batch: batch, concurrency: 8,
		rate: *pinsPerSec, quiet: *pf.quiet, total: total, desc: fmt.Sprintf("emulating %.0f pins/s", *pinsPerSec),
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
