package planner

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

const minutesPerWeek = 7 * 24 * 60

// interval is a stretch of the week in minutes from Monday 00:00, with a
// rate in bits/s. end may exceed minutesPerWeek only before normalisation.
type interval struct {
	start, end int
	rate       float64
}

var dayNames = map[string]int{"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

// parseWindow reads "Sat 22:00-04:00", "Mon-Fri 19:00-07:00", "Mon,Wed 01:00-05:00",
// "daily 00:00-24:00", "weekdays ..." or "weekends ...". A window whose end is
// not after its start runs past midnight into the next day. The result is
// split at the week boundary and sorted.
func parseWindow(spec string) ([]interval, error) {
	ops, err := openings(spec)
	if err != nil {
		return nil, err
	}
	var out []interval
	for _, o := range ops {
		s, e := o.start, o.start+o.length
		if e > minutesPerWeek {
			out = append(out, interval{s, minutesPerWeek, 0}, interval{0, e - minutesPerWeek, 0})
		} else {
			out = append(out, interval{s, e, 0})
		}
	}
	slices.SortFunc(out, func(a, b interval) int { return a.start - b.start })
	return out, nil
}

// opening is one weekly occurrence of a window: start minute of the week and length.
type opening struct{ start, length int }

// openings parses a window spec into its weekly openings, unsplit, which is
// what cutover slots need (a Sun 22:00-02:00 slot is one slot).
func openings(spec string) ([]opening, error) {
	f := strings.Fields(spec)
	if len(f) != 2 {
		return nil, errors.New(`want "<days> HH:MM-HH:MM", e.g. "Sat 22:00-04:00"`)
	}
	days, err := parseDays(strings.ToLower(f[0]))
	if err != nil {
		return nil, err
	}
	se := strings.Split(f[1], "-")
	if len(se) != 2 {
		return nil, fmt.Errorf("%q is not HH:MM-HH:MM", f[1])
	}
	start, err := parseClock(se[0])
	if err != nil {
		return nil, err
	}
	end, err := parseClock(se[1])
	if err != nil {
		return nil, err
	}
	if start == end {
		return nil, errors.New("opens and closes at the same minute, so it never opens (use 00:00-24:00 for a whole day)")
	}
	if start == 24*60 {
		return nil, errors.New("cannot start at 24:00")
	}
	if end <= start {
		end += 24 * 60
	}
	out := make([]opening, 0, len(days))
	for _, d := range days {
		out = append(out, opening{d*24*60 + start, end - start})
	}
	slices.SortFunc(out, func(a, b opening) int { return a.start - b.start })
	return out, nil
}

func parseDays(s string) ([]int, error) {
	switch s {
	case "daily", "everyday", "mon-sun":
		return []int{0, 1, 2, 3, 4, 5, 6}, nil
	case "weekdays":
		return []int{0, 1, 2, 3, 4}, nil
	case "weekends":
		return []int{5, 6}, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		if a, b, ok := strings.Cut(part, "-"); ok {
			da, oka := dayNames[a[:min(3, len(a))]]
			db, okb := dayNames[b[:min(3, len(b))]]
			if !oka || !okb {
				return nil, fmt.Errorf("%q is not a day range like Mon-Fri", part)
			}
			for d := da; ; d = (d + 1) % 7 {
				out = append(out, d)
				if d == db {
					break
				}
			}
			continue
		}
		d, ok := dayNames[part[:min(3, len(part))]]
		if !ok || len(part) < 3 {
			return nil, fmt.Errorf("%q is not a day (Mon..Sun, daily, weekdays, weekends)", part)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return hh*60 + mm, nil
}

// schedule is a weekly pattern of non-overlapping intervals, sorted.
type schedule struct {
	iv       []interval
	weekBits float64 // bits one full week carries; 0 for cutover schedules
}

// transferSchedule builds the weekly replication schedule. With no windows
// the link runs around the clock at Bandwidth.
func (c Constraints) transferSchedule() (schedule, error) {
	if len(c.TransferWindows) == 0 {
		return newSchedule([]interval{{0, minutesPerWeek, float64(c.Bandwidth)}}), nil
	}
	var p Problems
	var all []interval
	owner := map[int]int{}
	for i, w := range c.TransferWindows {
		iv, err := parseWindow(w.When)
		if err != nil {
			p.addf("transfer_windows[%d].when %q: %v", i, w.When, err)
			continue
		}
		rate := float64(c.Bandwidth)
		if w.Rate != nil {
			rate = float64(*w.Rate)
			if rate < 0 {
				p.addf("transfer_windows[%d].rate: negative", i)
			}
		}
		for _, x := range iv {
			x.rate = rate
			owner[len(all)] = i
			all = append(all, x)
		}
	}
	if len(p) > 0 {
		return schedule{}, p
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return all[a].start - all[b].start })
	for k := 1; k < len(idx); k++ {
		a, b := all[idx[k-1]], all[idx[k]]
		if b.start < a.end && owner[idx[k-1]] != owner[idx[k]] {
			p.addf("transfer_windows[%d] %q overlaps transfer_windows[%d] %q", owner[idx[k]], c.TransferWindows[owner[idx[k]]].When, owner[idx[k-1]], c.TransferWindows[owner[idx[k-1]]].When)
		}
	}
	s := newSchedule(all)
	if len(p) == 0 && s.weekBits <= 0 {
		p.addf("transfer_windows: every window has rate 0, so replication never runs")
	}
	return s, p.err()
}

func newSchedule(iv []interval) schedule {
	iv = slices.Clone(iv)
	slices.SortFunc(iv, func(a, b interval) int { return a.start - b.start })
	// Merge touching or overlapping intervals of equal rate (one window's own days).
	var out []interval
	for _, x := range iv {
		if n := len(out); n > 0 && x.start <= out[n-1].end && x.rate == out[n-1].rate {
			out[n-1].end = max(out[n-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	s := schedule{iv: out}
	for _, x := range out {
		s.weekBits += x.rate * float64(x.end-x.start) * 60
	}
	return s
}

// weekStart returns the Monday 00:00 at or before t, in t's location.
func weekStart(t time.Time) time.Time {
	d := (int(t.Weekday()) + 6) % 7
	y, m, day := t.Date()
	return time.Date(y, m, day-d, 0, 0, 0, 0, t.Location())
}

func at(week time.Time, minute int) time.Time {
	return week.Add(time.Duration(minute) * time.Minute)
}

// finish returns when `bits` bits have crossed the link starting at t,
// counting only time inside windows at each window's rate. Whole weeks are
// skipped arithmetically so a years-long transfer costs no more than a
// short one. ok is false when the schedule never carries anything.
func (s schedule) finish(t time.Time, bits float64) (time.Time, bool) {
	if bits <= 0 {
		return t, true
	}
	if s.weekBits <= 0 {
		return time.Time{}, false
	}
	ws := weekStart(t)
	for guard := 0; guard < 3; guard++ {
		for _, x := range s.iv {
			a, b := at(ws, x.start), at(ws, x.end)
			if !b.After(t) || x.rate <= 0 {
				continue
			}
			if a.Before(t) {
				a = t
			}
			cap := x.rate * b.Sub(a).Seconds()
			if cap >= bits {
				return a.Add(time.Duration(bits / x.rate * float64(time.Second))), true
			}
			bits -= cap
		}
		ws = ws.AddDate(0, 0, 7)
		t = ws
		if full := math.Floor(bits / s.weekBits); full >= 1 {
			// Leave the last (partial or exact) week to the loop.
			if bits-full*s.weekBits <= 0 {
				full--
			}
			ws = ws.AddDate(0, 0, 7*int(full))
			t = ws
			bits -= full * s.weekBits
		}
		guard = 0
		if bits <= 0 {
			return t, true
		}
	}
	return time.Time{}, false
}

// nextOpening returns the first opening at or after t among ops, and its close.
func nextOpening(ops []opening, t time.Time) (time.Time, time.Time) {
	ws := weekStart(t)
	best := time.Time{}
	var bestEnd time.Time
	for w := 0; w < 2; w++ {
		for _, o := range ops {
			a := at(ws, o.start)
			if !a.Before(t) && (best.IsZero() || a.Before(best)) {
				best, bestEnd = a, at(ws, o.start+o.length)
			}
		}
		if !best.IsZero() {
			return best, bestEnd
		}
		ws = ws.AddDate(0, 0, 7)
	}
	return t, t
}

// AverageRate is the replication rate averaged over a week of transfer
// windows, in bits/s: what a transfer spanning many weeks effectively gets.
func (c Constraints) AverageRate() (float64, error) {
	if c.Bandwidth <= 0 {
		return 0, Problems{"bandwidth: must be above zero"}
	}
	s, err := c.transferSchedule()
	if err != nil {
		return 0, err
	}
	return s.weekBits / (minutesPerWeek * 60), nil
}
