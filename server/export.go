package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"pinpipe/pin"
)

// Defaults of the export limits the server applies itself.
const (
	DefaultExportMaxBytes = 1 << 30
	DefaultExportTimeout  = 5 * time.Minute
)

// handleExport answers POST /query/export {"sql", "format"} and
// GET /query/export?sql=…&format=csv|jsonl|parquet with the whole answer
// of the query as a file to download. The file is written to a temporary
// file first, bounded by ExportMaxBytes, and sent with its Content-Length
// only once complete: a limit hit, an error or the time running out is a
// problem+json before any byte of the file, and a client that gets fewer
// bytes than Content-Length said knows its copy is cut.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	if s.Query == nil {
		s.writeError(w, r, errQueryOff)
		return
	}
	req, err := s.readQueryRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Format == "" {
		req.Format = "csv"
	}
	format, ok := exportFormats[req.Format]
	if !ok {
		s.writeError(w, r, pin.Errorf(pin.EINVALID, `format must be csv, jsonl or parquet, got %q.`, req.Format))
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.ExportTimeout + s.limits.write))
	f, done, err := s.exportFile()
	if err != nil {
		s.log.Error("export: temporary file", slog.Any("err", err))
		s.writeError(w, r, pin.Errorf(pin.EUNAVAILABLE, "The export could not get a temporary file; retry later."))
		return
	}
	defer done()
	lw := &limitWriter{w: f, max: s.ExportMaxBytes}
	enc := format.open(lw)
	err = s.Query.Export(r.Context(), req.SQL, enc)
	rows, cerr := enc.close()
	if err == nil {
		err = cerr
	}
	if lw.over {
		err = pin.Errorf(pin.ETOOLARGE,
			"The %s file would be larger than %d bytes, the most one export may have (PINPIPE_EXPORT_MAX_BYTES): filter on dt, select fewer columns, or export it in parts.", req.Format, s.ExportMaxBytes)
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.writeError(w, r, err)
		}
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.writeError(w, r, fmt.Errorf("export: rewind: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", format.contentType)
	h.Set("Content-Length", strconv.FormatInt(lw.n, 10))
	h.Set("Content-Disposition", `attachment; filename="pinpipe-`+time.Now().UTC().Format("20060102T150405Z")+"."+format.ext+`"`)
	h.Set("X-Pinpipe-Row-Count", strconv.Itoa(rows))
	h.Set("Cache-Control", "no-store")
	// Sending gets its own time: the export may have used up its own.
	_ = rc.SetWriteDeadline(time.Now().Add(s.ExportTimeout + s.limits.write))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, f); err != nil {
		s.log.Info("export: the client did not take the whole file", slog.Any("err", err))
	}
}

// exportFile returns a new temporary file in ExportDir (the system's
// temporary directory when empty), already unlinked where the system
// allows it, so nothing is left behind whatever happens to the process,
// and the function that closes and, where it is still there, removes it.
func (s *Server) exportFile() (*os.File, func(), error) {
	if s.ExportDir != "" {
		if err := os.MkdirAll(s.ExportDir, 0o700); err != nil {
			return nil, nil, err
		}
	}
	f, err := os.CreateTemp(s.ExportDir, "pinpipe-export-*")
	if err != nil {
		return nil, nil, err
	}
	name := f.Name()
	unlinked := os.Remove(name) == nil // Windows keeps an open file
	return f, func() {
		f.Close()
		if !unlinked {
			os.Remove(name)
		}
	}, nil
}

// limitWriter writes to w until max bytes, then refuses: over says a
// write was refused.
type limitWriter struct {
	w    io.Writer
	max  int64
	n    int64
	over bool
}

var errExportFull = errors.New("export: the file reached PINPIPE_EXPORT_MAX_BYTES")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.max {
		l.over = true
		return 0, errExportFull
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}
