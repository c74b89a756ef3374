//go:build unix

package query

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the mirror directory's lock file.
const lockName = ".lock"

// lockDir takes an exclusive lock on dir, so two processes never delete
// each other's copies. Returns ErrMirrorLocked when another process holds
// it; the lock ends when the returned Closer is closed or the process exits.
func lockDir(dir string) (io.Closer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: create %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrMirrorLocked, dir)
		}
		return nil, fmt.Errorf("mirror: lock %s: %w", dir, err)
	}
	return f, nil
}
