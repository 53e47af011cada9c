package throttle

import (
	"time"

	"github.com/ferry-migrate/ferry"
)

// Schedule is a set of transfer windows in one time zone (ferry.Schedule):
// outside every window the transfer is paused.
type Schedule = ferry.Schedule

// Window is one entry of a Schedule (ferry.Window).
type Window = ferry.Window

// ParseWindows reads transfer windows (ferry.ParseWindows), e.g.
// "Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", in loc
// (time.Local when nil: the agent's own clock).
func ParseWindows(s string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	return ferry.ParseSchedule(s, loc)
}
