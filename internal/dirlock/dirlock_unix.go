//go:build unix

package dirlock

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Lock takes an exclusive lock on dir, creating it when missing. Returns
// ErrLocked when another process holds it; the lock ends when the returned
// Closer is closed or the process exits.
func Lock(dir string) (io.Closer, error) {
	f, err := openLockFile(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}
