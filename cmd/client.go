package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"pinpipe/internal/retry"
)

// posterFlags are the flags of every command that posts pins to a server.
type posterFlags struct {
	fs     *flag.FlagSet
	url    *string
	apiKey *string
	quiet  *bool
}

// newPosterFlags returns command name's flag set with --url, --api-key and
// --quiet, and usage text made of summary then the flags.
func newPosterFlags(name, summary string, env Env) posterFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	pf := posterFlags{
		fs:     fs,
		url:    fs.String("url", "http://127.0.0.1:8000", "pinpipe's base URL"),
		apiKey: fs.String("api-key", env.Getenv("PINPIPE_API_KEY"), "API key (default $PINPIPE_API_KEY)"),
		quiet:  fs.Bool("quiet", false, "no progress bar"),
	}
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, summary+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return pf
}

// client posts pins to a pinpipe server.
type client struct {
	url    string
	apiKey string
	http   *http.Client
}

func newClient(url, apiKey string, conns int) *client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	return &client{url: strings.TrimRight(url, "/"), apiKey: apiKey, http: &http.Client{Transport: t, Timeout: 2 * time.Minute}}
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

// rejected is a request the server refused for its content; retrying it
// cannot help.
type rejected struct{ problem }

func (r *rejected) Error() string { return fmt.Sprintf("%d: %s", r.Status, r.Detail) }

// postNDJSON posts one NDJSON body and returns the number of pins accepted.
// Refusals for content (400, 401, 413) come back as *rejected at once;
// unavailability (503, 429, network errors) is retried with backoff for
// about half a minute.
func (c *client) postNDJSON(ctx context.Context, body []byte, log *slog.Logger) (int, error) {
	var accepted int
	err := retry.Do(ctx, retry.Bounded, log, "post pins", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/pins", bytes.NewReader(body))
		if err != nil {
			return retry.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		if c.apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+c.apiKey)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusAccepted {
			var ok struct{ Accepted int }
			if err := json.Unmarshal(data, &ok); err != nil {
				return retry.Permanent(fmt.Errorf("unexpected answer %q: %w", data, err))
			}
			accepted = ok.Accepted
			return nil
		}
		var p problem
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(data))
		}
		p.Status = resp.StatusCode
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("%d: %s", p.Status, p.Detail)
		}
		return retry.Permanent(&rejected{p})
	})
	return accepted, err
}
