package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"pinpipe/pin"
)

// BatchService runs the daily job and keeps its history.
type BatchService interface {
	// StartRun queues a run for date (YYYY-MM-DD). Returns ECONFLICT when a
	// run for that date is queued or running, EINVALID for a bad date.
	StartRun(ctx context.Context, date, trigger string) (pin.Run, error)
	// Runs returns up to limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]pin.Run, error)
	// Run returns one run. Returns ENOTFOUND when there is none with id.
	Run(ctx context.Context, id string) (pin.Run, error)
	// StartBackfill queues one run per day from..to and returns them.
	// Returns EINVALID for a bad or too long range, ENOTFOUND when no day
	// of it can run, ETOOMANY while another backfill runs.
	StartBackfill(ctx context.Context, from, to, trigger string) (pin.Backfill, error)
	// Days returns the newest n days with raw data, newest first, each with
	// its completeness, whether it is stale and its newest run.
	Days(ctx context.Context, n int) ([]pin.BatchDay, error)
}

// Serving answers the serving reads from Cassandra (or its stand-in).
type Serving interface {
	// Pin returns the cleaned pin. Returns ENOTFOUND when absent.
	Pin(ctx context.Context, uniqueID string) (pin.Cleaned, error)
	// TopByCategory returns up to n pins of category on date, by
	// follower_count descending; an empty slice when there are none.
	TopByCategory(ctx context.Context, category, date string, n int) ([]pin.Cleaned, error)
}

var errBatchOff = pin.Errorf(pin.EUNAVAILABLE, "The batch lane is not running in this process.")

func (s *Server) handleStartRun(w http.ResponseWriter, r *http.Request) {
	if s.Batch == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	if err := checkContentType(r, jsonTypes); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Date string `json:"date"`
		From string `json:"from"`
		To   string `json:"to"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		s.writeError(w, r, s.readError(err))
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeError(w, r, pin.Errorf(pin.EINVALID, `The body must be a JSON object such as {"date":"2026-11-24"}: %v.`, err))
			return
		}
	}
	if req.From != "" || req.To != "" {
		s.startBackfill(w, r, req.Date, req.From, req.To)
		return
	}
	if req.Date == "" {
		req.Date = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	run, err := s.Batch.StartRun(r.Context(), req.Date, pin.TriggerAPI)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/batch/runs/"+run.ID)
	writeJSON(w, http.StatusAccepted, run)
}

// startBackfill answers a POST /batch/runs that names a range.
func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request, date, from, to string) {
	if date != "" || from == "" || to == "" {
		s.writeError(w, r, pin.Errorf(pin.EINVALID, `Give either "date" for one day or both "from" and "to" for a range, such as {"from":"2026-11-01","to":"2026-11-07"}.`))
		return
	}
	b, err := s.Batch.StartBackfill(r.Context(), from, to, pin.TriggerAPI)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

func (s *Server) handleListDays(w http.ResponseWriter, r *http.Request) {
	if s.Batch == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	n, err := queryInt(r, "n", 7, 90)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	days, err := s.Batch.Days(r.Context(), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if days == nil {
		days = []pin.BatchDay{}
	}
	writeJSON(w, http.StatusOK, days)
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	if s.Batch == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	runs, err := s.Batch.Runs(r.Context(), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if runs == nil {
		runs = []pin.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	if s.Batch == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	run, err := s.Batch.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *Server) handleGetPin(w http.ResponseWriter, r *http.Request) {
	if s.Serving == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	p, err := s.Serving.Pin(r.Context(), r.PathValue("unique_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleTopByCategory(w http.ResponseWriter, r *http.Request) {
	if s.Serving == nil {
		s.writeError(w, r, errBatchOff)
		return
	}
	n, err := queryInt(r, "n", 10, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	date := r.URL.Query().Get("date")
	if date == "" {
		date = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, date); err != nil {
		s.writeError(w, r, pin.Errorf(pin.EINVALID, "Query parameter \"date\" must be a day as YYYY-MM-DD, got %q.", date))
		return
	}
	pins, err := s.Serving.TopByCategory(r.Context(), r.PathValue("category"), date, n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if pins == nil {
		pins = []pin.Cleaned{}
	}
	// The day read, said also when the client left it to pinpipe (yesterday, UTC).
	w.Header().Set("X-Pinpipe-Date", date)
	writeJSON(w, http.StatusOK, pins)
}
