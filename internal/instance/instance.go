// Package instance runs pinpipe binaries as child processes, the way an
// operator runs several instances of one cluster: built once, each with its
// own roles, address and data directory, stopped with SIGTERM or killed
// with SIGKILL, restarted on the same address. The cluster suite,
// bench/cluster and bench/chaos use it; it reads each process's CPU time
// and peak memory from /proc.
package instance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"pinpipe/config"
)

// Build compiles the pinpipe binary (the module's main package) into dir
// and returns its path. It must run inside the module. Returns an error
// holding the compiler's output when the build fails.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pinpipe")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "pinpipe").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("instance: go build pinpipe: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for an instance that must keep its address across restarts.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("instance: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Env returns the environment variables that give a pinpipe process the
// configuration c: its dependencies, topic, consumer groups, lane tuning,
// roles, drain, address and data directory. Settings c leaves at their
// zero value are left out, so the process takes their defaults.
func Env(c *config.Config) []string {
	var env []string
	add := func(k, v string) {
		if v != "" && v != "0" && v != "0s" {
			env = append(env, k+"="+v)
		}
	}
	add("PINPIPE_ADDR", c.Addr)
	add("PINPIPE_DATA_DIR", c.DataDir)
	add("PINPIPE_KAFKA_BROKERS", strings.Join(c.KafkaBrokers, ","))
	add("PINPIPE_TOPIC", c.Topic)
	add("PINPIPE_GROUP_PREFIX", c.GroupPrefix)
	add("PINPIPE_S3_ENDPOINT", c.S3Endpoint)
	add("PINPIPE_S3_BUCKET", c.S3Bucket)
	add("AWS_ACCESS_KEY_ID", c.AWSAccessKeyID)
	add("AWS_SECRET_ACCESS_KEY", c.AWSSecretKey)
	add("AWS_REGION", c.AWSRegion)
	add("PINPIPE_CASSANDRA_HOSTS", strings.Join(c.CassandraHosts, ","))
	add("PINPIPE_CASSANDRA_KEYSPACE", c.CassandraKeyspace)
	add("PINPIPE_POSTGRES_URL", c.PostgresURL)
	add("PINPIPE_BATCH_CRON", c.BatchCron)
	add("PINPIPE_LANDING_MAX_RECORDS", strconv.Itoa(c.LandingMaxRecords))
	add("PINPIPE_LANDING_INTERVAL", c.LandingInterval.String())
	add("PINPIPE_STREAM_MAX_RECORDS", strconv.Itoa(c.StreamMaxRecords))
	add("PINPIPE_STREAM_INTERVAL", c.StreamInterval.String())
	add("PINPIPE_STREAM_LINGER", c.StreamLinger.String())
	add("PINPIPE_MIRROR_STALENESS", c.MirrorStaleness.String())
	add("PINPIPE_TOPIC_PARTITIONS", strconv.Itoa(c.TopicPartitions))
	add("PINPIPE_TOPIC_REPLICATION", strconv.Itoa(c.TopicReplication))
	add("PINPIPE_ROLES", strings.Join(c.Roles, ","))
	add("PINPIPE_SHUTDOWN_DRAIN", c.ShutdownDrain.String())
	add("PINPIPE_LOG_LEVEL", c.LogLevel)
	return env
}

// Options describe one instance.
type Options struct {
	Name string   // for logs and errors: "a", "api-2"
	Bin  string   // the pinpipe binary (Build)
	Addr string   // its fixed HTTP address (FreeAddr)
	Env  []string // its settings (Env); the parent's PINPIPE_* and AWS_* are not passed on
	Log  string   // file its stderr is appended to, across restarts
}

// Process is one pinpipe instance that may be started, stopped and killed
// any number of times.
type Process struct {
	o Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process was reaped
	err  error         // its exit status, once done
}

// New returns an instance that is not running yet.
func New(o Options) *Process { return &Process{o: o} }

// Name returns the instance's name.
func (p *Process) Name() string { return p.o.Name }

// LogFile returns the file the instance's output goes to.
func (p *Process) LogFile() string { return p.o.Log }

// URL returns the instance's base URL.
func (p *Process) URL() string { return "http://" + p.o.Addr }

// Start starts the process in the background. Returns an error when it is
// already running or cannot be started.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("instance %s: already running (pid %d)", p.o.Name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("instance %s: open its log: %w", p.o.Name, err)
	}
	fmt.Fprintf(logf, "----- %s: start %s -----\n", time.Now().UTC().Format(time.RFC3339Nano), p.o.Name)
	cmd := exec.Command(p.o.Bin, "serve")
	cmd.Env = append(parentEnv(), p.o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a signal to the parent's group (Ctrl-C)
	// does not stop it before the owner does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("instance %s: start: %w", p.o.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// parentEnv is this process's environment without the settings an
// instance gets from its Options only.
func parentEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PINPIPE_") && !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// Pid returns the running process's id, or 0 when it is not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits until the process is gone. A process that
// is not running is left alone.
func (p *Process) Kill() error {
	return p.signal(syscall.SIGKILL, time.Minute)
}

// Stop sends SIGTERM and waits up to timeout for the process to exit.
// Returns an error holding its exit status when it did not exit cleanly
// (a non-zero code, or still running after timeout, when it is then
// killed).
func (p *Process) Stop(timeout time.Duration) error {
	return p.signal(syscall.SIGTERM, timeout)
}

func (p *Process) signal(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("instance %s: still running %s after %v; killed", p.o.Name, timeout, sig)
	}
	p.mu.Lock()
	exit := p.err
	p.cmd, p.done, p.err = nil, nil, nil
	p.mu.Unlock()
	if err == nil && sig != syscall.SIGKILL && exit != nil {
		err = fmt.Errorf("instance %s: exit after %v: %w", p.o.Name, sig, exit)
	}
	return err
}

// WaitReady polls GET /readyz until it answers 200, the process exits, or
// ctx ends. Returns an error with the last answer (or the end of the log
// when the process exited).
func (p *Process) WaitReady(ctx context.Context) error {
	c := &http.Client{Timeout: 5 * time.Second}
	last := "no answer yet"
	for {
		if !p.Running() {
			return fmt.Errorf("instance %s: exited while starting; its log ends:\n%s", p.o.Name, Tail(p.o.Log, 30))
		}
		resp, err := c.Get(p.URL() + "/readyz")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status + " " + b.String()
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s: not ready: %s", p.o.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Usage is what a process has used so far.
type Usage struct {
	CPU     time.Duration // user + system time
	PeakRSS int64         // bytes, VmHWM
}

// Usage reads the running process's CPU time (/proc/<pid>/stat utime and
// stime) and peak resident memory (/proc/<pid>/status VmHWM). Returns an
// error when it is not running or /proc cannot be read (not Linux).
func (p *Process) Usage() (Usage, error) {
	pid := p.Pid()
	if pid == 0 {
		return Usage{}, fmt.Errorf("instance %s: not running", p.o.Name)
	}
	return ReadUsage(pid)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ReadUsage reads process pid's CPU time and peak resident memory from
// /proc.
func ReadUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("instance: CPU time of %d: %w", pid, err)
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Usage{}, fmt.Errorf("instance: /proc/%d/stat: unexpected %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return Usage{}, fmt.Errorf("instance: /proc/%d/stat: unexpected %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Usage{}, fmt.Errorf("instance: /proc/%d/stat: %w", pid, err)
	}
	u := Usage{CPU: time.Duration(ut+st) * time.Second / clockTicks}
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, fmt.Errorf("instance: memory of %d: %w", pid, err)
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return Usage{}, fmt.Errorf("instance: /proc/%d/status VmHWM %q: %w", pid, v, err)
			}
			u.PeakRSS = kb << 10
		}
	}
	return u, sc.Err()
}

// Tail returns the last n lines of the file at path, or why it cannot.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
