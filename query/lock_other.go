//go:build !unix

package query

import "io"

// lockDir creates dir's lock file. Without flock, two processes sharing one
// data directory are not detected on this platform.
func lockDir(dir string) (io.Closer, error) { return openLockFile(dir) }
