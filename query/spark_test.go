package query_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/internal/testenv"
	"pinpipe/internal/teststores"
	"pinpipe/lake"
)

// sparkPython returns the python of a venv with pyspark:
// PINPIPE_PYSPARK_PYTHON (scripts/test sets it from `go run ./bench/peers
// -python`, the peers' installer). Without it, or without java, the test
// is skipped saying so, unless PINPIPE_REQUIRE_REAL=1 or CI=true, where it
// fails: there the interop check must run.
func sparkPython(t *testing.T) string {
	t.Helper()
	must := testenv.RequireReal() || os.Getenv("CI") == "true"
	miss := func(why string) {
		if must {
			t.Fatalf("the PySpark interop test cannot run: %s", why)
		}
		t.Skipf("skipped: %s (scripts/test runs it)", why)
	}
	python := os.Getenv("PINPIPE_PYSPARK_PYTHON")
	if python == "" {
		miss("PINPIPE_PYSPARK_PYTHON is not set; set it to the output of `go run ./bench/peers -python`")
	}
	if err := exec.Command(python, "-c", "import pyspark").Run(); err != nil {
		miss(fmt.Sprintf("%s cannot import pyspark: %v", python, err))
	}
	if _, err := exec.LookPath("java"); err != nil {
		miss("no java on PATH (PySpark needs a JVM)")
	}
	return python
}

// copyZone copies every object of the lake under prefix into dir, by key,
// as a reader listing the prefix sees it: markers and all (Spark skips
// names starting with "_" itself).
func copyZone(t *testing.T, s *lake.Store, prefix, dir string) {
	t.Helper()
	ctx := context.Background()
	objs, err := s.List(ctx, prefix)
	testenv.Must(t, err)
	for _, o := range objs {
		body, err := s.Get(ctx, o.Key)
		testenv.Must(t, err)
		b, err := io.ReadAll(body)
		_ = body.Close()
		testenv.Must(t, err)
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		testenv.Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		testenv.Must(t, os.WriteFile(path, b, 0o644))
	}
}

// sparkRead is what testdata/spark_curated.py prints for one directory.
type sparkRead struct {
	Dir        string           `json:"dir"`
	Rows       int              `json:"rows"`
	Type       string           `json:"ingested_at_type"`
	IngestedAt map[string]int64 `json:"ingested_at"`
	Days       []string         `json:"days"`
	Categories map[string]int64 `json:"categories"`
}

func TestPySparkReadsTheCuratedZoneAsQueryDoesDuringAndAfterARerun(t *testing.T) {
	python := sparkPython(t)
	ctx := context.Background()
	st := newStack(t, nil)
	d := pinsOf(t, 11, "2024-05-01", 3000)
	for p := range int32(3) {
		var recs []batch.RawRecord
		for _, r := range d.raw {
			if r.Partition == p {
				recs = append(recs, r)
			}
		}
		st.putRaw(d.dt, recs)
	}
	job := &batch.Job{Lake: st.lake, Store: teststores.Serving(t), Log: testenv.Log(t)}
	_, err := job.Run(ctx, d.dt, "20240502T080000.000000Z-aaaaaa", nil)
	testenv.Must(t, err)

	// What /query says of the day.
	want := sparkRead{Rows: len(d.cleaned), IngestedAt: map[string]int64{}, Days: []string{d.dt}, Type: "timestamp"}
	for _, r := range st.ok(`SELECT unique_id, epoch_us(ingested_at) FROM pins`) {
		us, err := r[1].(json.Number).Int64()
		testenv.Must(t, err)
		want.IngestedAt[r[0].(string)] = us
	}
	want.Categories = st.counts(`SELECT category, count(*) FROM pins GROUP BY 1`)
	if len(want.IngestedAt) != len(d.cleaned) {
		t.Fatalf("/query: %d pins, want %d", len(want.IngestedAt), len(d.cleaned))
	}
	for _, c := range d.cleaned {
		if want.IngestedAt[c.UniqueID] != c.IngestedAt.UnixMicro() {
			t.Fatalf("/query: %s ingested_at %d, want %d", c.UniqueID, want.IngestedAt[c.UniqueID], c.IngestedAt.UnixMicro())
		}
	}

	// Re-run the day, copying the zone while the run holds between
	// writing the day and committing it, and after.
	during, after := filepath.Join(t.TempDir(), "during"), filepath.Join(t.TempDir(), "after")
	job.BeforeCommit = func(context.Context) error {
		copyZone(t, st.lake, "curated/", during)
		return nil
	}
	_, err = job.Run(ctx, d.dt, "20240503T080000.000000Z-bbbbbb", nil)
	testenv.Must(t, err)
	copyZone(t, st.lake, "curated/", after)
	if got := st.counts(`SELECT category, count(*) FROM pins GROUP BY 1`); !reflect.DeepEqual(got, want.Categories) {
		t.Fatalf("/query after the rerun: categories %v, before %v", got, want.Categories)
	}

	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, python, filepath.Join("testdata", "spark_curated.py"),
		filepath.Join(during, "curated"), filepath.Join(after, "curated"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PySpark: %v\n%s", err, stderr.Bytes())
	}
	var reads []sparkRead
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var r sparkRead
		testenv.Must(t, json.Unmarshal(sc.Bytes(), &r))
		reads = append(reads, r)
	}
	if len(reads) != 2 {
		t.Fatalf("PySpark printed %d reads, want 2:\n%s\n%s", len(reads), out, stderr.Bytes())
	}
	for i, name := range []string{"during the rerun", "after the rerun"} {
		got := reads[i]
		got.Dir = ""
		if got.Rows != want.Rows || got.Type != want.Type || !reflect.DeepEqual(got.Days, want.Days) {
			t.Errorf("PySpark %s: %d rows of days %v, ingested_at %s; /query: %d rows of %v, want timestamp",
				name, got.Rows, got.Days, got.Type, want.Rows, want.Days)
		}
		if !reflect.DeepEqual(got.Categories, want.Categories) {
			t.Errorf("PySpark %s: categories %v, /query %v", name, got.Categories, want.Categories)
		}
		if !reflect.DeepEqual(got.IngestedAt, want.IngestedAt) {
			n := 0
			for id, us := range want.IngestedAt {
				if got.IngestedAt[id] != us && n < 3 {
					t.Errorf("PySpark %s: %s ingested_at %d µs, /query %d µs", name, id, got.IngestedAt[id], us)
					n++
				}
			}
			t.Errorf("PySpark %s: %d unique_ids, /query %d, and the instants differ", name, len(got.IngestedAt), len(want.IngestedAt))
		}
	}
}
