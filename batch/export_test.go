package batch

import (
	"io"
	"time"
)

// SetStaleRecheck sets how often s's Serve looks again at unfinished runs
// whose day a live run held, so tests need not wait DayLockTTL.
func SetStaleRecheck(s *Service, d time.Duration) { s.staleRecheck = d }

// WriteRejectedOf cleans recs and encodes those that fail cleaning as the
// job writes a rejected object. Returns how many it wrote.
func WriteRejectedOf(w io.Writer, recs []RawRecord) (int, error) {
	_, rejected := cleanRecords(recs)
	return len(rejected), encodeRejected(w, rejected)
}
