package server

import "time"

// SetTimeouts shortens s's header, body and write time limits, so tests
// can watch them act.
func SetTimeouts(s *Server, header, body, write time.Duration) {
	s.limits = limits{header: header, body: body, write: write}
}
