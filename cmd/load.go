package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"pinpipe/pin"
)

func newLoad(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "load [flags] FILE|-",
		Short: "post pins from a JSON or NDJSON file (or - for stdin)",
		Long: `Posts the pins of a JSON file (one object or an array) or an NDJSON file to
POST /pins in batches, with a progress bar, and prints what was accepted and
rejected. Exits non-zero when any pin was not accepted.

The server refuses a whole request when any pin in it is invalid. With
--skip-invalid, load checks each pin first (as the server does), posts the
valid ones, and sets the invalid ones aside: with --rejects FILE they are
written there, one JSON line each: {"line": N, "record": <the pin>, "reason": "..."}.
Then only pins the server could not take make it exit non-zero.

Permanent errors stop it at once: a URL that is not one, nothing listening
at any URL for a few seconds, a refused API key (401, 403).`,
		Example: `  pinpipe load pins.ndjson
  PINPIPE_URL=http://pinpipe:8000 pinpipe load --batch 500 pins.json
  pinpipe load --skip-invalid --rejects bad.ndjson pins.ndjson`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("want one FILE (or - for stdin), got %d arguments", len(args))
			}
			return nil
		},
	}
	pf := addPosterFlags(c)
	fs := c.Flags()
	batch := fs.Int("batch", 1000, "pins per request")
	conc := fs.Int("concurrency", 4, "requests in flight at once")
	pinsPerSec := fs.Float64("rate", 0, "pins per second at most (0: as fast as the server takes them)")
	skip := fs.Bool("skip-invalid", false, "post the valid pins and set the invalid ones aside instead of failing their whole batch")
	rejects := fs.String("rejects", "", "with --skip-invalid, write the pins set aside to this NDJSON file, each with its reason")
	c.RunE = func(c *cobra.Command, args []string) error {
		switch {
		case *batch < 1:
			return usagef("--batch must be at least 1, got %d", *batch)
		case *conc < 1:
			return usagef("--concurrency must be at least 1, got %d", *conc)
		case *pinsPerSec < 0:
			return usagef("--rate must be 0 (no limit) or more, got %g", *pinsPerSec)
		case *rejects != "" && !*skip:
			return usagef("--rejects needs --skip-invalid")
		}
		cl, err := pf.client(env, *conc)
		if err != nil {
			return err
		}
		in, name := env.Stdin, args[0]
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
		pins, err := splitPins(in, *skip)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(pins) == 0 {
			return fmt.Errorf("%s holds no pins", name)
		}
		o := postOptions{
			client: cl, batch: *batch, concurrency: *conc,
			rate: *pinsPerSec, quiet: pf.quiet, total: int64(len(pins)), desc: "loading " + name,
		}
		if *skip {
			sa, err := newSetAside(*rejects)
			if err != nil {
				return err
			}
			defer sa.close()
			o.aside = sa
			valid := pins[:0:0]
			for _, p := range pins {
				if _, err := (pin.Limits{}).ParseRequest(p.raw, true); err != nil {
					sa.add(p, pinProblems(err))
				} else {
					valid = append(valid, p)
				}
			}
			pins, o.total = valid, int64(len(valid))
		}
		res := post(c.Context(), env, o, func(yield func(line) bool) {
			for _, p := range pins {
				if !yield(p) {
					return
				}
			}
		})
		return res.report(env.Stdout)
	}
	return c
}

// line is one pin of the input: its JSON and the line (or array position)
// it came from, counting from 1.
type line struct {
	n   int
	raw []byte
}

// splitPins reads a JSON object, a JSON array of objects, or NDJSON and
// returns each pin's bytes; the server validates them. With perLine, NDJSON
// is split at line ends without decoding, so a malformed line is one bad
// pin (to set aside) rather than an error for the whole file.
func splitPins(r io.Reader, perLine bool) ([]line, error) {
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
		out := make([]line, len(arr))
		for i, a := range arr {
			var c bytes.Buffer
			if err := json.Compact(&c, a); err != nil {
				return nil, err
			}
			out[i] = line{i + 1, c.Bytes()}
		}
		return out, nil
	}
	var out []line
	if perLine && bytes.Count(trimmed, []byte{'\n'}) > 0 {
		for i, l := range bytes.Split(data, []byte{'\n'}) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				out = append(out, line{i + 1, l})
			}
		}
		return out, nil
	}
	// NDJSON, or one object that may span lines: decode values one by one.
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
		out = append(out, line{len(out) + 1, c.Bytes()})
	}
}

// setAside keeps the pins load did not post: a count, and the rejects
// file when one was asked for.
type setAside struct {
	mu   sync.Mutex
	n    int64
	path string
	f    *os.File
	w    *bufio.Writer
	err  error
}

// newSetAside creates the rejects file at path, or keeps only a count when
// path is empty.
func newSetAside(path string) (*setAside, error) {
	s := &setAside{path: path}
	if path == "" {
		return s, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--rejects: %w", err)
	}
	s.f, s.w = f, bufio.NewWriter(f)
	return s, nil
}

// add sets p aside for reason.
func (s *setAside) add(p line, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if s.w == nil || s.err != nil {
		return
	}
	rec := json.RawMessage(p.raw)
	if !json.Valid(p.raw) {
		rec, _ = json.Marshal(string(p.raw)) // keep a malformed line as a string
	}
	b, _ := json.Marshal(struct {
		Line   int             `json:"line"`
		Record json.RawMessage `json:"record"`
		Reason string          `json:"reason"`
	}{p.n, rec, reason})
	_, s.err = s.w.Write(append(b, '\n'))
}

func (s *setAside) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// close flushes the rejects file; returns the first write error.
func (s *setAside) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return s.err
	}
	s.err = errors.Join(s.err, s.w.Flush(), s.f.Close())
	s.f = nil
	return s.err
}

type postOptions struct {
	client      *client
	batch       int
	concurrency int
	rate        float64 // pins/s, 0 for unlimited
	quiet       bool
	total       int64     // -1 when unknown
	until       time.Time // stop sending new pins then (zero: never); pins in flight finish
	desc        string
	aside       *setAside // with --skip-invalid: pins the server refuses are set aside here
}

// postResult is what a load or an emulation achieved.
type postResult struct {
	accepted, rejected, failed atomic.Int64
	requests                   atomic.Int64
	elapsed                    time.Duration
	aside                      *setAside
	stopped                    error // the fatal error that stopped the run
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

// report prints the counts and returns an error when a pin was neither
// accepted nor deliberately set aside, or when a fatal error stopped it.
func (r *postResult) report(w io.Writer) error {
	a, rej, f := r.accepted.Load(), r.rejected.Load(), r.failed.Load()
	secs := max(r.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "accepted %d pins", a)
	if r.aside != nil {
		fmt.Fprintf(w, ", skipped %d invalid", r.aside.count())
		if r.aside.path != "" {
			fmt.Fprintf(w, " (written to %s)", r.aside.path)
		}
	}
	fmt.Fprintf(w, ", rejected %d, failed %d, in %d requests over %.1fs (%s pins/s)\n",
		rej, f, r.requests.Load(), r.elapsed.Seconds(), rateText(float64(a)/secs))
	for _, p := range r.problems {
		fmt.Fprintln(w, "  "+p)
	}
	var err error
	if r.aside != nil {
		if cerr := r.aside.close(); cerr != nil {
			err = fmt.Errorf("--rejects: %w", cerr)
		}
	}
	switch {
	case r.stopped != nil:
		return errors.Join(r.stopped, err)
	case rej+f > 0:
		return errors.Join(fmt.Errorf("%d pins were not accepted", rej+f), err)
	}
	return err
}

// post sends pins from next in NDJSON batches, concurrently, at most at the
// rate, with a progress bar, until next ends, o.until passes or ctx ends.
// A fatal answer (a refused API key, nothing listening) stops it at once.
func post(ctx context.Context, env Env, o postOptions, next func(yield func(line) bool)) *postResult {
	res := &postResult{aside: o.aside}
	start := time.Now()
	bar := newMeter(env.Stderr, o.desc, "pins", o.total, o.quiet)
	var limiter *rate.Limiter
	if o.rate > 0 {
		// The bucket holds one batch and starts empty, so no burst goes
		// out on top of the rate.
		limiter = rate.NewLimiter(rate.Limit(o.rate), o.batch)
		limiter.AllowN(start, o.batch)
	}
	stopAt := ctx
	if !o.until.IsZero() {
		var cancel context.CancelFunc
		stopAt, cancel = context.WithDeadline(ctx, o.until)
		defer cancel()
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	var stopOnce sync.Once
	send := func(pins []line) {
		g.Go(func() error {
			n, sent := int64(len(pins)), int64(len(pins))
			accepted, err := o.client.postNDJSON(gctx, ndjson(pins), log)
			res.requests.Add(1)
			var rej *rejected
			if errors.As(err, &rej) && o.aside != nil {
				pins, accepted, err = repost(gctx, o.client, pins, rej, o.aside, log)
				res.requests.Add(1)
				n = int64(len(pins))
			}
			var fe fatal
			switch {
			case err == nil:
				res.accepted.Add(int64(accepted))
			case errors.As(err, &rej):
				res.rejected.Add(n)
				res.note(fmt.Sprintf("pins %s refused (%d): %s", span(pins), rej.Status, rej.Detail))
			case errors.As(err, &fe):
				res.failed.Add(n)
				stopOnce.Do(func() { res.stopped = err })
				bar.add(sent)
				return err // cancels gctx: the other batches cannot succeed either
			default:
				res.failed.Add(n)
				if gctx.Err() == nil {
					res.note(fmt.Sprintf("pins %s not delivered: %v", span(pins), err))
				}
			}
			bar.add(sent)
			return nil
		})
	}
	var batch []line
	next(func(p line) bool {
		if stopAt.Err() != nil || gctx.Err() != nil {
			return false
		}
		batch = append(batch, p)
		if len(batch) == o.batch {
			if limiter != nil && limiter.WaitN(stopAt, len(batch)) != nil {
				return false
			}
			send(batch)
			batch = nil
		}
		return true
	})
	if len(batch) > 0 && stopAt.Err() == nil && gctx.Err() == nil && (limiter == nil || limiter.WaitN(stopAt, len(batch)) == nil) {
		send(batch)
	}
	_ = g.Wait()
	bar.finish()
	res.elapsed = time.Since(start)
	return res
}

// pinProblems is the reason one pin checked on its own was refused: its
// field problems joined with "; ", as repost writes a server's refusal
// (the whole-request summary would count "1 of 1 pins" and name line 1).
func pinProblems(err error) string {
	var e *pin.Error
	if errors.As(err, &e) {
		if probs, ok := e.Detail.([]pin.FieldError); ok && len(probs) > 0 {
			msgs := make([]string, len(probs))
			for i, fe := range probs {
				msgs[i] = fe.Message
			}
			return strings.Join(msgs, "; ")
		}
	}
	return pin.ErrorMessage(err)
}

// repost sets aside the pins of a refused batch that the server's problem
// names (errors[].record, counting from 1), and posts the rest once more.
// Returns the pins of the last request, the number accepted and its error;
// when the problem names no record, it returns the refusal as it was.
func repost(ctx context.Context, c *client, pins []line, rej *rejected, aside *setAside, log *slog.Logger) ([]line, int, error) {
	reasons := map[int]string{}
	for _, e := range rej.Errors {
		if e.Record >= 1 && e.Record <= len(pins) {
			if reasons[e.Record] != "" {
				reasons[e.Record] += "; "
			}
			reasons[e.Record] += e.Message
		}
	}
	if len(reasons) == 0 {
		return pins, 0, rej
	}
	var rest []line
	for i, p := range pins {
		if r, bad := reasons[i+1]; bad {
			aside.add(p, r)
		} else {
			rest = append(rest, p)
		}
	}
	if len(rest) == 0 {
		return nil, 0, nil
	}
	n, err := c.postNDJSON(ctx, ndjson(rest), log)
	return rest, n, err
}

// ndjson joins pins into an NDJSON body.
func ndjson(pins []line) []byte {
	var b bytes.Buffer
	for _, p := range pins {
		b.Write(p.raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// span names the lines of pins: "3-7", or "5".
func span(pins []line) string {
	if len(pins) == 0 {
		return "none"
	}
	if len(pins) == 1 {
		return fmt.Sprint(pins[0].n)
	}
	return fmt.Sprintf("%d-%d", pins[0].n, pins[len(pins)-1].n)
}
