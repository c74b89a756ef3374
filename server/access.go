package server

import (
	"log/slog"
	"net/http"
	"time"
)

// maxRequestID is the longest X-Request-Id the access log repeats; a longer
// or non-printable one is left out, so a client cannot flood or forge lines.
const maxRequestID = 128

// accessLog writes one line per request once next has answered: method,
// route pattern, path, status, body bytes, duration, remote address and
// the X-Request-Id a proxy or client sent. It never logs the query string,
// the body or any header but X-Request-Id, so neither SQL nor the API key
// reach the log.
func (s *Server) accessLog(next func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		aw := &accessWriter{ResponseWriter: w}
		next(aw, r)
		status := aw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", r.Pattern), // "" when no route matched
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", aw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		}
		if id := requestID(r); id != "" {
			attrs = append(attrs, slog.String("request_id", id))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
	}
}

// requestID returns r's X-Request-Id when it is at most maxRequestID
// printable ASCII characters, else "".
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if len(id) > maxRequestID {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return ""
		}
	}
	return id
}

// accessWriter remembers the status and counts the body bytes written.
type accessWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streamed responses through; Unwrap lets
// http.ResponseController reach the connection's writer.
func (w *accessWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
