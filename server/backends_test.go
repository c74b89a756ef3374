package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/batch/standin"
	"pinpipe/internal/retry"
	"pinpipe/internal/testenv"
	"pinpipe/lake"
	"pinpipe/pin"
	"pinpipe/query"
	"pinpipe/server"
	"pinpipe/stream"
)

// unreadableLake is an object store that cannot be reached.
type unreadableLake struct{}

func (unreadableLake) List(context.Context, string) ([]lake.Object, error) {
	return nil, errors.New("dial tcp 127.0.0.1:9: connection refused")
}

func (unreadableLake) Get(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("dial tcp 127.0.0.1:9: connection refused")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	addr := ln.Addr().String()
	testenv.Must(t, ln.Close())
	return addr
}

// TestAnUnreachableStoreIs503WhateverTheBackend breaks each backend a
// route can stand on and checks that the API answers the same: 503, code
// unavailable. The real backends that need a running service are tried
// when the test runs against the stack.
func TestAnUnreachableStoreIs503WhateverTheBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := testenv.Log(t)
	// closedStandIn serves the pin and run routes from a batch service
	// whose embedded serving store is closed.
	closedStandIn := func(t *testing.T) server.Options {
		s, err := standin.Open(ctx, t.TempDir(), 0, nil)
		testenv.Must(t, err)
		testenv.Must(t, s.Close())
		svc := batch.NewService(batch.ServiceOptions{Job: &batch.Job{Store: s, Log: log}, Log: log})
		t.Cleanup(svc.Close)
		return server.Options{Serving: svc, Batch: svc}
	}
	cases := []struct {
		name string
		path string
		open func(t *testing.T) server.Options
	}{
		{"stream: embedded stand-in, closed", "/stream/stats", func(t *testing.T) server.Options {
			s, err := stream.OpenDuckDB(ctx, t.TempDir(), log)
			testenv.Must(t, err)
			testenv.Must(t, s.Close())
			return server.Options{Stream: s}
		}},
		{"stream: Postgres, nothing listening", "/stream/recent", func(t *testing.T) server.Options {
			s, err := stream.OpenPostgres(ctx, "postgres://pinpipe:pinpipe@"+closedPort(t)+"/pinpipe?connect_timeout=2", log)
			testenv.Must(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return server.Options{Stream: s}
		}},
		{"serving: embedded stand-in, closed", "/pins/fbe53c66-3442-4773-b19e-d3ec6f54dddf", closedStandIn},
		{"batch history: embedded stand-in, closed", "/batch/runs", closedStandIn},
		{"serving: Cassandra, gone down", "/categories/travel/top", func(t *testing.T) server.Options {
			hosts, ks := testenv.Cassandra(t)
			if hosts == nil {
				t.Skip("needs Cassandra; set PINPIPE_CASSANDRA_HOSTS (scripts/stack env)")
			}
			proxy := testenv.NewProxy(t, hosts[0])
			s, err := cassandra.Open(ctx, cassandra.Options{Hosts: []string{proxy.Addr}, Keyspace: ks, Log: log,
				// Give up within seconds rather than retry.Bounded's half minute.
				Retry: retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, MaxElapsed: 3 * time.Second}})
			testenv.Must(t, err)
			t.Cleanup(func() { _ = s.Close() })
			proxy.Down()
			svc := batch.NewService(batch.ServiceOptions{Job: &batch.Job{Store: s, Log: log}, Log: log})
			t.Cleanup(svc.Close)
			return server.Options{Serving: svc, Batch: svc}
		}},
		{"query: lake unreachable", "/query?sql=SELECT+count(*)+FROM+pins", func(t *testing.T) server.Options {
			m, err := query.NewMirror(unreadableLake{}, query.MirrorOptions{Dir: t.TempDir(), MaxBytes: 1 << 20, Staleness: time.Minute, Log: log})
			testenv.Must(t, err)
			t.Cleanup(func() { _ = m.Close() })
			e, err := query.Open(ctx, query.Options{Mirror: m, Bucket: "pinpipe", Timeout: 30 * time.Second, MemoryLimit: "256MB", Threads: 1, Log: log})
			testenv.Must(t, err)
			t.Cleanup(func() { _ = e.Close() })
			return server.Options{Query: e}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, _ := serve(t, c.open(t), nil)
			a := send(t, base, req{method: "GET", path: c.path})
			problemDetail(t, a, 503)
			var p server.Problem
			testenv.Must(t, json.Unmarshal(a.body, &p))
			if p.Type != "https://pinpipe.dev/problems/"+pin.EUNAVAILABLE {
				t.Errorf("GET %s: type %q, want code %s", c.path, p.Type, pin.EUNAVAILABLE)
			}
		})
	}
}
