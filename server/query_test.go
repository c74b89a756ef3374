package server_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/server"
)

// holdSlots opens n connections that each ask for every row of a large
// answer, and returns once each has begun to receive its answer (so holds
// a query slot); from then on they read nothing. A connection refused
// with 429 (another asked at the same moment) asks again. The connections
// close when the test ends.
func holdSlots(t *testing.T, base string, n int, path string) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(time.Minute)
	for held := 0; held < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d stalled clients got a query slot within a minute", held, n)
		}
		c, err := net.Dial("tcp", addr)
		testenv.Must(t, err)
		t.Cleanup(func() { c.Close() })
		// A small receive buffer fills at once, as a stalled client's would.
		testenv.Must(t, c.(*net.TCPConn).SetReadBuffer(4096))
		_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr)
		testenv.Must(t, err)
		status := make([]byte, len("HTTP/1.1 200"))
		testenv.Must(t, c.SetReadDeadline(deadline))
		_, err = io.ReadFull(c, status)
		testenv.Must(t, err)
		switch string(status) {
		case "HTTP/1.1 200":
			held++
		case "HTTP/1.1 429":
			c.Close()
		default:
			t.Fatalf("a stalled client's query was answered %q", status)
		}
	}
}

func TestClientsThatStopReadingLoseTheirQuerySlotsWithinTheQueryTimeout(t *testing.T) {
	const slots = 4
	const timeout = 3 * time.Second
	// 100k rows of ~220 bytes: far more than the socket buffers hold.
	q := newFakeQuerier(slots, 100000, strings.Repeat("x", 200))
	base, _ := serve(t, server.Options{Query: q, QueryTimeout: timeout}, nil)

	holdSlots(t, base, slots, "/query?sql=SELECT+*+FROM+big&limit=100000")
	ordinary := req{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 1","limit":1}`}
	// While the stalled clients hold every slot, other queries are refused…
	testenv.Eventually(t, timeout, func() (bool, string) {
		a := send(t, base, ordinary)
		return a.status == 429, fmt.Sprintf("an ordinary query = %d %s while %d stalled clients hold every slot, want 429", a.status, a.body, slots)
	})
	// …until the stalled clients lose their connections, and with them the
	// slots, at the query timeout.
	testenv.Eventually(t, timeout+5*time.Second, func() (bool, string) {
		a := send(t, base, ordinary)
		return a.status == 200, fmt.Sprintf("an ordinary query = %d %s; the stalled clients still hold the slots", a.status, a.body)
	})
}

func TestCSVAnswersDefuseSpreadsheetFormulas(t *testing.T) {
	q := newFakeQuerier(1, 0, "")
	q.columns = []string{"=cmd|' /C calc'!A0", "n"}
	q.rowValues = [][]any{
		{`=HYPERLINK("http://evil.example","x")`, "=1+1"},
		{"+SUM(A1:A9)", "-cmd"},
		{"@SUM(A1)", "\tx"},
		{"\r=1", "-"},
		{"-5", int64(-5)},
		{"+1.5", float64(-0.25)},
		{"1e+06", "-2E-3"},
		{"plain text", nil},
		{"a=b", "--5"},
		{"'quoted", json.Number("-7")},
	}
	base, _ := serve(t, server.Options{Query: q}, nil)
	a := send(t, base, req{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 1"}`,
		header: map[string]string{"Accept": "text/csv"}})
	if a.status != 200 || !strings.HasPrefix(a.contentType, "text/csv") {
		t.Fatalf("CSV query = %d %q %s", a.status, a.contentType, a.body)
	}
	got, err := csv.NewReader(strings.NewReader(string(a.body))).ReadAll()
	testenv.Must(t, err)
	want := [][]string{
		{"'=cmd|' /C calc'!A0", "n"},
		{`'=HYPERLINK("http://evil.example","x")`, "'=1+1"},
		{"'+SUM(A1:A9)", "'-cmd"},
		{"'@SUM(A1)", "'\tx"},
		{"'\r=1", "'-"},
		{"-5", "-5"},
		{"+1.5", "-0.25"},
		{"1e+06", "-2E-3"},
		{"plain text", ""},
		{"a=b", "'--5"},
		{"'quoted", "-7"},
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("CSV cells\n%q\nwant\n%q", got, want)
	}
	// JSON keeps every value exact.
	a = send(t, base, req{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 1"}`})
	if !strings.Contains(string(a.body), `["=HYPERLINK(\"http://evil.example\",\"x\")","=1+1"]`) {
		t.Errorf("the JSON answer changed a value: %s", a.body)
	}
}

func TestSlowRequestsAreCutOffAtTheirDeadlines(t *testing.T) {
	base, f := serve(t, server.Options{}, func(s *server.Server) {
		server.SetTimeouts(s, 300*time.Millisecond, 300*time.Millisecond, 10*time.Second)
	})
	addr := strings.TrimPrefix(base, "http://")
	// answer reads what the server sends on c until it closes c; it fails
	// the test if the server keeps c open past what any deadline explains.
	answer := func(c net.Conn) string {
		t.Helper()
		testenv.Must(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("the server kept a stalled connection open; it sent %q", b.String())
				}
				return b.String()
			}
		}
	}

	// Headers that never end: the connection is closed.
	c, err := net.Dial("tcp", addr)
	testenv.Must(t, err)
	defer c.Close()
	fmt.Fprintf(c, "POST /pins HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", addr)
	if got := answer(c); got != "" && !strings.Contains(got, " 408 ") {
		t.Errorf("stalled headers: the server answered %q", got)
	}

	// A body that stops halfway: 408, and nothing is produced.
	c2, err := net.Dial("tcp", addr)
	testenv.Must(t, err)
	defer c2.Close()
	fmt.Fprintf(c2, "POST /pins HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(onePin), onePin[:20])
	if got := answer(c2); !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "did not arrive within") {
		t.Errorf("stalled body: the server answered %q, want a 408 problem", got)
	}
	if n := f.producer.count(); n != 0 {
		t.Errorf("%d pins produced from a body that never arrived", n)
	}
	// Meanwhile the server answers others.
	if a := send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: onePin}); a.status != 202 {
		t.Errorf("POST /pins = %d %s, want 202", a.status, a.body)
	}
}

// The same with DuckDB: the engine holds a slot while it hands rows to a
// writer that blocks on a client who does not read.
func TestStalledClientsLoseTheEnginesQuerySlotsWithinTheQueryTimeout(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.QueryTimeout = 4 * time.Second
	p := start(t, cfg)
	base := "http://" + p.Addr

	big := "/query?limit=100000&sql=" + url.QueryEscape("SELECT i, repeat('x', 200) AS v FROM range(100000) t(i)")
	holdSlots(t, base, cfg.QueryMaxConcurrent, big)
	ordinary := req{method: "POST", path: "/query", contentType: "application/json", body: `{"sql":"SELECT 42 AS answer"}`}
	testenv.Eventually(t, cfg.QueryTimeout, func() (bool, string) {
		a := send(t, base, ordinary)
		return a.status == 429, fmt.Sprintf("an ordinary query = %d %s while %d stalled clients hold every slot, want 429", a.status, a.body, cfg.QueryMaxConcurrent)
	})
	testenv.Eventually(t, cfg.QueryTimeout+10*time.Second, func() (bool, string) {
		a := send(t, base, ordinary)
		var res struct{ Rows [][]int }
		return a.status == 200 && json.Unmarshal(a.body, &res) == nil && fmt.Sprint(res.Rows) == "[[42]]",
			fmt.Sprintf("an ordinary query = %d %s; the stalled clients still hold the slots", a.status, a.body)
	})
}
