package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"pinpipe/internal/retry"
)

// quick keeps the waits short; MaxElapsed 0 means "until ctx ends".
var quick = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// testCtx bounds a test that would otherwise hang if Do never gave up.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDoReturnsNilAfterTransientFailures(t *testing.T) {
	tries := 0
	err := retry.Do(testCtx(t), quick, discard, "step", func() error {
		tries++
		if tries < 4 {
			return fmt.Errorf("try %d failed", tries)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do = %v, want nil", err)
	}
	if tries != 4 {
		t.Fatalf("op ran %d times, want 4 (3 failures, then success)", tries)
	}
}

func TestDoRunsASucceedingStepOnce(t *testing.T) {
	tries := 0
	if err := retry.Do(testCtx(t), quick, nil, "step", func() error { tries++; return nil }); err != nil {
		t.Fatalf("Do = %v, want nil", err)
	}
	if tries != 1 {
		t.Fatalf("op ran %d times, want 1", tries)
	}
}

type refused struct{ code int }

func (r *refused) Error() string { return fmt.Sprintf("refused %d", r.code) }

func TestDoStopsAtOnceOnAPermanentError(t *testing.T) {
	cause := &refused{400}
	tries := 0
	err := retry.Do(testCtx(t), quick, discard, "step", func() error {
		tries++
		return retry.Permanent(cause)
	})
	if tries != 1 {
		t.Fatalf("op ran %d times, want 1", tries)
	}
	if err != error(cause) {
		t.Fatalf("Do = %#v, want op's error without the Permanent mark (%#v)", err, cause)
	}
}

func TestDoKeepsTheWrappingAroundAPermanentError(t *testing.T) {
	cause := &refused{401}
	tries := 0
	err := retry.Do(testCtx(t), quick, discard, "step", func() error {
		tries++
		return fmt.Errorf("post pins: %w", retry.Permanent(cause))
	})
	if tries != 1 {
		t.Fatalf("op ran %d times, want 1", tries)
	}
	var r *refused
	if err == nil || err.Error() != "post pins: refused 401" || !errors.As(err, &r) || r != cause {
		t.Fatalf("Do = %v, want %q that unwraps to the refusal", err, "post pins: refused 401")
	}
}

func TestPermanentOfNilIsNil(t *testing.T) {
	if err := retry.Permanent(nil); err != nil {
		t.Fatalf("Permanent(nil) = %v, want nil", err)
	}
}

func TestDoGivesUpAfterMaxElapsedWithTheLastError(t *testing.T) {
	p := retry.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxElapsed: 100 * time.Millisecond}
	ctx := testCtx(t)
	tries := 0
	var last error
	err := retry.Do(ctx, p, discard, "step", func() error {
		tries++
		last = fmt.Errorf("try %d failed", tries)
		return last
	})
	if ctx.Err() != nil {
		t.Fatal("Do did not give up before the test's own deadline")
	}
	if tries < 2 {
		t.Fatalf("op ran %d times, want it retried", tries)
	}
	if err != last {
		t.Fatalf("Do = %v, want op's last error %v", err, last)
	}
}

func TestDoTriesUntilCtxEndsAndSaysWhatKeptFailing(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	boom := errors.New("store down")
	tries, afterCancel := 0, 0
	err := retry.Do(ctx, quick, discard, "step", func() error {
		tries++
		if ctx.Err() != nil {
			afterCancel++
		}
		if tries == 5 {
			cancel()
		}
		return boom
	})
	if tries != 5 || afterCancel != 0 {
		t.Fatalf("op ran %d times (%d after ctx ended), want 5 and none after", tries, afterCancel)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want an error that is context.Canceled and wraps %v", err, boom)
	}
}

func TestDoReturnsCtxCauseWhileWaiting(t *testing.T) {
	// The wait after the first failure is far longer than the test: only
	// ctx's end can stop it.
	p := retry.Policy{Initial: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancelCause(testCtx(t))
	stop := errors.New("shutting down")
	boom := errors.New("store down")
	tries := 0
	err := retry.Do(ctx, p, discard, "step", func() error {
		tries++
		go cancel(stop)
		return boom
	})
	if tries != 1 {
		t.Fatalf("op ran %d times, want 1", tries)
	}
	if !errors.Is(err, stop) || !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want ctx's cause %v wrapping %v", err, stop, boom)
	}
}

func TestDoReturnsOpsErrorWhenItAlreadySaysCtxEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	err := retry.Do(ctx, quick, discard, "step", func() error {
		cancel()
		return fmt.Errorf("write: %w", ctx.Err())
	})
	if err == nil || err.Error() != "write: context canceled" {
		t.Fatalf("Do = %v, want op's own %q", err, "write: context canceled")
	}
}

func TestDoRunsOpOnceEvenWhenCtxAlreadyEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries := 0
	if err := retry.Do(ctx, quick, discard, "step", func() error { tries++; return nil }); err != nil || tries != 1 {
		t.Fatalf("Do = %v after %d tries, want nil after 1", err, tries)
	}
}

func TestZeroPolicyRetriesLikeForever(t *testing.T) {
	// Forever waits about 200 ms after the first failure: a zero Policy
	// must not spin. The bound is a lower one, which a slow machine only
	// exceeds further, so it cannot fail by chance.
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var first time.Time
	var waited time.Duration
	_ = retry.Do(ctx, retry.Policy{}, discard, "step", func() error {
		if first.IsZero() {
			first = time.Now()
			return errors.New("fail once")
		}
		waited = time.Since(first)
		cancel()
		return errors.New("fail twice")
	})
	if waited < retry.Forever.Initial/2 {
		t.Fatalf("second try came %s after the first, want at least %s (Forever's first wait less its jitter)", waited, retry.Forever.Initial/2)
	}
}

func TestDoLogsEachRetryAndTheRecovery(t *testing.T) {
	var logged []string
	log := slog.New(recorder{&logged})
	tries := 0
	_ = retry.Do(testCtx(t), quick, log, "store batch", func() error {
		tries++
		if tries < 3 {
			return errors.New("down")
		}
		return nil
	})
	want := []string{"WARN retrying store batch", "WARN retrying store batch", "INFO recovered store batch"}
	if fmt.Sprint(logged) != fmt.Sprint(want) {
		t.Fatalf("logged %q, want %q", logged, want)
	}
}

// recorder logs "LEVEL message step" per record.
type recorder struct{ lines *[]string }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r recorder) WithGroup(string) slog.Handler            { return r }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	step := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "step" {
			step = a.Value.String()
		}
		return true
	})
	*r.lines = append(*r.lines, rec.Level.String()+" "+rec.Message+" "+step)
	return nil
}
