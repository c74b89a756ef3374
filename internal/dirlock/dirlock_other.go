//go:build !unix

package dirlock

import "io"

// Lock creates dir and its lock file. Without flock, two processes sharing
// one data directory are not detected on this platform.
func Lock(dir string) (io.Closer, error) { return openLockFile(dir) }
