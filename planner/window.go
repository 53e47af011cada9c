package planner

// Transfer and cutover windows are read in the shared vocabulary
// (ferry.ParseWindows, ferry.NewSchedule): the same spellings, the same
// rule on overlaps and the same wall-clock times across clock changes as
// the engine's throttle and the API. This file only names the windows by
// their plan.yaml fields and asks the schedules what the plan needs.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
)

// refWeek is the Monday of the week nominal figures are taken over (the
// average rate, the shortest cutover window): in UTC, so no clock change
// makes a window an hour longer or shorter.
var refWeek = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

const week = 7 * 24 * time.Hour

// location is the zone of start and every window (UTC when unset or bad;
// Validate reports a bad one).
func (c Constraints) location() *time.Location {
	loc, err := time.LoadLocation(orStr(c.Timezone, "UTC"))
	if err != nil {
		return time.UTC
	}
	return loc
}

// link is the replication link: the transfer windows (nil: around the
// clock) with every rate capped at the bandwidth, as the engine caps a
// window's rate at the agent's.
type link struct {
	sched *ferry.Schedule
	base  ferry.Rate
}

// windows parses one field's windows, each named by the field.
func windows(field string, spec string, p *Problems) []ferry.Window {
	ws, err := ferry.ParseWindows(spec)
	if err != nil {
		p.addf("%s %q: %v", field, spec, err)
		return nil
	}
	for k := range ws {
		if ws[k].Name == "" {
			ws[k].Name = fmt.Sprintf("%s %q", field, spec)
		} else {
			ws[k].Name = field + " " + ws[k].Name
		}
	}
	return ws
}

// makeSchedule makes the schedule, adding its problems (one a line) to p.
func makeSchedule(loc *time.Location, ws []ferry.Window, p *Problems) *ferry.Schedule {
	s, err := ferry.NewSchedule(loc, ws)
	if err != nil {
		*p = append(*p, strings.Split(err.Error(), "\n")...)
		return nil
	}
	return s
}

// transferSchedule builds the replication link. With no windows the link
// runs around the clock at Bandwidth; a window without a rate runs at
// Bandwidth.
func (c Constraints) transferSchedule() (link, error) {
	l := link{base: ferry.RateFromBits(float64(c.Bandwidth))}
	if len(c.TransferWindows) == 0 {
		return l, nil
	}
	var p Problems
	var all []ferry.Window
	for i, w := range c.TransferWindows {
		ws := windows(fmt.Sprintf("transfer_windows[%d].when", i), w.When, &p)
		for k := range ws {
			ws[k].Name = strings.Replace(ws[k].Name, ".when", "", 1)
			if w.Rate == nil {
				continue
			}
			if !ws[k].Rate.IsUnlimited() {
				p.addf("transfer_windows[%d]: a rate in when (%s) and in rate (%s): give one", i, ws[k].Rate, ferry.RateFromBits(float64(*w.Rate)))
			}
			ws[k].Rate = ferry.RateFromBits(float64(*w.Rate))
		}
		all = append(all, ws...)
	}
	if len(p) > 0 {
		return link{}, p
	}
	if l.sched = makeSchedule(c.location(), all, &p); l.sched == nil {
		return link{}, p
	}
	paused := true
	for _, w := range all {
		paused = paused && w.Rate == 0
	}
	if paused {
		p.addf("transfer_windows: every window has rate 0, so replication never runs")
	}
	return l, p.err()
}

// cutoverSchedule builds the cutover windows' schedule (nil without any).
func (c Constraints) cutoverSchedule() (*ferry.Schedule, error) {
	if len(c.CutoverWindows) == 0 {
		return nil, nil
	}
	var p Problems
	var all []ferry.Window
	for i, w := range c.CutoverWindows {
		field := fmt.Sprintf("cutover_windows[%d]", i)
		ws := windows(field, w, &p)
		for _, x := range ws {
			if !x.Rate.IsUnlimited() {
				p.addf("%s %q: a cutover window takes no rate (transfer windows do)", field, w)
				break
			}
		}
		all = append(all, ws...)
	}
	if len(p) > 0 {
		return nil, p
	}
	s := makeSchedule(c.location(), all, &p)
	return s, p.err()
}

// finish returns when bits bits have crossed the link starting at t,
// counting only time inside windows at each window's rate. ok is false
// when the link never carries them.
func (l link) finish(t time.Time, bits float64) (time.Time, bool) {
	return l.sched.Finish(t, bits/8, l.base)
}

// shortestOpening is the shortest open stretch of s in a nominal week (0:
// none, or s never closes).
func shortestOpening(s *ferry.Schedule) time.Duration {
	u := s.In(time.UTC)
	var best time.Duration
	for t := refWeek; ; {
		p, ok := u.NextOpening(t)
		if !ok || !p.Start.Before(refWeek.Add(week)) || p.End.IsZero() {
			return best
		}
		if d := p.End.Sub(p.Start); best == 0 || d < best {
			best = d
		}
		t = p.End
	}
}

// AverageRate is the replication rate averaged over a week of transfer
// windows, in bits/s: what a transfer spanning many weeks effectively gets.
func (c Constraints) AverageRate() (float64, error) {
	if c.Bandwidth <= 0 {
		return 0, Problems{"bandwidth: must be above zero"}
	}
	l, err := c.transferSchedule()
	if err != nil {
		return 0, err
	}
	if l.sched == nil {
		return float64(c.Bandwidth), nil
	}
	bytes := l.sched.In(time.UTC).BytesBetween(refWeek, refWeek.Add(week), l.base)
	return bytes * 8 / week.Seconds(), nil
}

// problemsOf adds err's problems to p.
func problemsOf(err error, p *Problems) {
	if err == nil {
		return
	}
	var pp Problems
	if errors.As(err, &pp) {
		*p = append(*p, pp...)
	} else {
		p.addf("%v", err)
	}
}
