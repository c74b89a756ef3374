package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"pinpipe/internal/retry"
)

// posterFlags are the flags of every command that posts pins to a server.
type posterFlags struct {
	fs     *flag.FlagSet
	url    *urlList
	apiKey *string
	quiet  *bool
}

// defaultURL is where the poster commands post without --url.
const defaultURL = "http://127.0.0.1:8000"

// urlList is a repeatable, comma-separated --url: the pinpipe instances to
// post to, the first one first.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*u = append(*u, strings.TrimRight(p, "/"))
		}
	}
	return nil
}

// list returns the URLs given, or defaultURL when none was.
func (u *urlList) list() []string {
	if len(*u) == 0 {
		return []string{defaultURL}
	}
	return *u
}

// newPosterFlags returns command name's flag set with --url, --api-key and
// --quiet, and usage text made of summary then the flags.
func newPosterFlags(name, summary string, env Env) posterFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	pf := posterFlags{
		fs:     fs,
		url:    &urlList{},
		apiKey: fs.String("api-key", env.Getenv("PINPIPE_API_KEY"), "API key (default $PINPIPE_API_KEY)"),
		quiet:  fs.Bool("quiet", false, "no progress bar"),
	}
	fs.Var(pf.url, "url", "pinpipe's base URL (default "+defaultURL+"); repeat it or separate with commas to fail over between instances on connection errors, 429 and 5xx")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, summary+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return pf
}

// client posts pins to one of several pinpipe instances, staying with one
// until it fails.
type client struct {
	urls   []string
	cur    atomic.Int64 // index in urls of the instance posted to
	apiKey string
	http   *http.Client
}

func newClient(urls []string, apiKey string, conns int) *client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	c := &client{apiKey: apiKey, http: &http.Client{Transport: t, Timeout: 2 * time.Minute}}
	for _, u := range urls {
		c.urls = append(c.urls, strings.TrimRight(u, "/"))
	}
	return c
}

// problem is the part of a problem+json answer the CLI shows.
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Record  int    `json:"record"`
		Line    int    `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// errUnexpected is an answer that is not pinpipe's; retrying cannot help.
type errUnexpected struct{ error }

func (e errUnexpected) Unwrap() error { return e.error }

// rejected is a request the server refused for its content; retrying it
// cannot help.
type rejected struct{ problem }

func (r *rejected) Error() string { return fmt.Sprintf("%d: %s", r.Status, r.Detail) }

// postNDJSON posts one NDJSON body and returns the number of pins accepted.
// Refusals for content (400, 401, 413) come back as *rejected at once.
// Unavailability (network errors, 429, 5xx — an instance that is
// stopping, restarting or lacks the api role) moves on to the next URL at
// once; when every URL failed, the round is retried with backoff for about
// half a minute. Only a 202 counts, so a pin is counted once however many
// tries it took; a 202 lost on the way back makes the retry produce the
// pins again, which the lanes' dedup by unique_id absorbs.
func (c *client) postNDJSON(ctx context.Context, body []byte, log *slog.Logger) (int, error) {
	var accepted int
	err := retry.Do(ctx, retry.Bounded, log, "post pins", func() error {
		var errs []error
		for range c.urls {
			i := c.cur.Load()
			n, err := c.postOnce(ctx, c.urls[i], body)
			if err == nil {
				accepted = n
				return nil
			}
			var rej *rejected
			var odd errUnexpected
			if errors.As(err, &rej) || errors.As(err, &odd) || ctx.Err() != nil {
				return retry.Permanent(err)
			}
			errs = append(errs, err)
			if len(c.urls) > 1 {
				next := (i + 1) % int64(len(c.urls))
				if c.cur.CompareAndSwap(i, next) {
					log.Warn("post pins: failing over to the next instance", slog.String("from", c.urls[i]),
						slog.String("to", c.urls[next]), slog.Any("err", err))
				}
			}
		}
		return errors.Join(errs...)
	})
	return accepted, err
}

// postOnce posts body to the instance at base. Returns the number accepted
// on 202, a *rejected for a refusal of the content, or another error when
// the instance is unavailable.
func (c *client) postOnce(ctx context.Context, base string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/pins", bytes.NewReader(body))
	if err != nil {
		return 0, &rejected{problem{Detail: err.Error()}}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusAccepted {
		var ok struct{ Accepted int }
		if err := json.Unmarshal(data, &ok); err != nil {
			// Produced, but the count is unreadable: posting again
			// would produce the pins twice.
			return 0, errUnexpected{fmt.Errorf("%s: unexpected answer %q: %w", base, data, err)}
		}
		return ok.Accepted, nil
	}
	var p problem
	if json.Unmarshal(data, &p) != nil || p.Detail == "" {
		p.Detail = strings.TrimSpace(string(data))
	}
	p.Status = resp.StatusCode
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return 0, fmt.Errorf("%s: %d: %s", base, p.Status, p.Detail)
	}
	return 0, &rejected{p}
}
