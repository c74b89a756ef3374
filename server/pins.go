package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"

	"pinpipe/pin"
)

// handlePostPins accepts one pin, a JSON array of pins or NDJSON. The whole
// request is validated before anything is produced; 202 means Kafka
// acknowledged every record.
func (s *Server) handlePostPins(w http.ResponseWriter, r *http.Request) {
	if err := checkContentType(r, pinTypes); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, r, pin.Errorf(pin.ETOOLARGE,
				"The request body is larger than %d bytes (PINPIPE_MAX_BODY_BYTES). Split the pins into smaller requests; `pinpipe load` does this for you.", s.MaxBodyBytes))
			return
		}
		s.writeError(w, r, s.readError(err))
		return
	}
	recs, counts, err := pin.Limits{MaxFieldBytes: s.MaxFieldBytes}.ParseRequestCounts(body, isNDJSON(r.Header.Get("Content-Type")))
	if err != nil {
		s.Producer.Rejected(counts)
		s.writeError(w, r, err)
		return
	}
	if err := s.Producer.Produce(r.Context(), recs); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeAccepted(w, len(recs))
}

// writeAccepted answers 202 {"accepted":n}, the bytes writeJSON writes for
// it, without the encoder's reflection: it is the reply to every pin.
func writeAccepted(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	var buf [32]byte
	b := strconv.AppendInt(append(buf[:0], `{"accepted":`...), int64(n), 10)
	_, _ = w.Write(append(b, "}\n"...))
}

// isNDJSON reports whether contentType is one of the NDJSON types of
// pinTypes (all but application/json).
func isNDJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt != "application/json" && slices.Contains(pinTypes, mt)
}
