//go:build unix

package query

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// lockDir takes an exclusive lock on dir, so two processes never delete
// each other's copies. Returns ErrMirrorLocked when another process holds
// it; the lock ends when the returned Closer is closed or the process exits.
func lockDir(dir string) (io.Closer, error) {
	f, err := openLockFile(dir)
	if err != nil {
		return nil, err
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
