// Package duckfile keeps a DuckDB database file openable after its process
// is killed inside a checkpoint.
//
// DuckDB writes a checkpoint's metadata blocks in place. A process killed
// inside one of those writes (a SIGKILL can cut a large write short) leaves
// a block whose checksum fails while the file's last good header still
// points into it, and the whole file then refuses to open: "Corrupt
// database file: computed checksum … does not match stored checksum". The
// stream stand-in's crash test met this about once in eighty runs of
// sixteen kills.
//
// So a file opened with Settings has no automatic checkpoint and no
// checkpoint on shutdown, and its owner runs every checkpoint through
// Checkpoint, which first keeps a copy of the file and of its write-ahead
// log: <file>.pre-checkpoint and <file>.pre-checkpoint.wal. The copy of the
// file is renamed into place last, so its presence says the copy is whole.
// The owner lets no write commit while a checkpoint runs, so the copy and
// its log are the database's whole state. Once the checkpoint returns, the
// copy is removed. A copy still present at the next open means the
// checkpoint was cut short: Restore puts it back in place of the file and
// its logs, and DuckDB replays the log onto it. The owner holds the
// directory's lock (package dirlock) before Restore, so a copy is never put
// back under another process's open database.
package duckfile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// Settings turns DuckDB's own checkpoints off; run it on every connection
// (a connector's init) of a file whose checkpoints go through Checkpoint.
const Settings = `SET checkpoint_threshold = '1000TB'; PRAGMA disable_checkpoint_on_shutdown`

// LogLimit is the write-ahead log's size past which an owner should
// checkpoint after a write (see Due): DuckDB's own default threshold. A
// variable for the tests.
var LogLimit int64 = 16 << 20

// Suffixes of the database file's path.
const (
	preCheckpoint = ".pre-checkpoint" // the copy of the file; present only when the copy is whole
	preCopying    = ".pre-checkpoint.copying"
)

// CopyOf returns where Keep puts its copy of the database file at path and
// of its log.
func CopyOf(path string) (file, log string) {
	return path + preCheckpoint, path + preCheckpoint + ".wal"
}

// Logs returns the write-ahead logs DuckDB keeps beside the database file
// at path: the log, the one a checkpoint writes to while it runs, and the
// one recovery merges them into.
func Logs(path string) []string {
	return []string{path + ".wal", path + ".wal.checkpoint", path + ".wal.recovery"}
}

// Due reports whether the write-ahead log of the file at path has grown
// past LogLimit.
func Due(path string) bool {
	fi, err := os.Stat(path + ".wal")
	return err == nil && fi.Size() >= LogLimit
}

// Checkpoint runs a checkpoint on conn with a copy kept until it returns.
// The caller lets no write commit meanwhile. When it fails with a Fatal
// error, the caller closes the database and calls Restore; otherwise Drop.
func Checkpoint(ctx context.Context, conn *sql.Conn, path string) error {
	if err := Keep(path); err != nil {
		return fmt.Errorf("copy before the checkpoint: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return Drop(path)
}

// Fatal reports whether err leaves DuckDB's database unusable: after a
// fatal error DuckDB refuses every statement until it is opened again; an
// internal error is a DuckDB bug whose state is not to be trusted. A
// checkpoint that fails so may have left the file damaged: Restore.
func Fatal(err error) bool {
	var de *duckdb.Error
	if errors.As(err, &de) && (de.Type == duckdb.ErrorTypeFatal || de.Type == duckdb.ErrorTypeInternal) {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "database has been invalidated")
}

// Keep copies the database file at path and its write-ahead log (an empty
// file when there is none) to their pre-checkpoint names, synced, the
// file's last. Does nothing when the file does not exist yet. An owner
// calls it itself before opening the file, which replays the log.
func Keep(path string) error {
	if err := Drop(path); err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := copyFile(path+".wal", path+preCopying+".wal"); err != nil {
		return err
	}
	if err := os.Rename(path+preCopying+".wal", path+preCheckpoint+".wal"); err != nil {
		return err
	}
	if err := copyFile(path, path+preCopying); err != nil {
		return err
	}
	if err := os.Rename(path+preCopying, path+preCheckpoint); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Drop removes the pre-checkpoint copy, the file's first, and whatever an
// unfinished copy left.
func Drop(path string) error {
	for _, f := range []string{path + preCheckpoint, path + preCheckpoint + ".wal", path + preCopying, path + preCopying + ".wal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Restore puts a whole pre-checkpoint copy back in place of the database
// file at path and its logs, when there is one, and removes an unfinished
// one. It can be cut short and run again: the log goes back first, and the
// file, whose presence marks the copy whole, last. Returns whether it put
// one back. The database must not be open.
func Restore(path string) (bool, error) {
	if _, err := os.Stat(path + preCheckpoint); errors.Is(err, os.ErrNotExist) {
		return false, Drop(path)
	}
	wal := path + preCheckpoint + ".wal"
	if fi, err := os.Stat(wal); err == nil && fi.Size() == 0 {
		// There was no log: the file alone is the state.
		if err := os.Remove(path + ".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if err := os.Remove(wal); err != nil {
			return false, err
		}
	} else if err := os.Rename(wal, path+".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	for _, f := range Logs(path)[1:] {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	if err := os.Rename(path+preCheckpoint, path); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(path))
}

// copyFile copies src to dst and syncs dst; a missing src gives an empty
// dst.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		in = nil
	} else if err != nil {
		return err
	}
	if in != nil {
		defer in.Close()
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if in != nil {
		if _, err := io.Copy(out, in); err != nil {
			return fmt.Errorf("copy %s: %w", filepath.Base(src), err)
		}
	}
	return out.Sync()
}

// syncDir syncs a directory, so the renames in it survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
