package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"pinpipe/internal/retry"
)

// posterFlags are the flags of every command that posts pins to a server.
type posterFlags struct {
	urls   []string
	apiKey string
	quiet  bool
}

// defaultURL is where the poster commands post without --url or
// PINPIPE_URL.
const defaultURL = "http://127.0.0.1:8000"

// urlHelp is the help of --url, shared by the commands that talk to a
// server.
const urlHelp = "pinpipe's base URL (default $PINPIPE_URL, else " + defaultURL + ")"

// addPosterFlags adds --url, --api-key and --quiet to c.
func addPosterFlags(c *cobra.Command) *posterFlags {
	pf := &posterFlags{}
	fs := c.Flags()
	fs.StringSliceVar(&pf.urls, "url", nil, urlHelp+"; repeat it or separate with commas to fail over between instances on connection errors, 429 and 5xx")
	fs.StringVar(&pf.apiKey, "api-key", "", "API key (default $PINPIPE_API_KEY)")
	fs.BoolVar(&pf.quiet, "quiet", false, "no progress bar")
	return pf
}

// client returns the client the flags describe: --url, else PINPIPE_URL
// (comma-separated too), else defaultURL; --api-key, else PINPIPE_API_KEY.
// Returns a usageError naming a URL that is not an http(s) base URL.
func (pf *posterFlags) client(env Env, conns int) (*client, error) {
	urls := pf.urls
	if len(urls) == 0 {
		urls = strings.Split(env.Getenv("PINPIPE_URL"), ",")
	}
	var clean []string
	for _, u := range urls {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := checkBaseURL(u); err != nil {
			return nil, err
		}
		clean = append(clean, u)
	}
	if len(clean) == 0 {
		clean = []string{defaultURL}
	}
	key := pf.apiKey
	if key == "" {
		key = env.Getenv("PINPIPE_API_KEY")
	}
	return newClient(clean, key, conns), nil
}

// checkBaseURL returns a usageError unless u is an http or https URL with
// a host, such as http://127.0.0.1:8000.
func checkBaseURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return usagef("%q is not a pinpipe URL: want http://host:port, such as %s", u, defaultURL)
	}
	return nil
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

// rejected is a request the server refused for its content (400, 413);
// retrying it cannot help.
type rejected struct{ problem }

func (r *rejected) Error() string { return fmt.Sprintf("%d: %s", r.Status, r.Detail) }

// deadFor is how long the client keeps trying when nothing listens at
// any URL (connection refused) before it gives up.
const deadFor = 3 * time.Second

// fatal is an answer that stops the whole load: the API key was refused
// (401, 403), nothing listens at any URL, or the answer is not pinpipe's.
// Posting the other batches cannot succeed either.
type fatal struct{ error }

func (e fatal) Unwrap() error { return e.error }

// postNDJSON posts one NDJSON body and returns the number of pins accepted.
// Refusals for content (400, 413) come back as *rejected at once; 401 and
// 403, an answer that is not pinpipe's, and connection refused at every URL
// for deadFor come back as fatal. Other unavailability (network errors,
// 429, 5xx — an instance that is stopping, restarting or lacks the api
// role) moves on to the next URL at once; when every URL failed, the round
// is retried with backoff for about half a minute. Only a 202 counts, so a
// pin is counted once however many tries it took; a 202 lost on the way
// back makes the retry produce the pins again, which the lanes' dedup by
// unique_id absorbs.
func (c *client) postNDJSON(ctx context.Context, body []byte, log *slog.Logger) (int, error) {
	var accepted int
	start := time.Now()
	err := retry.Do(ctx, retry.Bounded, log, "post pins", func() error {
		var errs []error
		refused := 0
		for range c.urls {
			i := c.cur.Load()
			n, err := c.postOnce(ctx, c.urls[i], body)
			if err == nil {
				accepted = n
				return nil
			}
			var rej *rejected
			var fe fatal
			if errors.As(err, &rej) || errors.As(err, &fe) || ctx.Err() != nil {
				return retry.Permanent(err)
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
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
		if refused == len(c.urls) && time.Since(start) >= deadFor {
			return retry.Permanent(fatal{fmt.Errorf("nothing listens at %s (connection refused for %s); is `pinpipe serve` running there? Point --url or PINPIPE_URL at it",
				strings.Join(c.urls, ", "), deadFor)})
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
		return 0, fatal{fmt.Errorf("%s: %w", base, err)}
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
			return 0, fatal{fmt.Errorf("%s: unexpected answer %q: %w", base, data, err)}
		}
		return ok.Accepted, nil
	}
	var p problem
	if json.Unmarshal(data, &p) != nil || p.Detail == "" {
		p.Detail = strings.TrimSpace(string(data))
	}
	p.Status = resp.StatusCode
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return 0, fmt.Errorf("%s: %d: %s", base, p.Status, p.Detail)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return 0, fatal{fmt.Errorf("%s refused the API key (%d: %s); pass the server's key with --api-key or PINPIPE_API_KEY", base, p.Status, p.Detail)}
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge:
		return 0, &rejected{p}
	}
	return 0, fatal{fmt.Errorf("%s: unexpected answer %d: %s; is this a pinpipe server?", base, p.Status, p.Detail)}
}
