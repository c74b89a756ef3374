// Package dirlock gives one process at a time a directory: the query
// mirror's copies, the stream stand-in's files.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked is returned by Lock when another process holds the directory.
var ErrLocked = errors.New("the directory is in use by another process")

// Name is the lock file's name in the directory.
const Name = ".lock"

// openLockFile creates dir when missing and opens its lock file.
func openLockFile(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return os.OpenFile(filepath.Join(dir, Name), os.O_CREATE|os.O_RDWR, 0o644)
}
