package pin

import "time"

// BatchDay is the batch lane's view of one day, as GET /batch/days answers
// it: whether its raw zone is whole, whether the curated zone is behind
// it, and its newest run.
type BatchDay struct {
	Day string `json:"day"` // YYYY-MM-DD
	// Over is true once the day's end plus the late grace has passed.
	Over bool `json:"over"`
	// Complete is true once the landing stored every record of the day.
	Complete bool `json:"complete"`
	// Behind lists the partitions that keep the day from being complete.
	Behind []PartitionBehind `json:"behind"`
	// CompletenessError says why completeness could not be told; "" when
	// it could.
	CompletenessError string `json:"completeness_error,omitempty"`
	// Stale is true when the raw zone gained records after the day's
	// newest committed run: a late-data run will bring them in.
	Stale bool `json:"stale"`
	// Expired is true when raw-zone retention removed the day's raw
	// records (its curated day stays; it can no longer be re-run).
	Expired bool `json:"expired"`
	// RawObjects is how many raw-zone objects the day holds.
	RawObjects int `json:"raw_objects"`
	// CommittedRun is the ID of the run the curated zone holds the day
	// from; "" when no run committed it.
	CommittedRun string `json:"committed_run"`
	// Waiting is true while this instance's scheduled run of the day
	// waits for it to be complete.
	Waiting bool `json:"waiting"`
	// Run is the day's newest run in the history; nil when none.
	Run *Run `json:"run"`
}

// PartitionBehind is one partition that keeps a day from being complete.
type PartitionBehind struct {
	Partition int `json:"partition"`
	// Records not yet in the raw zone; 0 when unknown.
	Records int64 `json:"records"`
	// Landed is the timestamp of the newest record the landing stored of
	// the partition; nil when it stored none.
	Landed *time.Time `json:"landed"`
	// BehindSeconds is how far Landed is from the point the day needs.
	BehindSeconds float64 `json:"behind_seconds"`
}

// Backfill is a range of days run one run per day, as POST /batch/runs
// with "from" and "to" answers it.
type Backfill struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Runs are the days' runs in date order: queued when the answer is
	// given, finished when `pinpipe batch --from --to` returns.
	Runs []Run `json:"runs"`
	// Skipped are the days of the range that got no run, with why.
	Skipped []SkippedDay `json:"skipped"`
}

// SkippedDay is a day of a backfill that got no run.
type SkippedDay struct {
	Date   string `json:"date"`
	Reason string `json:"reason"`
}
