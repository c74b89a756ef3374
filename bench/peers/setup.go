package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// env is what every part needs: the flags, the installed peers, the pinpipe
// binary and the stack.
type env struct {
	options
	python   string   // the venv's python
	jars     []string // Spark's Kafka source, the Postgres driver and their dependencies
	pinpipe  string   // the binary built from this checkout
	stack    stack
	run      string // this run's ID, part of every topic, bucket and table name
	versions map[string]string
}

// dir returns bench/peers in the checkout (the Python jobs live there).
func (e *env) dir() string { return filepath.Join(e.repo, "bench", "peers") }

// setup installs what is missing into the cache (a venv per requirements.txt,
// the jars per pom.xml), builds pinpipe, and returns the environment.
// Returns an error naming the step that failed; its output is in the log.
func setup(ctx context.Context, o options) (*env, error) {
	e := &env{options: o, versions: map[string]string{}}
	here := e.dir()

	var err error
	if e.python, err = setupPython(ctx, o.cache); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, e.python, "-c",
		`import importlib.metadata as m
for p in ("pyspark", "fastapi", "uvicorn", "pydantic", "kafka-python"): print(p, m.version(p))`).Output()
	if err != nil {
		return nil, fmt.Errorf("setup: peer versions: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok {
			e.versions[name] = v
		}
	}

	pom := filepath.Join(here, "pom.xml")
	jars := filepath.Join(o.cache, "jars-"+digest(pom))
	if _, err := os.Stat(filepath.Join(jars, ".installed")); err != nil {
		log.Printf("copying Spark's Kafka source and the Postgres driver from Maven Central into %s", jars)
		_ = os.RemoveAll(jars)
		// Only what pyspark lacks: Spark ships Scala, Hadoop's client and
		// the codecs, and a second copy on the class path would conflict.
		if err := runLogged(ctx, o.cache, "mvn", "mvn", "-q", "-B", "-f", pom, "dependency:copy-dependencies",
			"-DoutputDirectory="+jars, "-DincludeScope=runtime",
			"-DincludeArtifactIds=spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2,postgresql,checker-qual"); err != nil {
			return nil, fmt.Errorf("setup: mvn dependency:copy-dependencies: %w", err)
		}
		if err := os.WriteFile(filepath.Join(jars, ".installed"), nil, 0o644); err != nil {
			return nil, err
		}
	}
	e.jars, _ = filepath.Glob(filepath.Join(jars, "*.jar"))
	if len(e.jars) == 0 {
		return nil, fmt.Errorf("setup: no jar in %s", jars)
	}

	log.Printf("building pinpipe")
	e.pinpipe = filepath.Join(o.work, "pinpipe")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.pinpipe, ".")
	build.Dir = o.repo
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("setup: go build: %w\n%s", err, out)
	}
	return e, nil
}

// setupPython installs the venv of requirements.txt into cache if it is
// not there (once: pyspark is large) and returns its python. Returns an
// error naming the step that failed; its output is in the log.
func setupPython(ctx context.Context, cache string) (string, error) {
	repo, err := repoRoot()
	if err != nil {
		return "", err
	}
	req := filepath.Join(repo, "bench", "peers", "requirements.txt")
	venv := filepath.Join(cache, "venv-"+digest(req))
	if _, err := os.Stat(filepath.Join(venv, ".installed")); err != nil {
		log.Printf("installing the Python peers into %s (once; pyspark is large)", venv)
		_ = os.RemoveAll(venv)
		if err := runLogged(ctx, cache, "venv", "python3", "-m", "venv", venv); err != nil {
			return "", fmt.Errorf("setup: python venv: %w", err)
		}
		if err := runLogged(ctx, cache, "pip", filepath.Join(venv, "bin", "pip"), "install", "--disable-pip-version-check", "-r", req); err != nil {
			return "", fmt.Errorf("setup: pip install: %w", err)
		}
		if err := os.WriteFile(filepath.Join(venv, ".installed"), nil, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(venv, "bin", "python"), nil
}

// digest returns a short hash of a file's content (empty when unreadable),
// so a changed pin list installs into a new directory.
func digest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// runLogged runs a command with its output in dir/<name>.log. Returns an
// error that names the log.
func runLogged(ctx context.Context, dir, name string, argv ...string) error {
	path := filepath.Join(dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w (output in %s)", err, path)
	}
	return nil
}
