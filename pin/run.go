package pin

import "time"

// Run triggers: what started a run of the daily batch job.
const (
	TriggerSchedule = "schedule" // the daily schedule, once the day was complete
	TriggerAPI      = "api"      // POST /batch/runs (one day or a backfill's day)
	TriggerCLI      = "cli"      // pinpipe batch (one day or a backfill's day)
	// TriggerLateData is a re-run of a curated day whose raw zone gained
	// records after its newest committed run (the day was stale).
	TriggerLateData = "late-data"
	// TriggerCompleted is the run of a day whose scheduled run did not
	// happen (it gave up waiting for the day to be complete, or no
	// instance was up), started once the day is complete.
	TriggerCompleted = "completed"
)

// Run statuses. A run is queued until it holds its day, running until the
// job ends, then succeeded or failed; nothing follows those two.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Run is one execution of the daily batch job for one day (dt), as the run
// history keeps it and GET /batch/runs answers it. StartedAt is nil until
// the run holds its day, FinishedAt until it ended; Error is "" unless it
// failed. Complete is whether the day was over when the run started: a run
// of a day not over yet holds that day's pins only up to its start.
type Run struct {
	ID           string     `json:"id"`
	Date         string     `json:"date"`
	Trigger      string     `json:"trigger"`
	Status       string     `json:"status"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	RowsIn       int64      `json:"rows_in"`
	RowsOut      int64      `json:"rows_out"`
	RowsRejected int64      `json:"rows_rejected"`
	Error        string     `json:"error"`
	Complete     bool       `json:"complete"`
}
