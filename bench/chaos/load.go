package main

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

	"github.com/jackc/pgx/v5"

	"pinpipe/internal/ledger"
	"pinpipe/synth"
)

// loader posts pins at a steady rate to the instances, failing over between
// them, and records every request's outcome in the ledger. About one pin in
// five of a request is a newer version of a pin accepted earlier: its title
// says its version (ledger.Title), and a pin is sent again only once its
// previous version was accepted, so the order of versions is known.
type loader struct {
	urls   []string
	ledger *ledger.Ledger
	http   *http.Client
	giveUp time.Duration

	mu      sync.Mutex
	settled map[string]synth.Pin // pins whose latest version was accepted, ready for a newer one
	version map[string]int
	sampled []sample // accepted pins whose arrival in Postgres is being timed

	answers  [5]atomic.Int64 // by class: 2xx, 4xx, 5xx, unknown, 429
	worst    atomic.Int64    // worst freshness seen, in ms
	requests atomic.Int64
}

const (
	class2xx = iota
	class4xx
	class5xx
	classUnknown
	class429
)

type sample struct {
	id, title string
	at        time.Time
}

func newLoader(urls []string, l *ledger.Ledger) *loader {
	return &loader{urls: urls, ledger: l, http: &http.Client{Timeout: 30 * time.Second}, giveUp: 2 * time.Minute,
		settled: map[string]synth.Pin{}, version: map[string]int{}}
}

// run posts requests of n pins so that rate pins/s go out, from workers
// goroutines, until ctx ends; each request in flight then finishes.
func (ld *loader) run(ctx context.Context, seed uint64, workers, n int, rate float64) {
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) * float64(n*workers) / rate)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := synth.New(seed + uint64(w))
			tick := time.NewTicker(every)
			defer tick.Stop()
			cur := w % len(ld.urls)
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				cur = ld.post(ld.body(g, n), cur)
			}
		}()
	}
	wg.Wait()
}

// request is one request's pins with the title each was sent with.
type request struct {
	body   []byte
	titles map[string]string
	pins   map[string]synth.Pin
}

func (ld *loader) body(g *synth.Generator, n int) request {
	b := request{titles: map[string]string{}, pins: map[string]synth.Pin{}}
	ld.mu.Lock()
	for id, p := range ld.settled {
		if len(b.pins) >= n/5 {
			break
		}
		delete(ld.settled, id)
		ld.version[id]++
		p["title"] = ledger.Title(ld.version[id])
		b.pins[id], b.titles[id] = p, p["title"].(string)
	}
	ld.mu.Unlock()
	for len(b.pins) < n {
		p := g.Next()
		id := strings.ToLower(p["unique_id"].(string))
		p["title"] = ledger.Title(1)
		b.pins[id], b.titles[id] = p, ledger.Title(1)
	}
	var buf bytes.Buffer
	for _, p := range b.pins {
		line, _ := json.Marshal(p)
		buf.Write(append(line, '\n'))
	}
	b.body = buf.Bytes()
	return b
}

// post posts one request until an instance answers 202, starting at
// instance cur, fails over on anything but a 4xx, and gives up after
// ld.giveUp. It records the outcome and returns the instance to start the
// next request at.
func (ld *loader) post(b request, cur int) int {
	ld.requests.Add(1)
	deadline := time.Now().Add(ld.giveUp)
	backoff := 50 * time.Millisecond
	uncertain := false
	for {
		for range ld.urls {
			status, err := ld.postOnce(ld.urls[cur], b.body)
			switch {
			case err != nil:
				ld.answers[classUnknown].Add(1)
				uncertain = true
			case status == http.StatusAccepted:
				ld.answers[class2xx].Add(1)
				ld.accepted(b)
				return cur
			case status == http.StatusTooManyRequests:
				ld.answers[class429].Add(1)
			case status >= 500:
				ld.answers[class5xx].Add(1)
				// A 5xx may come after part of the request was written.
				uncertain = true
			default:
				ld.answers[class4xx].Add(1)
				o := ledger.Refused
				if uncertain {
					o = ledger.Unknown
				}
				ld.ledger.Record(b.titles, o)
				return cur
			}
			cur = (cur + 1) % len(ld.urls)
		}
		if time.Now().After(deadline) {
			o := ledger.Refused
			if uncertain {
				o = ledger.Unknown
			}
			ld.ledger.Record(b.titles, o)
			return cur
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (ld *loader) accepted(b request) {
	ld.ledger.Record(b.titles, ledger.Accepted)
	now := time.Now()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	for id, p := range b.pins {
		if ld.version[id] == 0 {
			ld.version[id] = 1
		}
		ld.settled[id] = p
		if len(ld.sampled) < 2000 && ld.requests.Load()%5 == 0 {
			ld.sampled = append(ld.sampled, sample{id: id, title: b.titles[id], at: now})
		}
	}
}

func (ld *loader) postOnce(base string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/pins", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := ld.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// watchFreshness times sampled accepted pins until their version is in
// Postgres (read directly, not through the cut), and keeps the worst time.
func (ld *loader) watchFreshness(ctx context.Context, pgURL string) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, pgURL)
			if err != nil {
				continue
			}
			conn = c
		}
		ld.mu.Lock()
		pending := append([]sample(nil), ld.sampled...)
		ld.mu.Unlock()
		if len(pending) == 0 {
			continue
		}
		ids := make([]string, len(pending))
		for i, s := range pending {
			ids[i] = s.id
		}
		rows, err := ledger.PostgresHas(ctx, conn, ids)
		if err != nil {
			_ = conn.Close(ctx)
			conn = nil
			continue
		}
		now := time.Now()
		done := map[string]bool{}
		for _, s := range pending {
			if got := rows[s.id]; len(got) > 0 && versionAtLeast(got[0], s.title) {
				done[s.id+s.title] = true
				if ms := now.Sub(s.at).Milliseconds(); ms > ld.worst.Load() {
					ld.worst.Store(ms)
				}
			}
		}
		ld.mu.Lock()
		kept := ld.sampled[:0]
		for _, s := range ld.sampled {
			if !done[s.id+s.title] {
				kept = append(kept, s)
			}
		}
		ld.sampled = kept
		ld.mu.Unlock()
	}
}

// versionAtLeast reports whether title is version want or a later one.
func versionAtLeast(title, want string) bool {
	var a, b int
	_, e1 := fmt.Sscanf(title, "chaos v%d", &a)
	_, e2 := fmt.Sscanf(want, "chaos v%d", &b)
	return e1 == nil && e2 == nil && a >= b
}
