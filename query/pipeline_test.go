package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/cmd"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/pipeline"
	"pinpipe/query"
	"pinpipe/synth"
)

// TestPostedPinsRunThroughTheBatchJobCountAsTheyImply is the lane's end to
// end check: pins posted to a running pinpipe land in the raw zone (and so
// in pins_live, cleaned), a batch run cleans their day into the curated
// zone, and /query and
// `pinpipe query` (in-process and --url) answer what the pins imply.
func TestPostedPinsRunThroughTheBatchJobCountAsTheyImply(t *testing.T) {
	cfg := testenv.Config(t)
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	testenv.Must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	base := "http://" + p.Addr

	const n = 400
	body := synth.New(80).NDJSON(n)
	resp, err := http.Post(base+"/pins", "application/x-ndjson", bytes.NewReader(body))
	testenv.Must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /pins answered %d", resp.StatusCode)
	}
	posted := map[string]bool{}
	want := map[string]int64{}
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		c, err := pin.CleanRaw(line, pin.Lineage{})
		testenv.Must(t, err)
		want[c.Category]++
		posted[string(line)] = true
	}

	// The landing writes the raw zone; pins_raw holds exactly what was posted.
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		got := queryRows(t, base, "SELECT count(*) FROM pins_raw")
		return fmt.Sprint(got) == fmt.Sprintf("[[%d]]", n), fmt.Sprint(got)
	})
	for _, r := range queryRows(t, base, "SELECT value FROM pins_raw") {
		if !posted[r[0].(string)] {
			t.Fatalf("pins_raw holds a message that was not posted: %s", r[0])
		}
		delete(posted, r[0].(string))
	}
	if len(posted) != 0 {
		t.Fatalf("%d posted pins are missing from pins_raw", len(posted))
	}

	// pins_live holds every one of them, cleaned, before any batch run.
	live := "SELECT category, count(*) FROM pins_live GROUP BY 1"
	if got := counts(t, queryRows(t, base, live)); !equalCounts(got, want) {
		t.Fatalf("pins_live before the batch run: %v, want %v", got, want)
	}

	// The batch job for their day fills the curated zone.
	dt := queryRows(t, base, "SELECT DISTINCT dt FROM pins_raw")[0][0].(string)
	run := postJSON(t, base+"/batch/runs", map[string]any{"date": dt}, http.StatusAccepted)
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		var r batch.Run
		getJSON(t, base+"/batch/runs/"+run.ID, &r)
		if r.Status == batch.StatusFailed {
			t.Fatalf("the batch run failed: %s", r.Error)
		}
		return r.Status == batch.StatusSucceeded, r.Status
	})
	sql := "SELECT category, count(*) FROM pins GROUP BY 1"
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		got := counts(t, queryRows(t, base, sql))
		return equalCounts(got, want), fmt.Sprint(got)
	})
	if got := counts(t, queryRows(t, base, live)); !equalCounts(got, want) {
		t.Fatalf("pins_live after the batch run: %v, want %v", got, want)
	}

	// The CLI gives the same counts, asking the server or reading the lake
	// itself (with its own mirror, as the server holds the data directory's).
	env := map[string]string{
		"PINPIPE_DATA_DIR": cfg.DataDir, "PINPIPE_S3_ENDPOINT": cfg.S3Endpoint, "PINPIPE_S3_BUCKET": cfg.S3Bucket,
		"AWS_ACCESS_KEY_ID": cfg.AWSAccessKeyID, "AWS_SECRET_ACCESS_KEY": cfg.AWSSecretKey,
	}
	for _, mode := range [][]string{{"--url", base}, nil} {
		var out, errOut bytes.Buffer
		code := cmd.Main(context.Background(), cmd.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }},
			append(append([]string{"query", "--format", "csv"}, mode...), sql))
		if code != 0 {
			t.Fatalf("pinpipe query %v: exit %d: %s", mode, code, errOut.String())
		}
		recs, err := csv.NewReader(&out).ReadAll()
		testenv.Must(t, err)
		got := map[string]int64{}
		for _, r := range recs[1:] {
			var c int64
			fmt.Sscan(r[1], &c)
			got[r[0]] = c
		}
		if !equalCounts(got, want) {
			t.Fatalf("pinpipe query %v: %v, want %v", mode, got, want)
		}
	}
}

// queryRows runs sql on a pinpipe server and returns its rows; it fails
// the test on any answer but 200.
func queryRows(t *testing.T, base, sql string) [][]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sql": sql, "limit": query.MaxLimit})
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r pin.QueryResponse
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if resp.StatusCode != http.StatusOK || dec.Decode(&r) != nil {
		t.Fatalf("%s: %d %s", sql, resp.StatusCode, b)
	}
	return r.Rows
}

func counts(t *testing.T, rows [][]any) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range rows {
		n, err := r[1].(json.Number).Int64()
		testenv.Must(t, err)
		out[fmt.Sprint(r[0])] = n
	}
	return out
}

func postJSON(t *testing.T, url string, v any, status int) batch.Run {
	t.Helper()
	body, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var r batch.Run
	testenv.Must(t, json.Unmarshal(b, &r))
	return r
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	testenv.Must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	testenv.Must(t, json.NewDecoder(resp.Body).Decode(v))
}
