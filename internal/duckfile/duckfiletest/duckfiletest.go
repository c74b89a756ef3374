// Package duckfiletest leaves a DuckDB file as a process killed inside a
// checkpoint leaves it, for the tests of its owners.
package duckfiletest

import (
	"os"
	"strings"
	"testing"

	"pinpipe/internal/duckfile"
	"pinpipe/internal/testenv"
)

// CutShort reads the database file at path and its write-ahead log (which
// must hold a write the file does not: the test fails otherwise), calls
// close, and then leaves the files as a kill inside the next checkpoint's
// metadata write would: the copy duckfile.Keep makes, and the file with a
// torn block (the first after its three headers) that DuckDB refuses to
// open. close must let the database go; a clean close removes any copy,
// so the copy is written after it.
func CutShort(t testing.TB, path string, close func() error) {
	t.Helper()
	file, log := duckfile.CopyOf(path)
	copies := map[string][]byte{}
	for from, to := range map[string]string{path + ".wal": log, path: file} {
		b, err := os.ReadFile(from)
		testenv.Must(t, err)
		if len(b) == 0 {
			t.Fatalf("%s is empty; the test needs a write in the log", from)
		}
		copies[to] = b
	}
	testenv.Must(t, close())
	for to, b := range copies {
		testenv.Must(t, os.WriteFile(to, b, 0o644))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	testenv.Must(t, err)
	_, err = f.WriteAt([]byte(strings.Repeat("torn", 1024)), 3*4096)
	testenv.Must(t, err)
	testenv.Must(t, f.Close())
}

// LogLimit sets duckfile.LogLimit to n until the test ends.
func LogLimit(t testing.TB, n int64) {
	old := duckfile.LogLimit
	duckfile.LogLimit = n
	t.Cleanup(func() { duckfile.LogLimit = old })
}

// Checkpointed fails the test unless the database file at path has an
// empty write-ahead log, or none, and no copy left beside it; after says
// when, for the message.
func Checkpointed(t testing.TB, path, after string) {
	t.Helper()
	if fi, err := os.Stat(path + ".wal"); err == nil && fi.Size() > 0 {
		t.Errorf("after %s the log holds %d bytes, want a checkpoint to have emptied it", after, fi.Size())
	}
	file, log := duckfile.CopyOf(path)
	for _, f := range []string{file, log} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("after %s: %s left behind", after, f)
		}
	}
}
