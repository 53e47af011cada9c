package wave

import (
	"time"

	"github.com/ferry-migrate/ferry"
)

// windowPeriod is the open period of cutover windows (the root's windows
// grammar, e.g. "Sat 22:00-04:00" or "2026-12-24 18:00-23:00") that holds
// now or comes next.
func windowPeriod(spec string, now time.Time) (time.Time, time.Time, error) {
	s, err := ferry.ParseSchedule(spec, time.UTC)
	if err != nil {
		return time.Time{}, time.Time{}, ferry.Errorf(ferry.EINVALID, "cutoverWindows: %v", err)
	}
	if err := s.CheckFuture(now); err != nil {
		return time.Time{}, time.Time{}, ferry.Errorf(ferry.EINVALID, "cutoverWindows: %v", err)
	}
	p, ok := s.OpenPeriod(now)
	if !ok {
		return time.Time{}, time.Time{}, ferry.Errorf(ferry.EINVALID, "cutoverWindows %q never open after now", spec)
	}
	start := p.Start
	if start.Before(now) {
		start = now
	}
	return start.UTC(), p.End.UTC(), nil
}
