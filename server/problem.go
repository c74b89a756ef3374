package server

import (
	"encoding/json"
	"log/slog"
	"net/http"

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

// writeError answers err as application/problem+json. An internal error
// shows the user only "Internal error." and is logged in full.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := pin.ErrorCode(err)
	status, ok := codes[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == pin.EINTERNAL {
		s.log.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	p := Problem{
		Type:     "https://pinpipe.dev/problems/" + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   pin.ErrorMessage(err),
		Instance: r.URL.Path,
	}
	if e, ok := err.(*pin.Error); ok {
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
