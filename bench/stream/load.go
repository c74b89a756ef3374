package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pinpipe/synth"
)

// loader posts new synthetic pins (every one a new unique_id) to a pinpipe.
type loader struct {
	url    string
	perReq int
	client *http.Client

	mu  sync.Mutex
	gen *synth.Generator
	ids map[string]bool // accepted unique_ids, when tracked

	accepted atomic.Int64
	failed   atomic.Int64 // requests not answered 202
}

func newLoader(addr string, perReq int, seed uint64, track bool) *loader {
	l := &loader{
		url:    "http://" + addr + "/pins",
		perReq: perReq,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		gen:    synth.New(seed),
	}
	if track {
		l.ids = map[string]bool{}
	}
	return l
}

// request returns the NDJSON body of n new pins and their unique_ids.
func (l *loader) request(n int) ([]byte, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	ids := make([]string, n)
	for i := range n {
		p := l.gen.Next()
		ids[i] = strings.ToLower(p["unique_id"].(string))
		line, _ := json.Marshal(p)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), ids
}

// send posts one request and counts its pins when they were accepted.
func (l *loader) send(body []byte, ids []string) {
	resp, err := l.client.Post(l.url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		l.failed.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		l.failed.Add(1)
		return
	}
	if l.ids != nil {
		l.mu.Lock()
		for _, id := range ids {
			l.ids[id] = true
		}
		l.mu.Unlock()
	}
	l.accepted.Add(int64(len(ids)))
}

// steady posts rate pins/s, in requests of perReq pins, until ctx ends. The
// requests go out from a pool of senders, so a slow answer does not delay
// the next request; when every sender is busy the pace drops (the table
// shows the pins/s actually accepted).
func (l *loader) steady(ctx context.Context, rate int) {
	work := make(chan int, 64)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for n := range work {
				l.send(l.request(n))
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			owed := int(float64(rate)*now.Sub(start).Seconds()) - sent
			for owed >= l.perReq || (owed > 0 && l.perReq > rate/100) {
				n := min(owed, l.perReq)
				select {
				case work <- n:
				case <-ctx.Done():
					break loop
				}
				sent += n
				owed -= n
			}
		}
	}
	close(work)
	wg.Wait()
}

// flat posts from workers as fast as pinpipe answers, until ctx ends.
func (l *loader) flat(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				l.send(l.request(l.perReq))
			}
		})
	}
	wg.Wait()
}

// acceptedIDs returns the tracked unique_ids accepted so far.
func (l *loader) acceptedIDs() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.ids))
	for id := range l.ids {
		out[id] = true
	}
	return out
}
