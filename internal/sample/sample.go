// Package sample gives tests the repository's sample pins
// (testdata/sample_pins.jsonl): ten real records from the source app, with
// its placeholders, follower counts such as "26k" and the "Local save in"
// prefix. It depends on nothing but the standard library, so any package's
// tests can use it, the pure domain package included.
package sample

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// File is the sample pins' path relative to the repository root.
const File = "testdata/sample_pins.jsonl"

// Path returns the absolute path of the sample pins, found by walking up
// from the working directory (a test runs in its package's directory) to
// the directory holding pinpipe's go.mod. It fails the test when there is
// no such directory or the file is missing.
func Path(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("sample pins: %v", err)
	}
	p := filepath.Join(root, filepath.FromSlash(File))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("sample pins: %v", err)
	}
	return p
}

// Pins returns the sample pins' NDJSON exactly as stored in the file.
func Pins(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t))
	if err != nil {
		t.Fatalf("sample pins: %v", err)
	}
	return b
}

// Lines returns the sample pins one record a line, without the newlines.
func Lines(t testing.TB) [][]byte {
	t.Helper()
	return bytes.Split(bytes.TrimRight(Pins(t), "\n"), []byte("\n"))
}

// repoRoot returns the nearest directory at or above the working directory
// whose go.mod declares module pinpipe.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if first, _, _ := bytes.Cut(mod, []byte("\n")); err == nil && string(bytes.TrimSpace(first)) == "module pinpipe" {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no directory at or above the working directory holds pinpipe's go.mod")
		}
		dir = parent
	}
}
