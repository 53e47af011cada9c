package wave

import (
	"testing"
	"time"
)

// TestWindowPeriod: cutover windows in the root grammar resolve to the
// opening that comes next, or to the rest of the one open now.
func TestWindowPeriod(t *testing.T) {
	wed := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // a Wednesday
	for _, c := range []struct {
		spec       string
		now        time.Time
		start, end time.Time
	}{
		{"Sat 22:00-04:00", wed, time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC), time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)},
		{"Wed 09:00-12:00", wed, wed, time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)},
		{"2026-12-24 18:00-23:00", wed, time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC), time.Date(2026, 12, 24, 23, 0, 0, 0, time.UTC)},
	} {
		start, end, err := windowPeriod(c.spec, c.now)
		if err != nil || !start.Equal(c.start) || !end.Equal(c.end) {
			t.Errorf("%q at %v: %v – %v, %v; want %v – %v", c.spec, c.now, start, end, err, c.start, c.end)
		}
	}
	if _, _, err := windowPeriod("2026-11-01 18:00-23:00", wed); err == nil {
		t.Error("a dated window that closed before now was accepted")
	}
}
