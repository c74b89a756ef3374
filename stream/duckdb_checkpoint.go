package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// DuckDB writes a checkpoint's metadata blocks in place. A process killed
// inside one of those writes (a SIGKILL can cut a large write short) leaves
// a block whose checksum fails while the file's last good header still
// points into it, and the whole file then refuses to open: "Corrupt
// database file: computed checksum … does not match stored checksum". The
// crash test met this about once in a hundred runs of sixteen kills.
//
// So the stand-in runs every checkpoint itself, with DuckDB's automatic
// checkpoints and its checkpoint on shutdown turned off (duckConfig), and
// before each one keeps a copy of the file and of its write-ahead log:
// stream.duckdb.pre-checkpoint and stream.duckdb.pre-checkpoint.wal. The
// copy of the file is renamed into place last, so its presence says the
// copy is whole. No write commits while a checkpoint runs (the writer holds
// wmu), so the copy and its log are the store's whole state. Once the
// checkpoint returns, the copy is removed. A copy still present at the next
// open means the checkpoint was cut short: it replaces the file and its
// log, and DuckDB replays the log onto it.

// Suffixes of the store's path.
const (
	preCheckpoint = ".pre-checkpoint" // the copy of the file; present only when the copy is whole
	preCopying    = ".pre-checkpoint.copying"
)

// checkpointWAL is the write-ahead log's size past which a write is
// followed by a checkpoint: DuckDB's own default threshold. A variable for
// the tests.
var checkpointWAL int64 = 16 << 20

// duckConfig holds the checkpoints for the stand-in (see above); the
// connector runs it on each new connection.
const duckConfig = `SET TimeZone = 'UTC'; SET checkpoint_threshold = '1000TB'; PRAGMA disable_checkpoint_on_shutdown`

// walFiles returns the write-ahead logs DuckDB keeps beside the database
// file at path: the log, the one a checkpoint writes to while it runs, and
// the one recovery merges them into.
func walFiles(path string) []string {
	return []string{path + ".wal", path + ".wal.checkpoint", path + ".wal.recovery"}
}

// checkpoint runs a checkpoint on conn with the copy described above.
// Called with wmu held, or before the database is the store's.
func (s *DuckDB) checkpoint(ctx context.Context, conn *sql.Conn) error {
	if err := s.keepCopy(); err != nil {
		return fmt.Errorf("copy before the checkpoint: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return s.dropCopy()
}

// keepCopy copies the store's file and write-ahead log (an empty file when
// there is none) to their pre-checkpoint names, synced, the file's last.
// Does nothing when the store's file does not exist yet.
func (s *DuckDB) keepCopy() error {
	if err := s.dropCopy(); err != nil {
		return err
	}
	if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := copyFile(s.path+".wal", s.path+preCopying+".wal"); err != nil {
		return err
	}
	if err := os.Rename(s.path+preCopying+".wal", s.path+preCheckpoint+".wal"); err != nil {
		return err
	}
	if err := copyFile(s.path, s.path+preCopying); err != nil {
		return err
	}
	if err := os.Rename(s.path+preCopying, s.path+preCheckpoint); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// dropCopy removes the pre-checkpoint copy, the file's first, and whatever
// an unfinished copy left.
func (s *DuckDB) dropCopy() error {
	for _, f := range []string{s.path + preCheckpoint, s.path + preCheckpoint + ".wal", s.path + preCopying, s.path + preCopying + ".wal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// restoreCopy puts a whole pre-checkpoint copy back in place of the
// store's file and logs, when there is one. It can be cut short and run
// again: the log goes back first, and the file, whose presence marks the
// copy whole, last. Returns whether it restored one. The store's database
// must not be open.
func (s *DuckDB) restoreCopy() (bool, error) {
	if _, err := os.Stat(s.path + preCheckpoint); errors.Is(err, os.ErrNotExist) {
		return false, s.dropCopy()
	}
	wal := s.path + preCheckpoint + ".wal"
	if fi, err := os.Stat(wal); err == nil && fi.Size() == 0 {
		// There was no log: the file alone is the state.
		if err := os.Remove(s.path + ".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if err := os.Remove(wal); err != nil {
			return false, err
		}
	} else if err := os.Rename(wal, s.path+".wal"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	for _, f := range walFiles(s.path)[1:] {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	if err := os.Rename(s.path+preCheckpoint, s.path); err != nil {
		return false, err
	}
	return true, syncDir(s.dir)
}

// maybeCheckpoint checkpoints the writer's connection once the
// write-ahead log has grown past checkpointWAL. A checkpoint that fails is
// logged and left to the next write; one that leaves DuckDB unusable
// closes the database and puts the copy back, for the next write to open.
func (s *DuckDB) maybeCheckpoint(ctx context.Context) {
	fi, err := os.Stat(s.path + ".wal")
	if err != nil || fi.Size() < checkpointWAL {
		return
	}
	err = s.checkpoint(context.WithoutCancel(ctx), s.w)
	if err == nil {
		return
	}
	s.log.Warn("embedded postgres: checkpoint of the stream store failed; the write-ahead log keeps every write", slog.String("path", s.path), slog.Any("err", err))
	if isFatal(err) {
		if cerr := s.closeDB(err); cerr != nil {
			s.log.Warn("embedded postgres: close after a failed checkpoint", slog.Any("err", cerr))
		}
		if _, rerr := s.restoreCopy(); rerr != nil {
			s.log.Error("embedded postgres: restoring the copy from before the failed checkpoint", slog.String("path", s.path), slog.Any("err", rerr))
		}
		return
	}
	if derr := s.dropCopy(); derr != nil {
		s.log.Warn("embedded postgres: removing the copy from before a checkpoint", slog.Any("err", derr))
	}
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
