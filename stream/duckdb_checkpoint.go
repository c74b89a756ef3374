package stream

import (
	"context"
	"log/slog"

	"pinpipe/internal/duckfile"
)

// The stand-in runs its own checkpoints, each with a copy of the file to
// put back should the process be killed inside it (package duckfile): at
// open, at close, and after a write once the write-ahead log has grown past
// duckfile.LogLimit. The writer's lock, wmu, keeps writes out meanwhile.

// duckConfig is run on each new connection.
const duckConfig = `SET TimeZone = 'UTC'; ` + duckfile.Settings

// maybeCheckpoint checkpoints the writer's connection once the
// write-ahead log has grown past duckfile.LogLimit. A checkpoint that fails
// is logged and left to the next write; one that leaves DuckDB unusable
// closes the database and puts the copy back, for the next write to open.
// Called with wmu held.
func (s *DuckDB) maybeCheckpoint(ctx context.Context) {
	if !duckfile.Due(s.path) {
		return
	}
	err := duckfile.Checkpoint(context.WithoutCancel(ctx), s.w, s.path)
	if err == nil {
		return
	}
	s.log.Warn("embedded postgres: checkpoint of the stream store failed; the write-ahead log keeps every write", slog.String("path", s.path), slog.Any("err", err))
	if duckfile.Fatal(err) {
		if cerr := s.closeDB(err); cerr != nil {
			s.log.Warn("embedded postgres: close after a failed checkpoint", slog.Any("err", cerr))
		}
		s.restoreCopy()
		return
	}
	if derr := duckfile.Drop(s.path); derr != nil {
		s.log.Warn("embedded postgres: removing the copy from before a checkpoint", slog.Any("err", derr))
	}
}

// restoreCopy puts back the copy from before a checkpoint that failed,
// once the database is closed, and logs it when that fails.
func (s *DuckDB) restoreCopy() {
	if _, err := duckfile.Restore(s.path); err != nil {
		s.log.Error("embedded postgres: putting back the copy from before a failed checkpoint", slog.String("path", s.path), slog.Any("err", err))
	}
}
