package server

import (
	"context"
	"net/http"

	"pinpipe/pin"
	"pinpipe/stream"
)

// StreamService answers the real-time view from Postgres (or its stand-in).
type StreamService interface {
	// Recent returns the n newest cleaned pins, newest first.
	Recent(ctx context.Context, n int) ([]pin.Cleaned, error)
	// Stats returns totals, per-category and per-minute counts, lag and
	// freshness.
	Stats(ctx context.Context) (stream.Stats, error)
}

var errStreamOff = pin.Errorf(pin.EUNAVAILABLE, "The stream lane is not running in this process.")

func (s *Server) handleStreamRecent(w http.ResponseWriter, r *http.Request) {
	if s.Stream == nil {
		s.writeError(w, r, errStreamOff)
		return
	}
	n, err := queryInt(r, "n", 20, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pins, err := s.Stream.Recent(r.Context(), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if pins == nil {
		pins = []pin.Cleaned{}
	}
	writeJSON(w, http.StatusOK, pins)
}

func (s *Server) handleStreamStats(w http.ResponseWriter, r *http.Request) {
	if s.Stream == nil {
		s.writeError(w, r, errStreamOff)
		return
	}
	st, err := s.Stream.Stats(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
