package server

import (
	"context"
	"net/http"
	"unicode/utf8"

	"pinpipe/pin"
)

// StreamService answers the real-time view from Postgres (or its stand-in).
type StreamService interface {
	// Recent returns the n newest cleaned pins, newest first.
	Recent(ctx context.Context, n int) ([]pin.Cleaned, error)
	// Stats returns totals, per-category and per-minute counts, lag and
	// freshness.
	Stats(ctx context.Context) (pin.Stats, error)
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
	maxChars, err := queryInt(r, "max_chars", 0, 1<<20)
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
	if maxChars > 0 {
		clipped := make([]pin.Cleaned, len(pins))
		for i, p := range pins {
			clipped[i] = clipPin(p, maxChars)
		}
		pins = clipped
	}
	writeJSON(w, http.StatusOK, pins)
}

// clipPin returns p with every text longer than n characters cut to n and
// ended with "…", and only as many tags as fit in n characters (at least
// one); a list view (the dashboard's newest pins) needs no more, and a
// pin's fields may each be tens of KiB.
func clipPin(p pin.Cleaned, n int) pin.Cleaned {
	for _, f := range []**string{&p.Title, &p.Description, &p.PosterName, &p.TagList, &p.IsImageOrVideo, &p.ImageSrc, &p.SaveLocation} {
		if *f != nil {
			v := clip(**f, n)
			*f = &v
		}
	}
	p.Category, p.UniqueID = clip(p.Category, n), clip(p.UniqueID, n)
	var tags []string
	used := 0
	for _, t := range p.Tags {
		if len(tags) > 0 && used+utf8.RuneCountInString(t) > n {
			break
		}
		t = clip(t, n)
		used += utf8.RuneCountInString(t)
		tags = append(tags, t)
	}
	if p.Tags != nil {
		p.Tags = tags
	}
	return p
}

// clip returns s cut to n characters and ended with "…" when longer.
func clip(s string, n int) string {
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n {
			break
		}
		count++
	}
	return s[:i] + "…"
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
