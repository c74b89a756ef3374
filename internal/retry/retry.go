// Package retry runs a failing step again with exponential backoff: the
// policy the lanes use to store a batch, the batch job its Cassandra writes
// and the command line its HTTP posts. It wraps github.com/cenkalti/backoff.
//
// The contract of Do:
//   - op runs at least once, even when ctx has already ended.
//   - An error op marks with Permanent (directly or anywhere in its chain)
//     stops at once; every other error is tried again.
//   - Between tries Do waits about Initial, growing by half each time up to
//     Max, each wait jittered by ±50%.
//   - It gives up when the next wait would end more than MaxElapsed after
//     the first try began, returning op's last error; with MaxElapsed 0 it
//     tries until ctx ends.
//   - When ctx ends while op keeps failing, Do returns an error that is
//     ctx's cause (context.Canceled or context.DeadlineExceeded unless the
//     cancel gave one) and also wraps op's last error; op's own error alone
//     when it already wraps that cause.
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is how long to keep trying a failing step: exponential backoff
// from Initial to Max between tries, for at most MaxElapsed (0: until the
// context ends). A zero Initial or Max takes Forever's, so the zero Policy
// is Forever.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration
}

// Forever retries until the context ends: the lanes' policy for storing a
// micro-batch, so an outage pauses the lane instead of skipping records.
var Forever = Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// Bounded retries a few times for about half a minute: the policy for a
// batch run's writes, which then fails the run with the last error, and for
// the command line's posts.
var Bounded = Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: 30 * time.Second}

// Do runs op until it succeeds, fails permanently, the policy gives up, or
// ctx ends, logging each failure that will be tried again with what is
// being retried (what) and, after a recovery, how many tries it took. log
// may be nil (slog.Default). Returns nil on success; otherwise see the
// package comment: op's error without its Permanent mark, op's last error
// when MaxElapsed passed, or ctx's cause wrapping op's last error.
func Do(ctx context.Context, p Policy, log *slog.Logger, what string, op func() error) error {
	if log == nil {
		log = slog.Default()
	}
	if p.Initial <= 0 {
		p.Initial = Forever.Initial
	}
	if p.Max <= 0 {
		p.Max = Forever.Max
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.Initial, p.Max
	tries := 0
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		last = op()
		var perm *backoff.PermanentError
		if errors.As(last, &perm) && last != error(perm) {
			// backoff returns the mark's contents; keep what op wrapped
			// around it.
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, next time.Duration) {
			log.Warn("retrying", slog.String("step", what), slog.Int("try", tries),
				slog.Duration("next_in", next), slog.Any("err", err))
		}))
	switch {
	case err == nil:
		if tries > 1 {
			log.Info("recovered", slog.String("step", what), slog.Int("tries", tries))
		}
		return nil
	case ctx.Err() == nil || err != context.Cause(ctx) || last == nil:
		return err
	case errors.Is(last, err):
		// op already reported that ctx ended.
		return last
	}
	// ctx ended: say so, and what kept failing.
	return fmt.Errorf("%w; last error: %w", err, last)
}

// Permanent marks err as not worth retrying: Do returns it at once, without
// the mark. Returns nil when err is nil.
func Permanent(err error) error { return backoff.Permanent(err) }
