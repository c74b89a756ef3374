package query

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockName is the mirror directory's lock file.
const lockName = ".lock"

// openLockFile creates dir when missing and opens its lock file.
func openLockFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: create %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return f, nil
}
