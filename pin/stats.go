package pin

import "time"

// Stats is the stream lane's real-time view, which GET /stream/stats
// answers and the dashboard polls. ByCategory has the categories with pins
// (Total is their sum). PerMinute always has 60 entries: the minutes (UTC,
// by Kafka record timestamp) from 59 minutes before the current one up to
// the current one, 0 for minutes without pins.
type Stats struct {
	Total      int64            `json:"total"`
	ByCategory map[string]int64 `json:"by_category"`
	PerMinute  []MinuteCount    `json:"per_minute"` // the last hour, oldest first (see above)
	Lag        int64            `json:"lag"`        // records in the topic not yet in the stream store
	Freshness  Freshness        `json:"freshness_seconds"`
}

// MinuteCount is the number of pins accepted in one minute.
type MinuteCount struct {
	Minute time.Time `json:"minute"`
	Pins   int64     `json:"pins"`
}

// Freshness is the time from a pin's acceptance (its Kafka timestamp) to its
// row being committed, over the last 8192 pins this process stored; zeros
// before the first.
type Freshness struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}
