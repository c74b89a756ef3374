package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/server"
)

func TestStreamRecentClipsLongFieldsWhenAsked(t *testing.T) {
	title := strings.Repeat("é", 15<<20/2) // 15 MiB
	tags := make([]string, 5000)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag%04d", i)
	}
	tagList := strings.Join(tags, ",")
	p := pin.Cleaned{IDIndex: 1, Title: &title, Category: strings.Repeat("c", 500), UniqueID: "fbe53c66-3442-4773-b19e-d3ec6f54dddf",
		TagList: &tagList, Tags: tags}
	base, _ := serve(t, server.Options{Stream: &fakeStream{pins: []pin.Cleaned{p}}}, nil)

	a := send(t, base, req{method: "GET", path: "/stream/recent?n=20&max_chars=100"})
	var got []pin.Cleaned
	testenv.Must(t, json.Unmarshal(a.body, &got))
	if a.status != 200 || len(got) != 1 || len(a.body) > 4096 {
		t.Fatalf("GET /stream/recent?max_chars=100 = %d, %d pins in %d bytes; want one pin in at most 4 KiB", a.status, len(got), len(a.body))
	}
	g := got[0]
	if *g.Title != strings.Repeat("é", 100)+"…" || g.Category != strings.Repeat("c", 100)+"…" || *g.TagList != tagList[:100]+"…" ||
		g.UniqueID != p.UniqueID || g.IDIndex != 1 {
		t.Errorf("clipped pin: title %.20q… (%d chars), category %d bytes, tag_list %.20q, unique_id %q",
			*g.Title, len([]rune(*g.Title)), len(g.Category), *g.TagList, g.UniqueID)
	}
	// Whole tags only, as many as fit in 100 characters (7 each).
	if strings.Join(g.Tags, ",") != strings.Join(tags[:14], ",") {
		t.Errorf("clipped tags %q, want the first 14", g.Tags)
	}

	// Without max_chars the pins are whole.
	a = send(t, base, req{method: "GET", path: "/stream/recent"})
	got = nil
	testenv.Must(t, json.Unmarshal(a.body, &got))
	if len(got) != 1 || *got[0].Title != title || len(got[0].Tags) != len(tags) {
		t.Fatalf("GET /stream/recent without max_chars cut the pin")
	}
	problemDetail(t, send(t, base, req{method: "GET", path: "/stream/recent?max_chars=0"}), 400)
}
