package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"pinpipe/broker"
	"pinpipe/synth"
)

// benchIngest measures the seed's API and pinpipe's POST /pins, one after
// the other, each producing to its own topic of the real Kafka.
func benchIngest(ctx context.Context, e *env, res *results) error {
	seedTopic, ppTopic := "peers-ingest-seed-"+e.run, "peers-ingest-pinpipe-"+e.run
	for _, t := range []string{seedTopic, ppTopic} {
		if err := broker.EnsureTopic(ctx, e.stack.brokers, t, 3); err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
	}
	defer deleteTopics(e.stack.brokers, seedTopic, ppTopic)

	seedPort, err := freePort()
	if err != nil {
		return err
	}
	seed, err := start(e, "ingest-seed", e.dir(), withEnv(nil,
		"PEERS_KAFKA_BROKERS="+joinComma(e.stack.brokers), "PEERS_TOPIC="+seedTopic, "PEERS_PORT="+strconv.Itoa(seedPort)),
		e.python, "seed_api.py")
	if err != nil {
		return err
	}
	defer seed.stop()
	seedURL := fmt.Sprintf("http://127.0.0.1:%d", seedPort)
	if err := waitHTTP(ctx, seed, seedURL+"/openapi.json", time.Minute); err != nil {
		return err
	}

	ppPort, err := freePort()
	if err != nil {
		return err
	}
	pp, err := start(e, "ingest-pinpipe", e.repo, pinpipeEnv(
		"PINPIPE_ADDR="+fmt.Sprintf("127.0.0.1:%d", ppPort),
		"PINPIPE_DATA_DIR="+filepath.Join(e.work, "ingest-data"),
		"PINPIPE_KAFKA_BROKERS="+joinComma(e.stack.brokers), "PINPIPE_TOPIC="+ppTopic,
		"PINPIPE_ROLES=api", "PINPIPE_LOG_LEVEL=warn"),
		e.pinpipe, "serve")
	if err != nil {
		return err
	}
	defer pp.stop()
	ppURL := fmt.Sprintf("http://127.0.0.1:%d", ppPort)
	if err := waitHTTP(ctx, pp, ppURL+"/readyz", time.Minute); err != nil {
		return err
	}

	gen := synth.New(11)
	singles := make([][]byte, 20_000)
	for i := range singles {
		singles[i], _ = json.Marshal(gen.Next())
	}
	var arrays, ndjson [][]byte
	for range 16 {
		pins := make([]synth.Pin, e.bulkSize)
		var nd bytes.Buffer
		for i := range pins {
			pins[i] = gen.Next()
			line, _ := json.Marshal(pins[i])
			nd.Write(append(line, '\n'))
		}
		a, _ := json.Marshal(pins)
		arrays, ndjson = append(arrays, a), append(ndjson, nd.Bytes())
	}

	type side struct {
		name, url, ctype string
		bodies           [][]byte
		p                *proc
	}
	cases := []struct {
		name        string
		conns, pins int
		seed, pp    side
	}{
		{"one pin a request", e.conns, 1,
			side{"seed", seedURL + "/pin/", "application/json", singles, seed},
			side{"pinpipe", ppURL + "/pins", "application/json", singles, pp}},
		{fmt.Sprintf("%d pins a request", e.bulkSize), e.bulkConn, e.bulkSize,
			side{"seed", seedURL + "/pins/", "application/json", arrays, seed},
			side{"pinpipe", ppURL + "/pins", "application/x-ndjson", ndjson, pp}},
	}
	for _, c := range cases {
		var m [2]loadResult
		for i, s := range []side{c.seed, c.pp} {
			log.Printf("ingest: %s, %s, %d connections", s.name, c.name, c.conns)
			_ = load(ctx, s.url, s.ctype, s.bodies, c.conns, e.warmup)
			cpu0, err := treeCPU(s.p.pid())
			if err != nil {
				return err
			}
			r := load(ctx, s.url, s.ctype, s.bodies, c.conns, e.duration)
			cpu1, err := treeCPU(s.p.pid())
			if err != nil {
				return err
			}
			r.cpu = cpu1 - cpu0
			r.pinsPerReq = c.pins
			if r.ok == 0 {
				return fmt.Errorf("%s, %s: no request succeeded (%d failed: %s)", s.name, c.name, r.failed, r.lastErr)
			}
			m[i] = r
			res.record("ingest", s.name, c.name+fmt.Sprintf(", %d conns", c.conns),
				"%.0f req/s, %.0f pins/s, p50 %.1f ms, p99 %.1f ms, CPU %.1f µs/pin (%.1f s of CPU over %.0f s), %d failed",
				r.reqPerSec(), r.pinsPerSec(), ms(r.p50), ms(r.p99), r.cpuPerPin(), r.cpu.Seconds(), r.elapsed.Seconds(), r.failed)
		}
		seedR, ppR := m[0], m[1]
		res.compare("ingest", c.name+": throughput", "FastAPI+kafka-python", "pins/s", ppR.pinsPerSec(), seedR.pinsPerSec(), false)
		res.compare("ingest", c.name+": p99 latency", "FastAPI+kafka-python", "ms", ms(ppR.p99), ms(seedR.p99), true)
		res.compare("ingest", c.name+": server CPU per pin", "FastAPI+kafka-python", "µs", ppR.cpuPerPin(), seedR.cpuPerPin(), true)
	}
	return nil
}

// loadResult is what one load run measured.
type loadResult struct {
	ok, failed int64
	lastErr    string
	elapsed    time.Duration
	p50, p99   time.Duration
	cpu        time.Duration
	pinsPerReq int
}

func (r loadResult) reqPerSec() float64  { return float64(r.ok) / r.elapsed.Seconds() }
func (r loadResult) pinsPerSec() float64 { return r.reqPerSec() * float64(r.pinsPerReq) }
func (r loadResult) cpuPerPin() float64 {
	return float64(r.cpu.Microseconds()) / float64(r.ok*int64(r.pinsPerReq))
}

// load posts bodies (in turn) to url from conns connections for d, and
// returns the successful requests' latencies. A request that does not get a
// 2xx counts as failed.
func load(ctx context.Context, url, ctype string, bodies [][]byte, conns int, d time.Duration) loadResult {
	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
		},
	}
	defer client.CloseIdleConnections()
	var (
		next    atomic.Int64
		failed  atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		lastErr string
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				body := bodies[int(next.Add(1))%len(bodies)]
				t := time.Now()
				err := post(client, url, ctype, body)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					lastErr = err.Error()
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := loadResult{ok: int64(len(lats)), failed: failed.Load(), lastErr: lastErr, elapsed: time.Since(start)}
	slices.Sort(lats)
	r.p50, r.p99 = quantile(lats, 0.50), quantile(lats, 0.99)
	return r
}

func post(client *http.Client, url, ctype string, body []byte) error {
	resp, err := client.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return nil
}

// quantile returns the q-quantile of sorted durations (0 when empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
