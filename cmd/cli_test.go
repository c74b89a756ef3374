package cmd_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"pinpipe/cmd"
	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
	"pinpipe/synth"
)

// run runs pinpipe with args and the environment vars, and returns its
// exit code, stdout and stderr.
func run(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cmd.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }}
	code := cmd.Main(context.Background(), env, args)
	return code, stdout.String(), stderr.String()
}

func TestHelpListsTheCommandsOnStdout(t *testing.T) {
	for _, flag := range []string{"--help", "-h", "help"} {
		code, out, errOut := run(t, nil, flag)
		if code != 0 || errOut != "" {
			t.Fatalf("pinpipe %s: exit %d, stderr %q; want 0 and nothing on stderr", flag, code, errOut)
		}
		for _, c := range []string{"serve", "load", "emulate", "query", "batch", "version", "completion"} {
			if !strings.Contains(out, "\n  "+c+" ") {
				t.Errorf("pinpipe %s does not list the command %s:\n%s", flag, c, out)
			}
		}
		if strings.Contains(out, "PINPIPE_KAFKA_BROKERS") {
			t.Errorf("pinpipe %s prints the settings table; that belongs to serve --help", flag)
		}
	}
}

func TestCommandHelpShowsItsOwnFlags(t *testing.T) {
	code, out, _ := run(t, nil, "serve", "--help")
	if code != 0 || !strings.Contains(out, "--kafka-brokers") || !strings.Contains(out, "PINPIPE_KAFKA_BROKERS") {
		t.Fatalf("serve --help: exit %d, want the settings table as --flags with their variables:\n%s", code, out)
	}
	for _, c := range []string{"batch", "query"} {
		code, out, _ := run(t, nil, c, "-h")
		if code != 0 || strings.Contains(out, "--kafka-brokers") || !strings.Contains(out, "'pinpipe serve --help'") {
			t.Errorf("%s -h: exit %d; want its own flags and a pointer to serve --help, not every setting:\n%s", c, code, out)
		}
	}
	code, out, _ = run(t, nil, "load", "--help")
	if code != 0 || !strings.Contains(out, "--skip-invalid") || !strings.Contains(out, "--url strings") {
		t.Fatalf("load --help: exit %d:\n%s", code, out)
	}
}

func TestVersionPrintsTheBuild(t *testing.T) {
	code, out, _ := run(t, nil, "version")
	code2, out2, _ := run(t, nil, "--version")
	if code != 0 || code2 != 0 || out != out2 {
		t.Fatalf("version: exit %d %q; --version: exit %d %q; want both 0 and the same", code, out, code2, out2)
	}
	for _, want := range []string{"pinpipe ", "commit: ", "built: ", "go:     go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version printed %q, which lacks %q", out, want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_pinpipe", "zsh": "#compdef pinpipe", "fish": "complete -c pinpipe"} {
		code, out, errOut := run(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q; the script lacks %q", shell, code, errOut, want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.ndjson")
	for _, tt := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"load", "--bogus", "x"}, 2, "unknown flag: --bogus"},
		{[]string{"serve", "--landing-interval", "soon"}, 2, "PINPIPE_LANDING_INTERVAL"},
		{[]string{"emulate", "--rate", "0"}, 2, "--rate must be more than 0"},
		{[]string{"emulate", "--url", "notaurl"}, 2, `"notaurl" is not a pinpipe URL`},
		{[]string{"load"}, 2, "want one FILE"},
		{[]string{"load", "--rejects", "x", "f"}, 2, "--rejects needs --skip-invalid"},
		{[]string{"query", "--format", "xml", "SELECT 1"}, 2, "--format must be"},
		{[]string{"load", missing}, 1, "no such file"},
	} {
		code, _, errOut := run(t, nil, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.say) {
			t.Errorf("pinpipe %q: exit %d, stderr %q; want %d saying %q", tt.args, code, errOut, tt.code, tt.say)
		}
	}
}

// TestNothingIsCreatedBeforeTheArgumentsAreValid runs commands that would
// create the embedded data directory from a fresh directory.
func TestNothingIsCreatedBeforeTheArgumentsAreValid(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if code, _, errOut := run(t, nil, "batch", "--date", "nonsense"); code != 2 || !strings.Contains(errOut, "not a date") {
		t.Errorf("batch --date nonsense: exit %d, stderr %q; want 2 saying the date is bad", code, errOut)
	}
	if code, out, errOut := run(t, nil, "query", "SELECT count(*) FROM pins"); code != 1 || !strings.Contains(errOut, "no lake at") || out != "" {
		t.Errorf("query without a data directory: exit %d, stdout %q, stderr %q; want 1 saying there is no lake", code, out, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("the commands created %v in the working directory", entries)
	}
}

func TestLoadToADeadPortFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	path := writePins(t, 3, -1)
	code, out, errOut := run(t, map[string]string{"PINPIPE_URL": dead}, "load", "--quiet", path)
	if code != 1 || !strings.Contains(errOut, "nothing listens at "+dead) || !strings.Contains(out, "accepted 0 pins") {
		t.Fatalf("load to a dead port: exit %d, stdout %q, stderr %q; want 1 naming the URL from PINPIPE_URL", code, out, errOut)
	}
}

// writePins writes n synthetic pins as NDJSON, the one at bad (from 0; -1
// for none) without its unique_id, and returns the file's path.
func writePins(t *testing.T, n, bad int) string {
	t.Helper()
	g := synth.New(7)
	var file bytes.Buffer
	for i := range n {
		p := g.Next()
		line, _ := json.Marshal(p)
		if i == bad {
			var m map[string]any
			_ = json.Unmarshal(line, &m)
			delete(m, "unique_id")
			line, _ = json.Marshal(m)
		}
		file.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "pins.ndjson")
	testenv.Must(t, os.WriteFile(path, file.Bytes(), 0o644))
	return path
}

// TestLoadSkipInvalidPostsTheGoodPinsAndKeepsTheBadAside loads a 10-line
// file with one bad pin through PINPIPE_URL and PINPIPE_API_KEY, then
// checks the topic holds the 9 good pins and the rejects file the bad one
// with its reason; without the key, the 401 stops the load and counts no
// pin as rejected.
func TestLoadSkipInvalidPostsTheGoodPinsAndKeepsTheBadAside(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.Config(t)
	cfg.Roles = config.Roles{config.RoleAPI}
	cfg.APIKey = "s3cret"
	live, err := pipeline.Start(ctx, cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer live.Stop(ctx)
	vars := map[string]string{"PINPIPE_URL": "http://" + live.Addr, "PINPIPE_API_KEY": "s3cret"}
	path := writePins(t, 10, 3)

	code, out, errOut := run(t, vars, "load", "--quiet", path)
	if code != 1 || !strings.Contains(out, "accepted 0 pins, rejected 10") {
		t.Fatalf("load without --skip-invalid: exit %d, stdout %q, stderr %q; want the whole request refused", code, out, errOut)
	}

	rejects := filepath.Join(t.TempDir(), "rejects.ndjson")
	code, out, errOut = run(t, vars, "load", "--skip-invalid", "--rejects", rejects, "--batch", "4", path)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("accepted 9 pins, skipped 1 invalid (written to %s), rejected 0, failed 0", rejects)) {
		t.Fatalf("load --skip-invalid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "9/9") {
		t.Errorf("the progress bar does not end at 9/9: %q", errOut)
	}
	f, err := os.Open(rejects)
	testenv.Must(t, err)
	defer f.Close()
	type reject struct {
		Line   int            `json:"line"`
		Record map[string]any `json:"record"`
		Reason string         `json:"reason"`
	}
	var got []reject
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r reject
		testenv.Must(t, json.Unmarshal(sc.Bytes(), &r))
		got = append(got, r)
	}
	if len(got) != 1 || got[0].Line != 4 || got[0].Record["title"] == nil || !strings.Contains(got[0].Reason, "unique_id") ||
		strings.Contains(got[0].Reason, "nothing was accepted") {
		t.Fatalf("the rejects file holds %+v; want line 4, the pin as it was, and a reason naming unique_id (its own problems, not a request's summary)", got)
	}
	if recs := testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic); len(recs) != 9 {
		t.Fatalf("the topic holds %d records, want the 9 good pins", len(recs))
	}

	delete(vars, "PINPIPE_API_KEY")
	code, out, errOut = run(t, vars, "load", "--quiet", "--skip-invalid", path)
	if code != 1 || !strings.Contains(errOut, "refused the API key (401") || !strings.Contains(out, "rejected 0,") {
		t.Fatalf("load without the key: exit %d, stdout %q, stderr %q; want 1, the 401 named, and no pin counted as rejected", code, out, errOut)
	}

	// The server says which build it is.
	req, _ := http.NewRequest(http.MethodGet, "http://"+live.Addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	testenv.Must(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^pinpipe_build_info\{commit="[^"]+",go="go1\.[^"]+",version="[^"]+"\} 1$`).Match(metrics) {
		t.Errorf("/metrics lacks pinpipe_build_info{version,commit,go} 1")
	}

	// emulate never sends more than rate × duration.
	vars["PINPIPE_API_KEY"] = "s3cret"
	code, out, errOut = run(t, vars, "emulate", "--quiet", "--rate", "40", "--duration", "1s", "--seed", "1")
	var accepted int
	if _, err := fmt.Sscanf(out, "accepted %d pins", &accepted); code != 0 || err != nil || accepted > 40 || accepted == 0 {
		t.Fatalf("emulate --rate 40 --duration 1s: exit %d, stdout %q, stderr %q; want at most 40 pins", code, out, errOut)
	}
	if recs := testenv.ReadTopic(t, cfg.KafkaBrokers, cfg.Topic); len(recs) != 9+accepted {
		t.Fatalf("the topic holds %d records after emulate said it sent %d, want %d", len(recs), accepted, 9+accepted)
	}
}
