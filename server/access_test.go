package server_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"pinpipe/server"
)

// TestAccessLogWritesOneLinePerRequestWithoutSecrets: each request gets one
// line with its route pattern, status, bytes, duration, remote address and
// X-Request-Id, and neither the API key nor the SQL of a query reaches it.
func TestAccessLogWritesOneLinePerRequestWithoutSecrets(t *testing.T) {
	const key = "s3cret-api-key"
	const sql = "SELECT 'not-in-the-log'"
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	base, _ := serve(t, server.Options{AccessLog: true, APIKey: key, Log: log}, nil)
	auth := map[string]string{"Authorization": "Bearer " + key}

	got := map[string]answer{}
	got["pin"] = send(t, base, req{method: "GET", path: "/pins/fbe53c66-3442-4773-b19e-d3ec6f54dddf",
		header: map[string]string{"Authorization": "Bearer " + key, "X-Request-Id": "req-42"}})
	got["query"] = send(t, base, req{method: "GET", path: "/query?sql=" + url.QueryEscape(sql), header: auth})
	got["nokey"] = send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: `{"a":1}`})
	got["healthz"] = send(t, base, req{method: "GET", path: "/healthz"})

	type line struct {
		Msg        string  `json:"msg"`
		Method     string  `json:"method"`
		Route      string  `json:"route"`
		Path       string  `json:"path"`
		Status     int     `json:"status"`
		Bytes      int     `json:"bytes"`
		DurationMS float64 `json:"duration_ms"`
		Remote     string  `json:"remote"`
		RequestID  string  `json:"request_id"`
	}
	var lines []line
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if l.Msg == "http request" {
			lines = append(lines, l)
		}
	}
	want := []struct {
		name, method, route, requestID string
	}{
		{"pin", "GET", "GET /pins/{unique_id}", "req-42"},
		{"query", "GET", "GET /query", ""},
		{"nokey", "POST", "POST /pins", ""},
		{"healthz", "GET", "GET /healthz", ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d access log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		l, a := lines[i], got[w.name]
		if l.Method != w.method || l.Route != w.route || l.Status != a.status || l.Bytes != len(a.body) ||
			l.RequestID != w.requestID || !strings.HasPrefix(l.Remote, "127.0.0.1:") || l.DurationMS <= 0 {
			t.Errorf("line %d = %+v, want %s %s status %d, %d bytes, request id %q, a 127.0.0.1 remote and a duration",
				i, l, w.method, w.route, a.status, len(a.body), w.requestID)
		}
	}
	if lines[2].Status != 401 {
		t.Errorf("POST /pins without the key logged status %d, want 401", lines[2].Status)
	}
	for _, secret := range []string{key, "not-in-the-log", "sql="} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs.String())
		}
	}
}

func TestAccessLogOffWritesNoRequestLines(t *testing.T) {
	var logs logBuffer
	base, _ := serve(t, server.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))}, nil)
	send(t, base, req{method: "GET", path: "/healthz"})
	if strings.Contains(logs.String(), "http request") {
		t.Errorf("access log off, yet the log holds:\n%s", logs.String())
	}
}
