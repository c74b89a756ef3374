package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

func runLoad(ctx context.Context, env Env, args []string) error {
	pf := newPosterFlags("load", "Usage: pinpipe load [flags] FILE|-\n\nPosts the pins of a JSON file (one object or an array) or an NDJSON file to\nPOST /pins in batches, with a progress bar, and prints what was accepted and\nrejected. Exits non-zero when any pin was not accepted.", env)
	fs := pf.fs
	batch := fs.Int("batch", 1000, "pins per request")
	conc := fs.Int("concurrency", 4, "requests in flight at once")
	pinsPerSec := fs.Float64("rate", 0, "pins per second at most (0: as fast as the server takes them)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return errUsage
	}
	if fs.NArg() != 1 || *batch < 1 || *conc < 1 {
		fs.Usage()
		return errUsage
	}
	in := env.Stdin
	name := fs.Arg(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else {
		name = "stdin"
	}
	pins, err := splitPins(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(pins) == 0 {
		return fmt.Errorf("%s holds no pins", name)
	}
	res := post(ctx, env, postOptions{
		client: newClient(pf.url.list(), *pf.apiKey, *conc), batch: *batch, concurrency: *conc,
		rate: *pinsPerSec, quiet: *pf.quiet, total: int64(len(pins)),
		desc: "loading " + name,
	}, func(yield func([]byte) bool) {
		for _, p := range pins {
			if !yield(p) {
				return
			}
		}
	})
	return res.report(env.Stdout)
}

// splitPins reads a JSON object, a JSON array of objects, or NDJSON and
// returns each pin's bytes as they are; the server validates them.
func splitPins(r io.Reader) ([][]byte, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("not a valid JSON array: %w", err)
		}
		out := make([][]byte, len(arr))
		for i, a := range arr {
			var c bytes.Buffer
			if err := json.Compact(&c, a); err != nil {
				return nil, err
			}
			out[i] = c.Bytes()
		}
		return out, nil
	}
	// NDJSON, or one object that may span lines: decode values one by one.
	var out [][]byte
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("record %d: not valid JSON: %w", len(out)+1, err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, err
		}
		out = append(out, c.Bytes())
	}
}

type postOptions struct {
	client      *client
	batch       int
	concurrency int
	rate        float64 // pins/s, 0 for unlimited
	quiet       bool
	total       int64 // -1 when unknown
	desc        string
}

// postResult is what a load or an emulation achieved.
type postResult struct {
	accepted, rejected, failed atomic.Int64
	requests                   atomic.Int64
	elapsed                    time.Duration
	mu                         sync.Mutex
	problems                   []string
}

func (r *postResult) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 20 {
		r.problems = append(r.problems, s)
	}
}

func (r *postResult) report(w io.Writer) error {
	a, rej, f := r.accepted.Load(), r.rejected.Load(), r.failed.Load()
	secs := max(r.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "accepted %d pins, rejected %d, failed %d, in %d requests over %.1fs (%.0f pins/s)\n",
		a, rej, f, r.requests.Load(), r.elapsed.Seconds(), float64(a)/secs)
	for _, p := range r.problems {
		fmt.Fprintln(w, "  "+p)
	}
	if rej+f > 0 {
		return fmt.Errorf("%d pins were not accepted", rej+f)
	}
	return nil
}

// post sends pins from next in NDJSON batches, concurrently, at most at the
// rate, with a progress bar, until next ends or ctx does.
func post(ctx context.Context, env Env, o postOptions, next func(yield func([]byte) bool)) *postResult {
	res := &postResult{}
	start := time.Now()
	bar := progressbar.NewOptions64(o.total,
		progressbar.OptionSetWriter(env.Stderr),
		progressbar.OptionSetDescription(o.desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("pins"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetVisibility(!o.quiet),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(env.Stderr) }),
	)
	var limiter *rate.Limiter
	if o.rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.rate), max(o.batch, int(o.rate)))
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	send := func(first int64, body []byte, n int) {
		g.Go(func() error {
			accepted, err := o.client.postNDJSON(gctx, body, log)
			res.requests.Add(1)
			var rej *rejected
			switch {
			case err == nil:
				res.accepted.Add(int64(accepted))
			case errors.As(err, &rej):
				res.rejected.Add(int64(n))
				res.note(fmt.Sprintf("pins %d-%d refused (%d): %s", first+1, first+int64(n), rej.Status, rej.Detail))
			default:
				res.failed.Add(int64(n))
				res.note(fmt.Sprintf("pins %d-%d not delivered: %v", first+1, first+int64(n), err))
			}
			_ = bar.Add(n)
			return nil
		})
	}
	var buf []byte
	var n int
	var sent int64
	next(func(p []byte) bool {
		buf = append(append(buf, p...), '\n')
		n++
		if n == o.batch {
			if limiter != nil && limiter.WaitN(ctx, n) != nil {
				return false
			}
			send(sent, buf, n)
			sent += int64(n)
			buf, n = nil, 0
		}
		return ctx.Err() == nil
	})
	if n > 0 && ctx.Err() == nil && (limiter == nil || limiter.WaitN(ctx, n) == nil) {
		send(sent, buf, n)
	}
	_ = g.Wait()
	_ = bar.Finish()
	res.elapsed = time.Since(start)
	return res
}
