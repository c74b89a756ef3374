package cmd

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"pinpipe/synth"
)

func newEmulate(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "emulate [flags]",
		Short: "post synthetic pins shaped like the real ones at a steady rate",
		Long: `Posts synthetic pins shaped like the source app's (placeholders, "26k"
follower counts, story pages) at a steady rate, for demos and load. With
--duration it sends rate × duration pins at most; with --count, that many.`,
		Example: `  pinpipe emulate --rate 50 --duration 1m
  PINPIPE_URL=http://pinpipe:8000 pinpipe emulate --count 10000 --seed 1`,
		Args: noArgs,
	}
	pf := addPosterFlags(c)
	fs := c.Flags()
	pinsPerSec := fs.Float64("rate", 100, "pins per second (more than 0)")
	duration := fs.Duration("duration", 0, "how long to run (0: until interrupted)")
	count := fs.Int64("count", 0, "stop after this many pins (0: no limit)")
	seed := fs.Uint64("seed", 0, "random seed; the same seed gives the same pins (default: from the clock)")
	c.RunE = func(c *cobra.Command, _ []string) error {
		switch {
		case !(*pinsPerSec > 0) || *pinsPerSec > 1e7:
			return usagef("--rate must be more than 0 and at most 10000000 pins per second, got %g", *pinsPerSec)
		case *duration < 0:
			return usagef("--duration must be 0 (until interrupted) or more, got %s", *duration)
		case *count < 0:
			return usagef("--count must be 0 (no limit) or more, got %d", *count)
		}
		if !c.Flags().Changed("seed") {
			*seed = uint64(time.Now().UnixNano())
		}
		cl, err := pf.client(env, 8)
		if err != nil {
			return err
		}
		total := int64(-1)
		var until time.Time
		if *duration > 0 {
			total = max(1, int64(duration.Seconds()**pinsPerSec))
			until = time.Now().Add(*duration)
		}
		if *count > 0 && (total < 0 || *count < total) {
			total = *count
		}
		// Batches small enough that the rate stays smooth: about ten a second.
		batch := max(1, int(*pinsPerSec/10))
		gen := synth.New(*seed)
		res := post(c.Context(), env, postOptions{
			client: cl, batch: batch, concurrency: 8, rate: *pinsPerSec, quiet: pf.quiet,
			total: total, until: until, desc: fmt.Sprintf("emulating %s pins/s", rateText(*pinsPerSec)),
		}, func(yield func(line) bool) {
			for i := int64(0); total < 0 || i < total; i++ {
				b, _ := json.Marshal(gen.Next())
				if !yield(line{int(i + 1), b}) {
					return
				}
			}
		})
		return res.report(env.Stdout)
	}
	return c
}
