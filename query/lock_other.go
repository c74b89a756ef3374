//go:build !unix

package query

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// lockName is the mirror directory's lock file.
const lockName = ".lock"

// lockDir creates dir's lock file. Without flock, two processes sharing one
// data directory are not detected on this platform.
func lockDir(dir string) (io.Closer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: create %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return f, nil
}
