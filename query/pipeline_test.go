package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/query"
)

func TestPipelineAnswersQueriesOverItsLake(t *testing.T) {
	cfg := testenv.Config(t)
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	testenv.Must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	st := &stack{t: t, lake: p.Lake}
	d := pinsOf(t, 70, "2026-11-20", 200)
	st.land(d, "20261121T080000Z", 1000)

	// The mirror may serve a listing up to PINPIPE_MIRROR_STALENESS old.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		got, why := categoryCounts(t, "http://"+p.Addr)
		return equalCounts(got, categories(d.cleaned)), why
	})
}

// categoryCounts asks a pinpipe server for the pins per category.
func categoryCounts(t *testing.T, url string) (map[string]int64, string) {
	body, _ := json.Marshal(map[string]any{"sql": "SELECT category, count(*) FROM pins GROUP BY 1"})
	resp, err := http.Post(url+"/query", "application/json", bytes.NewReader(body))
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r query.Response
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if resp.StatusCode != http.StatusOK || dec.Decode(&r) != nil {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	got := map[string]int64{}
	for _, row := range r.Rows {
		n, _ := row[1].(json.Number).Int64()
		got[row[0].(string)] = n
	}
	return got, string(b)
}
