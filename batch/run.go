// Package batch is the batch half of the lambda architecture: it lands the
// topic in the S3 raw zone as Parquet and, once a day, cleans a day of raw
// pins into the curated zone and the Cassandra serving tables.
package batch

import "pinpipe/pin"

// Run is one execution of the daily job; the type is the domain's, so the
// HTTP layer needs nothing of this package to answer it.
type Run = pin.Run

// Run triggers and statuses, named as the batch lane has always named them.
const (
	TriggerSchedule = pin.TriggerSchedule
	TriggerAPI      = pin.TriggerAPI
	TriggerCLI      = pin.TriggerCLI
	TriggerLateData = pin.TriggerLateData
	// TriggerCompleted: see pin.TriggerCompleted.
	TriggerCompleted = pin.TriggerCompleted

	StatusQueued    = pin.RunQueued
	StatusRunning   = pin.RunRunning
	StatusSucceeded = pin.RunSucceeded
	StatusFailed    = pin.RunFailed
)
