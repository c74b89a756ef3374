package consume

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is how long to keep trying a failing step: exponential backoff
// from Initial to Max between tries, for at most MaxElapsed (0: until the
// context ends).
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	MaxElapsed time.Duration
}

// Forever retries until the context ends: the lanes' policy for storing a
// micro-batch, so an outage pauses the lane instead of skipping records.
var Forever = Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// Bounded retries a few times for about half a minute: the policy for a
// batch run's writes, which then fails the run with the last error.
var Bounded = Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: 30 * time.Second}

// Retry runs op until it succeeds, the policy gives up, or ctx ends, logging
// each failure once with what is being retried. Returns op's last error, or
// ctx's error when ctx ended first. Wrap an error in backoff.Permanent to
// stop at once.
func Retry(ctx context.Context, p Policy, log *slog.Logger, what string, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.Initial, p.Max
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		return struct{}{}, op()
	},
		backoff.WithBackOff(b),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, next time.Duration) {
			log.Warn("retrying", slog.String("step", what), slog.Int("try", tries),
				slog.Duration("next_in", next), slog.Any("err", err))
		}))
	if err == nil && tries > 1 {
		log.Info("recovered", slog.String("step", what), slog.Int("tries", tries))
	}
	return err
}

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return backoff.Permanent(err) }
