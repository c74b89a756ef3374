package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"pinpipe/cmd"
	"pinpipe/internal/testenv"
)

// cli runs `pinpipe query args…` against the stack's lake, in a process
// of its own data directory, and returns what it printed.
func (st *stack) cli(args ...string) (stdout string, code int) {
	st.t.Helper()
	env := map[string]string{
		"PINPIPE_DATA_DIR":      st.t.TempDir(),
		"PINPIPE_S3_ENDPOINT":   st.s3.Endpoint,
		"PINPIPE_S3_BUCKET":     st.s3.Bucket,
		"AWS_ACCESS_KEY_ID":     st.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY": st.s3.SecretKey,
		"AWS_REGION":            st.s3.Region,
	}
	var out, errOut bytes.Buffer
	code = cmd.Main(context.Background(), cmd.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
	}, append([]string{"query"}, args...))
	if code != 0 {
		st.t.Logf("pinpipe query %q: exit %d: %s", args, code, errOut.String())
	}
	return out.String(), code
}

func TestCLICountsByCategoryAreThoseThePinsImply(t *testing.T) {
	st := newStack(t, nil)
	d := pinsOf(t, 60, "2026-11-20", 300)
	st.land(d, "20261121T080000Z", 100)
	want := categories(d.cleaned)
	sql := "SELECT category, count(*) AS pins FROM pins GROUP BY 1 ORDER BY 1"

	for _, mode := range [][]string{nil, {"--url", st.srv.URL}} {
		out, code := st.cli(append(append([]string{}, mode...), "--format", "csv", sql)...)
		if code != 0 {
			t.Fatalf("%v: exit %d", mode, code)
		}
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		testenv.Must(t, err)
		got := map[string]int64{}
		for _, r := range recs[1:] {
			var n int64
			fmt.Sscan(r[1], &n)
			got[r[0]] = n
		}
		if !reflect.DeepEqual(recs[0], []string{"category", "pins"}) || !equalCounts(got, want) {
			t.Fatalf("%v: CSV %q, want counts %v", mode, out, want)
		}
	}

	// The default table: a header, a rule, one aligned line per category,
	// numbers right-aligned, then the row count.
	out, code := st.cli(sql)
	if code != 0 {
		t.Fatalf("table: exit %d", code)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	cats := make([]string, 0, len(want))
	for c := range want {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	width := len("category")
	for _, c := range cats {
		width = max(width, len(c))
	}
	if len(lines) != len(cats)+3 || lines[0] != fmt.Sprintf("%-*s | pins", width, "category") || !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf("(%d rows;", len(cats))) {
		t.Fatalf("table:\n%s", out)
	}
	for i, c := range cats {
		if want := fmt.Sprintf("%-*s | %4d", width, c, want[c]); lines[i+2] != want {
			t.Fatalf("table line %d is %q, want %q", i+2, lines[i+2], want)
		}
	}
}

func TestCLIShowsTheReasonForARefusal(t *testing.T) {
	st := newStack(t, nil)
	for _, mode := range [][]string{nil, {"--url", st.srv.URL}} {
		var errOut bytes.Buffer
		code := cmd.Main(context.Background(), cmd.Env{
			Stdout: &bytes.Buffer{}, Stderr: &errOut,
			Getenv: func(k string) string {
				return map[string]string{"PINPIPE_DATA_DIR": t.TempDir(), "PINPIPE_S3_ENDPOINT": st.s3.Endpoint,
					"PINPIPE_S3_BUCKET": st.s3.Bucket, "AWS_ACCESS_KEY_ID": st.s3.AccessKey, "AWS_SECRET_ACCESS_KEY": st.s3.SecretKey}[k]
			},
		}, append(append([]string{"query"}, mode...), "COPY pins TO '/tmp/x.csv'"))
		if code == 0 || !strings.Contains(errOut.String(), "COPY writes files") {
			t.Fatalf("%v: exit %d, stderr %q", mode, code, errOut.String())
		}
	}
}
