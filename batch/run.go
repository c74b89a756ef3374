// Package batch is the batch half of the lambda architecture: it lands the
// topic in the S3 raw zone as Parquet and, once a day, cleans a day of raw
// pins into the curated zone and the Cassandra serving tables.
package batch

import "time"

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
)

// Run statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Run is one execution of the daily job for one day (dt).
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
}
