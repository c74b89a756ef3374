package cmd

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// meter is a progress bar whose count is what was done and whose rate is
// that count over the time since the meter was made. (The bar's own rate
// starts its clock at the first drawing, so a bar filled at once showed
// rates such as "504181857 pins/s".)
type meter struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	desc  string
	unit  string
	total int64 // -1 when unknown
	done  int64
	start time.Time
}

// newMeter returns a meter drawing on w, or drawing nothing when quiet.
// total is -1 when unknown (a spinner with the count).
func newMeter(w io.Writer, desc, unit string, total int64, quiet bool) *meter {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionSetVisibility(!quiet),
		progressbar.OptionFullWidth(),
	}
	if !quiet {
		opts = append(opts, progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	}
	return &meter{bar: progressbar.NewOptions64(total, opts...), desc: desc, unit: unit, total: total, start: time.Now()}
}

// add counts n more done.
func (m *meter) add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	m.describe()
	_ = m.bar.Add64(n)
}

// set sets the count done.
func (m *meter) set(done int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = done
	m.describe()
	_ = m.bar.Set64(done)
}

func (m *meter) describe() {
	if secs := time.Since(m.start).Seconds(); secs >= 0.2 {
		m.bar.Describe(fmt.Sprintf("%s · %s %s/s", m.desc, rateText(float64(m.done)/secs), m.unit))
	}
}

// finish ends the bar where it is: full only when everything was done.
func (m *meter) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.describe()
	if m.total > 0 && m.done >= m.total {
		_ = m.bar.Finish()
		return
	}
	_ = m.bar.Exit()
}

// rateText shows a rate with as many digits as it is worth.
func rateText(r float64) string {
	if r < 10 {
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.0f", r)
}
