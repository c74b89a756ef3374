package stream_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/synth"
)

// behindProxy returns a test config whose Postgres is reached through a
// proxy that can cut it. Skips the test without a real Postgres.
func behindProxy(t *testing.T) (*config.Config, *testenv.Proxy) {
	t.Helper()
	cfg := testenv.Config(t)
	if cfg.PostgresURL == "" {
		t.Skip("needs a real Postgres (PINPIPE_POSTGRES_URL) to take away")
	}
	u, err := url.Parse(cfg.PostgresURL)
	testenv.Must(t, err)
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	cfg.PostgresURL = u.String()
	return cfg, proxy
}

// poster posts a few new pins every 20 ms until stopped, and remembers the
// unique_id of every pin accepted with a 202.
type poster struct {
	mu       sync.Mutex
	accepted map[string]bool
	stop     chan struct{}
	done     chan struct{}
}

func startPoster(addr string, seed uint64) *poster {
	ps := &poster{accepted: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	g := synth.New(seed)
	go func() {
		defer close(ps.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ps.stop:
				return
			case <-tick.C:
			}
			objs := pins(g, 10)
			if code, err := post(addr, objs); err == nil && code == http.StatusAccepted {
				ps.mu.Lock()
				for _, o := range objs {
					p, _ := pin.Validate(o)
					ps.accepted[pin.Clean(p, pin.Lineage{}).UniqueID] = true
				}
				ps.mu.Unlock()
			}
		}
	}()
	return ps
}

// finish stops posting and returns the accepted unique_ids.
func (ps *poster) finish() map[string]bool {
	close(ps.stop)
	<-ps.done
	return ps.accepted
}

func (ps *poster) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.accepted)
}

// assertExactlyOnce checks that Postgres holds exactly the accepted pins.
func assertExactlyOnce(t *testing.T, cfg *config.Config, accepted map[string]bool) {
	t.Helper()
	db := openStore(t, cfg)
	rows, err := db.Query(`SELECT unique_id FROM pinterest.pins`)
	testenv.Must(t, err)
	defer rows.Close()
	stored := 0
	for rows.Next() {
		var id string
		testenv.Must(t, rows.Scan(&id))
		stored++
		if !accepted[id] {
			t.Errorf("pin %s is stored but was never accepted", id)
		}
	}
	testenv.Must(t, rows.Err())
	if stored != len(accepted) {
		t.Errorf("Postgres holds %d pins, %d were accepted", stored, len(accepted))
	}
	assertAggregatesMatchRows(t, db)
}

// awaitCaughtUp waits until the lane stored every accepted pin and its lag
// is 0.
func awaitCaughtUp(t *testing.T, addr string, want int) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		st, ok := stats(t, addr)
		return ok && st.Total == int64(want) && st.Lag == 0, fmt.Sprintf("total %d of %d, lag %d (ok %v)", st.Total, want, st.Lag, ok)
	})
}

func TestStreamSurvivesPostgresOutage(t *testing.T) {
	cfg, proxy := behindProxy(t)
	p := start(t, cfg)
	ps := startPoster(p.Addr, 3)
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		st, ok := stats(t, p.Addr)
		return ok && st.Total > 0, "no pin in Postgres yet"
	})

	proxy.Down()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		ok, detail := postgresReady(t, p.Addr)
		return !ok, "/readyz still says postgres is ok: " + detail
	})
	if code := getJSON(t, p.Addr, "/stream/stats", &struct{}{}); code != http.StatusServiceUnavailable {
		t.Errorf("/stream/stats with Postgres down: status %d, want 503", code)
	}
	// Pins keep being accepted, and the lag shows them waiting.
	during := ps.count()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		lag := metric(t, p.Registry, "pinpipe_stream_lag_messages")
		return ps.count() > during && lag > 0, fmt.Sprintf("accepted %d (from %d), lag %v", ps.count(), during, lag)
	})
	time.Sleep(5 * time.Second) // the outage, under load

	proxy.Up()
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		ok, detail := postgresReady(t, p.Addr)
		return ok, "/readyz: " + detail
	})
	accepted := ps.finish()
	awaitCaughtUp(t, p.Addr, len(accepted))
	assertExactlyOnce(t, cfg, accepted)
}

func TestStreamStartsAndCatchesUpWhilePostgresIsDown(t *testing.T) {
	cfg, proxy := behindProxy(t)
	proxy.Down()
	p := start(t, cfg) // no schema yet, and none can be made
	objs := pins(synth.New(4), 200)
	mustPost(t, p.Addr, objs)
	if ok, detail := postgresReady(t, p.Addr); ok {
		t.Errorf("/readyz says postgres is ok while it is down: %s", detail)
	}

	proxy.Up()
	awaitCaughtUp(t, p.Addr, len(objs))
	accepted := map[string]bool{}
	for _, o := range objs {
		accepted[expected(t, o).UniqueID] = true
	}
	assertExactlyOnce(t, cfg, accepted)
}
