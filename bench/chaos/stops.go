package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"pinpipe/batch"
	"pinpipe/internal/instance"
)

// errNotAimed says a fault aimed at a batch run found no run at the point
// it aims at: nothing was injected, so the soak draws another fault.
var errNotAimed = errors.New("not aimed")

// The points of a batch run a fault is aimed at, as the instance logs them.
const (
	runStarted = "while reading the raw zone" // "batch: run started"
	runWriting = "while writing its outputs"  // "batch: raw zone read…", before the curated zone and the serving tables
)

var runPhaseLog = map[string]string{runStarted: "batch: run started", runWriting: "batch: raw zone read"}

// awaitRun starts a run of today on p and returns its id once p's log says
// the run reached phase. A run that ends before it (say, the landing was
// behind) and a day another run holds (409) are tried again, for up to
// three minutes. Returns an error wrapping errNotAimed when no run reached
// phase in that time.
func (c *chaos) awaitRun(p *instance.Process, phase string) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		off := fileSize(p.LogFile())
		id, err := startRun(p.URL(), today())
		if err != nil || id == "" {
			time.Sleep(time.Second)
			continue
		}
		for time.Now().Before(deadline) {
			if logHas(p.LogFile(), off, id, runPhaseLog[phase]) {
				return id, nil
			}
			if r, err := getRun(p.URL(), id); err == nil && (r.Status == batch.StatusSucceeded || r.Status == batch.StatusFailed) {
				c.log("  run %s ended (%s) before it was %s; starting another", id, r.Status, phase)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return "", fmt.Errorf("%w: no batch run on %s was %s within 3 minutes", errNotAimed, p.Name(), phase)
}

// cassandraInRun stops Cassandra (SIGKILL) once a run on a random instance
// is writing, holds it down, starts it again, and waits until the run
// ended; a run that failed is run again until one succeeds, so the curated
// zone and the serving tables hold the day. It sets at to the moment of
// the stop. Returns what it hit and how the run ended, and an error when
// Cassandra did not come back or no run of the day succeeded.
func (c *chaos) cassandraInRun(at *time.Time) (string, error) {
	p := c.procs[c.rng.IntN(len(c.procs))]
	hold := c.between(5*time.Second, c.maxCut)
	dt := today()
	id, err := c.awaitRun(p, runWriting)
	if err != nil {
		return p.Name(), err
	}
	target := fmt.Sprintf("%s, run %s %s", p.Name(), id, runWriting)
	*at = time.Now()
	if err := c.stop("cassandra", "--kill"); err != nil {
		return target, err
	}
	time.Sleep(hold)
	if err := c.start("cassandra"); err != nil {
		return target, err
	}
	deadline := time.Now().Add(runPatience)
	for {
		r, err := getRun(p.URL(), id)
		switch {
		case err == nil && r.Status == batch.StatusSucceeded:
			return target + ": it succeeded", nil
		case err == nil && r.Status == batch.StatusFailed:
			c.log("  run %s failed: %s; running the day again", id, r.Error)
			if err := runDay(context.Background(), p.URL(), dt); err != nil {
				return target + ": it failed, and so did the runs after it", err
			}
			return target + ": it failed, a new run succeeded", nil
		case time.Now().After(deadline):
			return target, fmt.Errorf("run %s did not end within %s of Cassandra's restart (last: %+v, %v)", id, runPatience, r, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// fillDisk fills the tmpfs of c.diskProc's data directory with a ballast
// file, asks that instance for a batch run and a query while it is full,
// holds it full, then removes the ballast.
func (c *chaos) fillDisk() error {
	c.ballast = filepath.Join(c.disk, "ballast")
	n, err := fill(c.ballast)
	if err != nil {
		return err
	}
	c.log("  %s full: a %d MiB ballast", c.disk, n>>20)
	hold := c.between(5*time.Second, c.maxCut)
	end := time.Now().Add(hold)
	if id, err := startRun(c.diskProc.URL(), today()); err == nil {
		c.log("  a batch run on the full disk: %s", id)
	} else {
		c.log("  a batch run on the full disk was not started: %v", err)
	}
	resp, err := http.Post(c.diskProc.URL()+"/query", "application/json",
		strings.NewReader(`{"sql":"SELECT count(*) FROM pins_live","limit":1}`))
	if err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		_ = resp.Body.Close()
		c.log("  a query on the full disk: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	time.Sleep(time.Until(end))
	err = os.Remove(c.ballast)
	c.ballast = ""
	return err
}

// fill writes zeros to a new file at path until the file system is full,
// and returns how many bytes it wrote. Returns an error other than "no
// space left".
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("disk full: create the ballast: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("disk full: write the ballast: %w", err)
		}
	}
}

// stop stops a stack service (scripts/stack stop), remembering it so
// restore brings it back.
func (c *chaos) stop(svc, mode string) error {
	args := []string{"stop", svc}
	if mode != "" {
		args = append(args, mode)
	}
	c.serviceDown = svc
	return c.stackRun(args...)
}

// start starts a stack service again and waits until it is ready, asking
// again for up to 15 minutes (a Cassandra holding many keyspaces opens
// every table before it serves, minutes on a busy machine). Returns the
// last error when it is not back.
func (c *chaos) start(svc string) error {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := c.stackRun("start", svc)
		if err == nil {
			c.serviceDown = ""
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

func today() string { return time.Now().UTC().Format(time.DateOnly) }

// startRun asks the instance at base for a run of dt and returns its id.
func startRun(base, dt string) (string, error) {
	resp, err := http.Post(base+"/batch/runs", "application/json", strings.NewReader(`{"date":"`+dt+`"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /batch/runs: %s %v", resp.Status, out["detail"])
	}
	id, _ := out["id"].(string)
	return id, nil
}

// getRun returns the run id as the instance at base knows it.
func getRun(base, id string) (batch.Run, error) {
	var r batch.Run
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(base + "/batch/runs/" + id)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET /batch/runs/%s: %s", id, resp.Status)
	}
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logHas reports whether the file at path, from offset off on, has a line
// holding every one of parts.
func logHas(path string, off int64, parts ...string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				continue next
			}
		}
		return true
	}
	return false
}

// mountDisk mounts a tmpfs of size at dir (it needs root). Returns an
// error saying why when it cannot.
func mountDisk(dir, size string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount -t tmpfs -o size=%s tmpfs %s: %v %s", size, dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmountDisk unmounts dir, lazily when it is still busy.
func unmountDisk(dir string) {
	if exec.Command("umount", dir).Run() != nil {
		_ = exec.Command("umount", "-l", dir).Run()
	}
}
