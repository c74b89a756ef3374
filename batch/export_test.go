package batch

import "time"

// SetStaleRecheck sets how often s's Serve looks again at unfinished runs
// whose day a live run held, so tests need not wait DayLockTTL.
func SetStaleRecheck(s *Service, d time.Duration) { s.staleRecheck = d }
