package cassandra_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"pinpipe/batch/cassandra"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// TestTwoPinpipesNeverRunOneDayAtOnce opens the same keyspace twice, as a
// server and `pinpipe batch` would, and checks that the second cannot take
// a day the first holds, and can once it is released.
func TestTwoPinpipesNeverRunOneDayAtOnce(t *testing.T) {
	hosts, ks := testenv.Cassandra(t)
	if hosts == nil {
		t.Skip("one process owns the embedded stand-in's file; set PINPIPE_CASSANDRA_HOSTS (scripts/stack env) to run this against Cassandra")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := func() *cassandra.Store {
		s, err := cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
		testenv.Must(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	server, cli := open(), open()

	unlock, err := server.LockDay(ctx, "2026-11-24", "run-a")
	testenv.Must(t, err)
	if _, err := cli.LockDay(ctx, "2026-11-24", "run-b"); pin.ErrorCode(err) != pin.ECONFLICT || !strings.Contains(pin.ErrorMessage(err), "run-a") {
		t.Fatalf("a second pinpipe took a held day: %v, want a conflict naming run-a", err)
	}
	other, err := cli.LockDay(ctx, "2026-11-23", "run-c")
	testenv.Must(t, err) // another day is free
	other()

	unlock()
	again, err := cli.LockDay(ctx, "2026-11-24", "run-b")
	if err != nil {
		t.Fatalf("the day stayed held after its run released it: %v", err)
	}
	again()
}

// TestALockThatTimedOutDoesNotHoldTheDay takes a day through a proxy that
// holds back Cassandra's answers, so the lightweight transaction reaches
// Cassandra and is applied while LockDay gives up waiting, as a timeout
// during a Cassandra restart does. The run that asked never runs: the day
// must not stay held by it (for DayLockTTL, refusing every run of the day,
// on every pinpipe, as "already running"), so another pinpipe's run of the
// day takes it at once.
func TestALockThatTimedOutDoesNotHoldTheDay(t *testing.T) {
	hosts, ks := realCassandra(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := newHoldingProxy(t, hosts[0])
	open := func(host string) *cassandra.Store {
		s, err := cassandra.Open(ctx, cassandra.Options{Hosts: []string{host}, Keyspace: ks, Log: testenv.Log(t)})
		testenv.Must(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	viaProxy, other := open(p.addr), open(hosts[0])
	const dt = "2026-11-25"
	// Lock and release another day first, so the driver has prepared the
	// statements and the held lock is one EXECUTE that reaches Cassandra.
	warm, err := viaProxy.LockDay(ctx, "2026-11-24", "run-warm")
	testenv.Must(t, err)
	warm()

	p.hold()
	lctx, lcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = viaProxy.LockDay(lctx, dt, "run-timed-out")
	lcancel()
	p.release()
	if err == nil {
		t.Fatal("LockDay succeeded while Cassandra's answers were held back; the proxy did not hold them")
	}
	unlock, err := other.LockDay(ctx, dt, "run-next")
	if err != nil {
		t.Fatalf("after a lock attempt that timed out, another pinpipe's run of the day was refused: %v", err)
	}
	unlock()
}

// holdingProxy forwards TCP to a target; while held, it keeps the target's
// answers back (whole, in order) and passes them on at release.
type holdingProxy struct {
	addr string
	mu   sync.RWMutex // held: write-locked
}

func newHoldingProxy(t *testing.T, target string) *holdingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	p := &holdingProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			go func() { _, _ = io.Copy(s, c) }()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						p.mu.RLock()
						_, werr := c.Write(buf[:n])
						p.mu.RUnlock()
						if werr != nil {
							return
						}
					}
					if err != nil {
						_ = c.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *holdingProxy) hold()    { p.mu.Lock() }
func (p *holdingProxy) release() { p.mu.Unlock() }
