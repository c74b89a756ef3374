package server

import (
	"net/http"

	"pinpipe/pin"
)

// Querier runs read-only SQL over the lake. The query lane replaces this
// file's handler with the real one.
type Querier interface{}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, pin.Errorf(pin.EUNAVAILABLE, "The query lane is not running in this process."))
}
