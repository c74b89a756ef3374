package batch

import (
	"context"
	"time"
)

// DayCompleteness says whether the raw zone holds the whole of one UTC day.
//
// A day D is complete when, for every partition of the topic, the landing has
// stored every record up to one stamped past the end of D plus the late grace,
// or has caught up to the partition's end offset read after that moment (an
// idle partition). Until then Behind lists the partitions that hold the day
// back.
type DayCompleteness struct {
	Day      string            `json:"day"`      // YYYY-MM-DD
	Complete bool              `json:"complete"` // every partition is past the day's end plus the grace
	Over     bool              `json:"over"`     // the day's end plus the grace has passed
	Behind   []PartitionBehind `json:"behind,omitempty"`
}

// PartitionBehind is one partition that keeps a day from being complete.
type PartitionBehind struct {
	Partition int `json:"partition"`
	// Records is how many records of the partition are not yet in the raw
	// zone (its end offset minus the landing's next offset); 0 when unknown.
	Records int64 `json:"records"`
	// Landed is the Kafka timestamp of the newest record the landing stored
	// of the partition; zero when it stored none.
	Landed time.Time `json:"landed,omitzero"`
	// Behind is how far Landed is from the point the day needs (its end plus
	// the grace), or from now when that point is still ahead.
	Behind time.Duration `json:"behind_ns"`
}

// Completeness reports, for a day, whether the raw zone is complete for it.
// Implementations read shared state (the landing's per-partition checkpoints
// in the lake and the topic's end offsets), so any instance answers the same.
type Completeness interface {
	DayComplete(ctx context.Context, day string, now time.Time) (DayCompleteness, error)
}
