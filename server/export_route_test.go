package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"pinpipe/server"
)

func TestExportRouteChecksItsFormatAndLimitsBeforeAnyByte(t *testing.T) {
	q := newFakeQuerier(2, 5, "x")
	q.exportMaxRows = 3
	base, _ := serve(t, server.Options{Query: q}, nil)

	for _, c := range []struct {
		name   string
		r      req
		status int
		detail string
	}{
		{"unknown format", req{method: "GET", path: "/query/export?format=xlsx&sql=SELECT+1"}, 400, "csv, jsonl or parquet"},
		{"no SQL", req{method: "GET", path: "/query/export?format=csv"}, 400, "Send the SQL"},
		{"past the row limit", req{method: "GET", path: "/query/export?format=jsonl&sql=SELECT+1"}, 413, "PINPIPE_EXPORT_MAX_ROWS"},
		{"a form post", req{method: "POST", path: "/query/export", contentType: "text/plain", body: "SELECT 1"}, 415, ""},
	} {
		a := send(t, base, c.r)
		if a.status != c.status || a.contentType != "application/problem+json" || !strings.Contains(string(a.body), c.detail) {
			t.Errorf("%s: %d %q %s, want %d problem naming %q", c.name, a.status, a.contentType, a.body, c.status, c.detail)
		}
	}

	q.exportMaxRows = 0 // every row
	a := send(t, base, req{method: "POST", path: "/query/export", contentType: "application/json", body: `{"sql": "SELECT 1", "format": "jsonl"}`})
	if a.status != 200 || a.contentType != "application/x-ndjson" || strings.Count(string(a.body), "\n") != 5 ||
		!strings.HasPrefix(string(a.body), `{"i":0,"v":"x"}`) {
		t.Fatalf("POST /query/export jsonl: %d %q %s", a.status, a.contentType, a.body)
	}
}

func TestQueryPagesSayTheirOffset(t *testing.T) {
	base, _ := serve(t, server.Options{Query: newFakeQuerier(2, 5, "x")}, nil)
	type page struct {
		Rows      [][]any `json:"rows"`
		Truncated bool    `json:"truncated"`
		Offset    int     `json:"offset"`
	}
	p := decode[page](t, send(t, base, req{method: "GET", path: "/query?sql=SELECT+1&limit=2&offset=2"}), 200)
	if p.Offset != 2 || len(p.Rows) != 2 || p.Rows[0][0] != float64(2) || !p.Truncated {
		t.Errorf("page at offset 2 = %+v", p)
	}
	p = decode[page](t, send(t, base, req{method: "GET", path: "/query?sql=SELECT+1&limit=2&offset=4"}), 200)
	if p.Offset != 4 || len(p.Rows) != 1 || p.Truncated {
		t.Errorf("last page = %+v", p)
	}
	if a := send(t, base, req{method: "GET", path: "/query?sql=SELECT+1&offset=-3"}); a.status != 400 || !strings.Contains(string(a.body), "offset") {
		t.Errorf("offset -3: %d %s", a.status, a.body)
	}
}

func TestTopByCategorySaysTheDayItRead(t *testing.T) {
	base, _ := serve(t, server.Options{}, nil)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	hr, _ := http.NewRequest("GET", base+"/categories/none/top", nil)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Around midnight UTC "yesterday" may move on between the two reads.
	if got := resp.Header.Get("X-Pinpipe-Date"); got != yesterday && got != time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) {
		t.Errorf("X-Pinpipe-Date = %q, want %s", got, yesterday)
	}
	hr, _ = http.NewRequest("GET", base+"/categories/none/top?date=2026-11-20", nil)
	resp, err = http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Pinpipe-Date"); got != "2026-11-20" {
		t.Errorf("X-Pinpipe-Date = %q, want 2026-11-20", got)
	}
}
