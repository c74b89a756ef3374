package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/server"
)

const onePin = `{"index":1,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`

func TestServerRefusesHostNamesItWasNotGivenAgainstDNSRebinding(t *testing.T) {
	base, f := serve(t, server.Options{}, nil)
	port := strings.TrimPrefix(base[strings.LastIndexByte(base, ':'):], ":")

	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.nip.io:" + port, "localhost.attacker.example:" + port} {
		for _, r := range []req{
			{method: "GET", path: "/stream/recent"},
			{method: "GET", path: "/"},
			{method: "POST", path: "/pins", contentType: "application/json", body: onePin},
			{method: "GET", path: "/query?sql=SELECT+1"},
		} {
			r.host = host
			detail := problemDetail(t, send(t, base, r), 421)
			if !strings.Contains(detail, "PINPIPE_ALLOWED_HOSTS") || !strings.Contains(detail, host) {
				t.Errorf("Host %s, %s %s: detail %q should name the host and PINPIPE_ALLOWED_HOSTS", host, r.method, r.path, detail)
			}
		}
	}
	if n := f.producer.count(); n != 0 || len(f.query.received()) != 0 {
		t.Fatalf("refused requests reached the lanes: %d pins, queries %q", n, f.query.received())
	}

	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "localhost", "10.1.2.3:8080", "localhost.:" + port} {
		if a := send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: onePin, host: host}); a.status != 202 {
			t.Errorf("Host %s: POST /pins = %d %s, want 202", host, a.status, a.body)
		}
	}
	// Probes and scrapers address the service by names of their own.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if a := send(t, base, req{method: "GET", path: path, host: "pinpipe:" + port}); a.status != 200 {
			t.Errorf("GET %s with Host pinpipe:%s = %d, want 200", path, port, a.status)
		}
	}
}

func TestServerAnswersTheNamesOfAllowedHosts(t *testing.T) {
	base, _ := serve(t, server.Options{AllowedHosts: []string{"pinpipe.lan", "Dash.Example:8443"}}, nil)
	for host, want := range map[string]int{
		"pinpipe.lan":        200,
		"PINPIPE.LAN:9999":   200,
		"dash.example:8443":  200,
		"dash.example:9000":  421,
		"dash.example":       421,
		"other.example:8443": 421,
	} {
		if a := send(t, base, req{method: "GET", path: "/stream/stats", host: host}); a.status != want {
			t.Errorf("Host %s: %d %s, want %d", host, a.status, a.body, want)
		}
	}
	anyHost, _ := serve(t, server.Options{AllowedHosts: []string{"*"}}, nil)
	if a := send(t, anyHost, req{method: "GET", path: "/stream/stats", host: "whatever.example"}); a.status != 200 {
		t.Errorf("with PINPIPE_ALLOWED_HOSTS=*: %d %s, want 200", a.status, a.body)
	}
}

func TestStateChangingAndQueryRoutesRefuseCrossOriginBrowserRequests(t *testing.T) {
	base, f := serve(t, server.Options{AllowedOrigins: []string{"https://dash.example"}}, nil)
	self := base // the server's own origin: http://127.0.0.1:port
	routes := []req{
		{method: "POST", path: "/pins", contentType: "application/json", body: onePin},
		{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 1"}`},
		{method: "GET", path: "/query?sql=SELECT+1"},
		{method: "POST", path: "/batch/runs", contentType: "application/json", body: `{"date":"2024-05-01"}`},
	}
	refused := []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
		{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "cross-site"},        // a no-cors request: <img src>, <form>
		{"Sec-Fetch-Site": "same-site"},         // another port of the same host
		{"Origin": "https://dash.example:8443"}, // allowed origins match exactly
		{"Origin": "http://127.0.0.1:1"},        // another port of this host
	}
	for _, r := range routes {
		for _, h := range refused {
			r.header = h
			detail := problemDetail(t, send(t, base, r), 403)
			if !strings.Contains(detail, "Cross-origin") || !strings.Contains(detail, "PINPIPE_ALLOWED_ORIGINS") {
				t.Errorf("%s %s with %v: detail %q should say cross-origin and name PINPIPE_ALLOWED_ORIGINS", r.method, r.path, h, detail)
			}
		}
	}
	if n, q, b := f.producer.count(), len(f.query.received()), f.batch.count(); n+q+b != 0 {
		t.Fatalf("refused requests reached the lanes: %d pins, %d queries, %d runs", n, q, b)
	}

	accepted := []map[string]string{
		nil, // curl, the CLI
		{"Origin": self},
		{"Origin": self, "Sec-Fetch-Site": "same-origin"}, // the dashboard
		{"Sec-Fetch-Site": "same-origin"},
		{"Sec-Fetch-Site": "none"}, // typed into the address bar
		{"Origin": "https://dash.example", "Sec-Fetch-Site": "cross-site"},
	}
	for _, r := range routes {
		for _, h := range accepted {
			r.header = h
			if a := send(t, base, r); a.status >= 300 {
				t.Errorf("%s %s with %v: %d %s, want success", r.method, r.path, h, a.status, a.body)
			}
		}
	}
	if n, q, b := f.producer.count(), len(f.query.received()), f.batch.count(); n != len(accepted) || q != 2*len(accepted) || b != len(accepted) {
		t.Fatalf("accepted requests: %d pins, %d queries, %d runs reached the lanes; want %d, %d, %d", n, q, b, len(accepted), 2*len(accepted), len(accepted))
	}
	// Reads that change nothing stay open to cross-origin requests (the
	// browser keeps their answers from the other page anyway).
	if a := send(t, base, req{method: "GET", path: "/stream/stats", header: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}}); a.status != 200 {
		t.Errorf("cross-origin GET /stream/stats = %d, want 200", a.status)
	}
}

func TestPostsRefuseTextAndFormBodiesNamingTheTypesToUse(t *testing.T) {
	base, f := serve(t, server.Options{}, nil)
	bodies := map[string]string{
		"/pins":       onePin,
		"/query":      `{"sql":"SELECT 1"}`,
		"/batch/runs": `{"date":"2024-05-01"}`,
	}
	for path, body := range bodies {
		for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/xml", "json"} {
			r := req{method: "POST", path: path, contentType: ct, body: body}
			detail := problemDetail(t, send(t, base, r), 415)
			if !strings.Contains(detail, "application/json") || !strings.Contains(detail, "Content-Type") {
				t.Errorf("POST %s as %q: detail %q should name application/json and the Content-Type header", path, ct, detail)
			}
		}
	}
	if n, q, b := f.producer.count(), len(f.query.received()), f.batch.count(); n+q+b != 0 {
		t.Fatalf("refused requests reached the lanes: %d pins, %d queries, %d runs", n, q, b)
	}

	for _, r := range []req{
		{method: "POST", path: "/pins", contentType: "application/json; charset=utf-8", body: onePin},
		{method: "POST", path: "/pins", contentType: "application/x-ndjson", body: onePin + "\n"},
		{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 1"}`},
		{method: "POST", path: "/query", contentType: "application/sql", body: "SELECT 2"},
		{method: "POST", path: "/query?sql=SELECT+3"}, // no body, no type
		{method: "POST", path: "/batch/runs"},         // yesterday
	} {
		if a := send(t, base, r); a.status >= 300 {
			t.Errorf("%s %s as %q: %d %s, want success", r.method, r.path, r.contentType, a.status, a.body)
		}
	}
	if got := strings.Join(f.query.received(), "|"); got != "SELECT 1|SELECT 2|SELECT 3" {
		t.Errorf("queries received %q, want SELECT 1|SELECT 2|SELECT 3", got)
	}
}

func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	base, _ := serve(t, server.Options{APIKey: "s3cret"}, nil)
	for auth, want := range map[string]int{
		"Bearer s3cret":   202,
		"bearer s3cret":   202,
		"BEARER  s3cret ": 202,
		"Bearer S3CRET":   401,
		"Basic s3cret":    401,
		"s3cret":          401,
		"Bearers3cret":    401,
		"":                401,
	} {
		r := req{method: "POST", path: "/pins", contentType: "application/json", body: onePin, header: map[string]string{"Authorization": auth}}
		if a := send(t, base, r); a.status != want {
			t.Errorf("Authorization %q: %d %s, want %d", auth, a.status, a.body, want)
		}
	}
}

func TestReadyzShowsAFailuresTextOnlyWithTheKey(t *testing.T) {
	secret := "open /home/pinpipe/data/stream/pins.db: row of pin fbe53c66-3442-4773-b19e-d3ec6f54dddf is corrupt"
	checks := []server.Check{
		{Name: "postgres", Embedded: true, Check: func(context.Context) error { return errors.New(secret) }},
		{Name: "kafka", Check: func(context.Context) error { return nil }},
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for _, key := range []string{"", "s3cret"} {
		base, _ := serve(t, server.Options{APIKey: key, Checks: checks, Log: log}, nil)
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret"} {
			a := send(t, base, req{method: "GET", path: "/readyz", header: map[string]string{"Authorization": auth}})
			if a.status != 503 || !strings.Contains(string(a.body), `"kafka":{"ok":true`) || !strings.Contains(string(a.body), `"postgres":{"ok":false`) {
				t.Fatalf("key %q, Authorization %q: /readyz = %d %s, want 503 with kafka ok and postgres not", key, auth, a.status, a.body)
			}
			shows := strings.Contains(string(a.body), secret)
			if want := key != "" && auth == "Bearer "+key; shows != want {
				t.Errorf("key %q, Authorization %q: /readyz shows the failure's text: %v, want %v: %s", key, auth, shows, want, a.body)
			}
			if !shows && (strings.Contains(string(a.body), "/home") || strings.Contains(string(a.body), "fbe53c66") || !strings.Contains(string(a.body), "log")) {
				t.Errorf("key %q, Authorization %q: /readyz names a path or id, or does not point to the log: %s", key, auth, a.body)
			}
		}
	}
	if n := strings.Count(logged.String(), "fbe53c66"); n != 2 {
		t.Errorf("the failure was logged %d times, want once per server (when it changed):\n%s", n, logged.String())
	}
}

func TestServerWarnsWhenListeningBeyondLoopbackWithoutAKey(t *testing.T) {
	for _, tt := range []struct {
		addr, key string
		warn      bool
	}{
		{"127.0.0.1:8000", "", false},
		{"[::1]:8000", "", false},
		{"localhost:8000", "", false},
		{"0.0.0.0:8000", "", true},
		{"[::]:8000", "", true},
		{"192.168.1.5:8000", "", true},
		{"0.0.0.0:8000", "s3cret", false},
	} {
		var logged bytes.Buffer
		server.New(server.Options{Log: slog.New(slog.NewTextHandler(&logged, nil)), Registry: prometheus.NewRegistry(), Addr: tt.addr, APIKey: tt.key})
		warned := strings.Contains(logged.String(), "level=WARN") && strings.Contains(logged.String(), "PINPIPE_API_KEY")
		if warned != tt.warn {
			t.Errorf("addr %s key %q: warned %v, want %v: %s", tt.addr, tt.key, warned, tt.warn, logged.String())
		}
	}
}
