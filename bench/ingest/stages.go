package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// stages attribute a CPU profile's samples to the pipeline's parts: a
// sample belongs to the first stage any frame of its stack matches, so a
// DuckDB call made by the stream lane is the stream lane's.
var stages = []struct {
	name  string
	match *regexp.Regexp
}{
	{"load generator (HTTP client)", regexp.MustCompile(`^main\.|^net/http\.\(\*(persistConn|Transport|Client)\)|^net/http\.send$`)},
	{"stream write", regexp.MustCompile(`^pinpipe/stream\.`)},
	{"stand-in writes (batch serving)", regexp.MustCompile(`^pinpipe/batch/standin\.`)},
	{"landing encode+upload", regexp.MustCompile(`^pinpipe/(batch|lake)\.|gofakes3|parquet`)},
	{"other DuckDB", regexp.MustCompile(`duckdb`)},
	{"lanes' Kafka fetch", regexp.MustCompile(`^pinpipe/consume\.|franz-go/pkg/kgo`)},
	{"embedded broker", regexp.MustCompile(`kfake|^pinpipe/broker\.`)},
	{"produce", regexp.MustCompile(`^pinpipe/ingest\.|segmentio/kafka-go`)},
	{"HTTP+decode", regexp.MustCompile(`^pinpipe/(server|pin)\.|^net/http\.|^net/textproto\.|^bufio\.`)},
	{"GC (background)", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)`)},
}

// stageCPU is one scenario's CPU by stage.
type stageCPU struct {
	by    map[string]time.Duration
	total time.Duration
}

// profiler records one scenario's CPU profile at a time.
type profiler struct {
	prefix string // save each profile as prefix.<scenario>; "" keeps none
	buf    bytes.Buffer
}

func (p *profiler) start() {
	p.buf.Reset()
	check(pprof.StartCPUProfile(&p.buf))
}

// stop ends the profile, saves it when asked, and returns its CPU by stage.
func (p *profiler) stop(scenario string) stageCPU {
	pprof.StopCPUProfile()
	if p.prefix != "" {
		check(os.WriteFile(p.prefix+"."+scenario, p.buf.Bytes(), 0o644))
	}
	prof, err := profile.Parse(&p.buf)
	check(err)
	out := stageCPU{by: map[string]time.Duration{}}
	cpu := slices.IndexFunc(prof.SampleType, func(t *profile.ValueType) bool { return t.Unit == "nanoseconds" })
	if cpu < 0 {
		check(fmt.Errorf("the CPU profile has no nanoseconds sample type"))
	}
	for _, s := range prof.Sample {
		d := time.Duration(s.Value[cpu])
		out.total += d
		out.by[stageOf(s)] += d
	}
	return out
}

func stageOf(s *profile.Sample) string {
	for _, st := range stages {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function != nil && st.match.MatchString(line.Function.Name) {
					return st.name
				}
			}
		}
	}
	return "other (runtime, scheduler, syscalls)"
}
