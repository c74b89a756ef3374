package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"syscall"

	"pinpipe/pin"
)

// codes maps application error codes to HTTP statuses, in one place.
var codes = map[string]int{
	pin.ECONFLICT:     http.StatusConflict,
	pin.EFORBIDDEN:    http.StatusForbidden,
	pin.EINTERNAL:     http.StatusInternalServerError,
	pin.EINVALID:      http.StatusBadRequest,
	pin.ENOTFOUND:     http.StatusNotFound,
	pin.ETIMEOUT:      http.StatusGatewayTimeout,
	pin.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	pin.ETOOMANY:      http.StatusTooManyRequests,
	pin.EUNAUTHORIZED: http.StatusUnauthorized,
	pin.EUNAVAILABLE:  http.StatusServiceUnavailable,
	eMisdirected:      http.StatusMisdirectedRequest,
	eMediaType:        http.StatusUnsupportedMediaType,
	eSlowBody:         http.StatusRequestTimeout,
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each invalid record of a POST /pins request.
	Errors any `json:"errors,omitempty"`
}

// statusClientClosed is what the request metrics count for a request
// whose client went away before its answer (nginx's 499): no answer is
// sent, and it is not a server error.
const statusClientClosed = 499

// status returns the HTTP status of err's application code; 500 for an
// error without one.
func status(err error) int {
	if st, ok := codes[pin.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// clientGone reports whether err comes of r's client going away: r's
// context was canceled (the connection closed), or the connection broke
// under a read or write. A body that missed its deadline also cancels the
// context, but that client is still there and gets its 408.
func clientGone(r *http.Request, err error) bool {
	if pin.ErrorCode(err) == eSlowBody {
		return false
	}
	return errors.Is(r.Context().Err(), context.Canceled) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// writeError answers err as application/problem+json. An internal error
// shows the user only "Internal error." and is logged in full. When the
// client went away (see clientGone) it writes nothing, logs at debug
// level, and the request metrics count statusClientClosed.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if clientGone(r, err) {
		s.log.Debug("request ended: the client went away", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		if sw, ok := w.(*statusWriter); ok && !sw.wrote {
			sw.status = statusClientClosed
		}
		return
	}
	code, status, detail := pin.ErrorCode(err), status(err), pin.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		// Whatever the error says stays in the log: it may name files,
		// hosts or queries.
		s.log.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		code, detail = pin.EINTERNAL, "Internal error."
	}
	p := Problem{
		Type:     "https://pinpipe.dev/problems/" + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
	}
	if e := (*pin.Error)(nil); errors.As(err, &e) && status != http.StatusInternalServerError {
		p.Errors = e.Detail
	}
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusRequestTimeout:
		// The rest of a late body may still come; do not read it as the
		// next request.
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
