package throttle

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const minutesPerWeek = 7 * 24 * 60

var dayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// Window is one entry of a Schedule: every day in Days (Monday = 0), from
// Start for Length minutes (which may run past midnight), at Rate.
type Window struct {
	FirstDay, LastDay int // inclusive; LastDay < FirstDay wraps (Fri-Mon)
	Start, Length     int // minutes
	Rate              Rate
}

// Schedule is a weekly set of transfer windows in one time zone. Outside
// every window the transfer is paused. The zero Schedule has no windows.
type Schedule struct {
	windows []Window
	loc     *time.Location
	slot    [minutesPerWeek]int8 // index into windows, -1 outside all windows
}

// ParseWindows reads a comma-separated list of windows:
//
//	DAYS HH:MM-HH:MM[=RATE]
//
// DAYS is a day (Mon..Sun), a range (Mon-Fri, Fri-Mon wraps) or "Daily". The
// end may be 24:00; an end at or before the start runs past midnight into the
// next day. Where windows overlap, the one that started most recently wins.
// RATE is as for ParseRate (0 pauses); without it the window is
// unlimited (still capped by the session's base rate). Windows may not
// overlap. Times are read in loc (time.Local when nil).
func ParseWindows(s string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	sc := &Schedule{loc: loc}
	for i := range sc.slot {
		sc.slot[i] = -1
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("windows: empty; want e.g. \"Mon-Fri 20:00-06:00=8Mbps,Sat-Sun 00:00-24:00=20Mbps\"")
	}
	// age[k] is how many minutes before minute k its window started: where
	// windows overlap, the one that started most recently wins, so that
	// "Mon-Fri 20:00-06:00, Sat-Sun 00:00-24:00" hands Saturday 00:00 to the
	// weekend window.
	var age [minutesPerWeek]int16
	for n, part := range strings.Split(s, ",") {
		w, err := parseWindow(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("windows entry %d %q: %w", n+1, strings.TrimSpace(part), err)
		}
		if len(sc.windows) >= 100 {
			return nil, fmt.Errorf("windows: more than 100 entries")
		}
		idx := int8(len(sc.windows))
		sc.windows = append(sc.windows, w)
		for d := w.FirstDay; ; d = (d + 1) % 7 {
			for m := 0; m < w.Length; m++ {
				k := (d*1440 + w.Start + m) % minutesPerWeek
				if o := sc.slot[k]; o >= 0 {
					if int(age[k]) == m {
						return nil, fmt.Errorf("windows entry %d %q and entry %d %q both start on %s at %02d:%02d: drop one",
							n+1, strings.TrimSpace(part), o+1, sc.windows[o].String(), dayNames[k/1440], k%1440/60, k%60)
					}
					if int(age[k]) < m {
						continue // the other window started later and keeps the minute
					}
				}
				sc.slot[k], age[k] = idx, int16(m)
			}
			if d == w.LastDay {
				break
			}
		}
	}
	return sc, nil
}

func parseWindow(s string) (Window, error) {
	var w Window
	days, rest, ok := strings.Cut(s, " ")
	if !ok {
		return w, fmt.Errorf("want DAYS HH:MM-HH:MM[=RATE]")
	}
	rest = strings.TrimSpace(rest)
	span, rate, hasRate := strings.Cut(rest, "=")
	w.Rate = Unlimited
	if hasRate {
		r, err := ParseRate(rate)
		if err != nil {
			return w, err
		}
		w.Rate = r
	}
	if strings.EqualFold(days, "daily") {
		w.FirstDay, w.LastDay = 0, 6
	} else {
		a, b, isRange := strings.Cut(days, "-")
		var err error
		if w.FirstDay, err = parseDay(a); err != nil {
			return w, err
		}
		w.LastDay = w.FirstDay
		if isRange {
			if w.LastDay, err = parseDay(b); err != nil {
				return w, err
			}
		}
	}
	from, to, ok := strings.Cut(strings.TrimSpace(span), "-")
	if !ok {
		return w, fmt.Errorf("time span %q: want HH:MM-HH:MM", span)
	}
	start, err := parseClock(from, false)
	if err != nil {
		return w, err
	}
	end, err := parseClock(to, true)
	if err != nil {
		return w, err
	}
	if start == 1440 {
		return w, fmt.Errorf("a window cannot start at 24:00")
	}
	w.Start = start
	if end == start {
		return w, fmt.Errorf("time span %q is empty: for a whole day write 00:00-24:00", span)
	}
	if end > start {
		w.Length = end - start
	} else {
		w.Length = 1440 - start + end
	}
	if w.Length == 0 || w.Length > 1440 {
		return w, fmt.Errorf("time span %q is empty", span)
	}
	return w, nil
}

func parseDay(s string) (int, error) {
	for i, d := range dayNames {
		if strings.EqualFold(s, d) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or Daily", s)
}

func parseClock(s string, allow24 bool) (int, error) {
	hh, mm, ok := strings.Cut(strings.TrimSpace(s), ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || len(hh) < 1 || len(hh) > 2 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !allow24)) {
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

// String formats w the way ParseWindows reads it.
func (w Window) String() string {
	days := dayNames[w.FirstDay]
	if w.FirstDay != w.LastDay {
		days += "-" + dayNames[w.LastDay]
	}
	end := (w.Start + w.Length) % 1440
	endS := fmt.Sprintf("%02d:%02d", end/60, end%60)
	if end == 0 && w.Start == 0 {
		endS = "24:00"
	}
	return fmt.Sprintf("%s %02d:%02d-%s=%s", days, w.Start/60, w.Start%60, endS, w.Rate)
}

// String formats s the way ParseWindows reads it.
func (s *Schedule) String() string {
	parts := make([]string, len(s.windows))
	for i, w := range s.windows {
		parts[i] = w.String()
	}
	return strings.Join(parts, ",")
}

// Windows returns the parsed windows.
func (s *Schedule) Windows() []Window { return append([]Window(nil), s.windows...) }

func (s *Schedule) minute(t time.Time) int {
	t = t.In(s.loc)
	day := (int(t.Weekday()) + 6) % 7 // Monday = 0
	return day*1440 + t.Hour()*60 + t.Minute()
}

// RateAt returns the schedule's rate at t: the rate of the window that holds
// t, or 0 (paused) outside every window.
func (s *Schedule) RateAt(t time.Time) Rate {
	if i := s.slot[s.minute(t)]; i >= 0 {
		return s.windows[i].Rate
	}
	return 0
}

// NextChange returns the first time after t at which RateAt may differ, or
// the zero time if the rate never changes.
func (s *Schedule) NextChange(t time.Time) time.Time {
	m := s.minute(t)
	cur := s.slot[m]
	base := t.In(s.loc).Truncate(time.Minute)
	for k := 1; k <= minutesPerWeek; k++ {
		if s.slot[(m+k)%minutesPerWeek] != cur {
			return base.Add(time.Duration(k) * time.Minute)
		}
	}
	return time.Time{}
}
