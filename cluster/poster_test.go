//go:build cluster

package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pinpipe/synth"
)

// answer is one non-2xx answer the poster got, in the phase it got it.
type answer struct {
	At     time.Time
	Phase  string
	URL    string
	Status int
	Detail string
}

func (a answer) String() string {
	return fmt.Sprintf("%s [%s] %s: %d %s", a.At.UTC().Format("15:04:05.000"), a.Phase, a.URL, a.Status, a.Detail)
}

// poster posts synthetic pins to several API instances without pause, the
// way `pinpipe load --url A --url B` does (cmd/client.go): it stays with
// one instance until it fails (a refused or broken connection, 429 or
// 5xx), then moves to the next at once, and retries the whole round with
// a short backoff when every instance failed. It records every accepted
// unique_id, every non-2xx answer and every failover.
type poster struct {
	urls  []string
	http  *http.Client
	phase atomic.Pointer[string]

	mu        sync.Mutex
	accepted  map[string]int // unique_id → 202s that covered it
	answers   []answer       // every non-2xx answer
	failovers []string       // every connection error that moved the poster on
	lost      []string       // requests given up on: their pins' fate is unknown
}

func newPoster(urls []string) *poster {
	p := &poster{urls: urls, accepted: map[string]int{}, http: &http.Client{Timeout: 30 * time.Second}}
	p.setPhase("start")
	return p
}

func (p *poster) setPhase(s string) { p.phase.Store(&s) }

// run posts requests of n pins from workers goroutines until stop is
// closed, then returns once every request in flight got its 202 (or was
// given up after giveUp). Each worker starts at its own instance, so the
// load is spread over them.
func (p *poster) run(stop <-chan struct{}, workers, n int, seed uint64, giveUp time.Duration) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := synth.New(seed + uint64(w))
			cur := w % len(p.urls)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var body bytes.Buffer
				ids := make([]string, 0, n)
				for range n {
					pin := g.Next()
					ids = append(ids, strings.ToLower(pin["unique_id"].(string)))
					line, _ := json.Marshal(pin)
					body.Write(append(line, '\n'))
				}
				cur = p.post(body.Bytes(), ids, cur, giveUp)
			}
		}()
	}
	wg.Wait()
}

// post posts one request until an instance answers 202, starting at
// instance cur, and returns the instance to start the next one at.
func (p *poster) post(body []byte, ids []string, cur int, giveUp time.Duration) int {
	deadline := time.Now().Add(giveUp)
	backoff := 50 * time.Millisecond
	for {
		for range p.urls {
			url := p.urls[cur]
			status, detail, err := p.postOnce(url, body)
			if err == nil && status == http.StatusAccepted {
				p.mu.Lock()
				for _, id := range ids {
					p.accepted[id]++
				}
				p.mu.Unlock()
				return cur
			}
			p.mu.Lock()
			if err != nil {
				p.failovers = append(p.failovers, fmt.Sprintf("[%s] %s: %v", *p.phase.Load(), url, err))
			} else {
				p.answers = append(p.answers, answer{At: time.Now(), Phase: *p.phase.Load(), URL: url, Status: status, Detail: detail})
			}
			p.mu.Unlock()
			if err == nil && status < 500 && status != http.StatusTooManyRequests {
				// A refusal of the content: the suite's pins are valid, so
				// this is a defect; record it and do not post them again.
				return cur
			}
			cur = (cur + 1) % len(p.urls)
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			p.lost = append(p.lost, fmt.Sprintf("[%s] a request of %d pins failed everywhere for %s", *p.phase.Load(), len(ids), giveUp))
			p.mu.Unlock()
			return cur
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// postOnce posts body to the instance at base. Returns the status and the
// problem's detail, or the error when no answer came.
func (p *poster) postOnce(base string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/pins", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var prob struct{ Detail string }
	if resp.StatusCode != http.StatusAccepted && json.Unmarshal(b, &prob) == nil && prob.Detail != "" {
		return resp.StatusCode, prob.Detail, nil
	}
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// snapshot returns the unique_ids accepted so far.
func (p *poster) snapshot() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.accepted))
	for id := range p.accepted {
		out[id] = true
	}
	return out
}

// count returns how many pins were accepted so far.
func (p *poster) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// answersIn returns the non-2xx answers got in phase.
func (p *poster) answersIn(phase string) []answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []answer
	for _, a := range p.answers {
		if a.Phase == phase {
			out = append(out, a)
		}
	}
	return out
}
