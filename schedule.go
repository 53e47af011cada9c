package ferry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Schedule is a set of windows read in one time zone. Outside every window
// it is closed. Where windows overlap, the one that opened last holds until
// it closes, and then the one it interrupted holds again if still open: so
// "Mon-Fri 20:00-06:00=8Mbps; Sat-Sun 00:00-24:00=20Mbps" gives Saturday
// 00:00-06:00 to the weekend, and "Daily 00:00-24:00=10Mbps; Mon
// 09:00-10:00=0" pauses Monday 09:00-10:00. A dated window, being the more
// particular, holds over weekly ones whenever they open ("2026-12-24
// 00:00-2026-12-28 00:00=0" freezes the holidays, weeknights and all). Two
// weekly windows, or two dated ones, that open at the same minute are
// refused: nothing would say which holds. The planner, the engine, the API
// and the UI all read windows this way.
//
// A nil *Schedule has no windows and is always open, unlimited.
type Schedule struct {
	windows []Window
	loc     *time.Location
	// lastDated is when the last dated window closes (zero without any):
	// after it the schedule repeats every week.
	lastDated time.Time
}

// ParseSchedule reads spec (see ParseWindows) in loc (UTC when nil).
func ParseSchedule(spec string, loc *time.Location) (*Schedule, error) {
	ws, err := ParseWindows(spec)
	if err != nil {
		return nil, err
	}
	return NewSchedule(loc, ws)
}

// NewSchedule checks ws and makes a schedule of them in loc (UTC when nil).
// Errors name the windows by their Name.
func NewSchedule(loc *time.Location, ws []Window) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	if len(ws) == 0 {
		return nil, fmt.Errorf("windows: empty; %s", windowHelp)
	}
	var errs []error
	weekly := map[int]int{}   // minute of the week -> index of the weekly window opening then
	dated := map[[2]int]int{} // civil day, minute -> index of the dated window opening then
	for i, w := range ws {
		if err := w.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.name(), err))
			continue
		}
		if w.Dated() {
			k := [2]int{int(civil(w.Date).Unix() / 86400), w.Start}
			if j, ok := dated[k]; ok {
				errs = append(errs, sameStart(ws[j], w, w.Date.String(), w.Start))
			}
			dated[k] = i
			continue
		}
		for d := 0; d < 7; d++ {
			if !w.Days.Has(d) {
				continue
			}
			k := d*minutesPerDay + w.Start
			if j, ok := weekly[k]; ok {
				errs = append(errs, sameStart(ws[j], w, dayNames[d], w.Start))
				break
			}
			weekly[k] = i
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Schedule{windows: slices.Clone(ws)}
	return s.In(loc), nil
}

func sameStart(a, b Window, day string, start int) error {
	return fmt.Errorf("%s and %s both start on %s at %s: drop one or move its start (where windows overlap, the one that opened last holds, so two cannot open at once)",
		b.name(), a.name(), day, clock(start))
}

func (w Window) check() error {
	switch {
	case w.Start < 0 || w.Start >= minutesPerDay:
		return fmt.Errorf("start minute %d is not in 0..1439", w.Start)
	case w.Length <= 0:
		return fmt.Errorf("it never opens (length %d minutes)", w.Length)
	case math.IsNaN(float64(w.Rate)) || w.Rate < 0:
		return fmt.Errorf("rate %v is not a rate", float64(w.Rate))
	case w.Dated():
		if w.Date.IsZero() || dateOf(civil(w.Date)) != w.Date {
			return fmt.Errorf("date %s is not a day", w.Date)
		}
		if w.Length > maxDatedMinutes {
			return fmt.Errorf("lasts more than 366 days")
		}
	case w.Days&^AllWeek != 0:
		return fmt.Errorf("days %b are not days of the week", w.Days)
	case w.Length >= minutesPerWeek:
		return fmt.Errorf("lasts a week or more: for always open write \"Daily 00:00-24:00\"")
	case w.Length > minutesPerDay && w.Days&(w.Days-1) != 0:
		return fmt.Errorf("a window longer than a day starts on one day, e.g. \"Fri 20:00-Mon 06:00\"")
	}
	return nil
}

// In returns the same windows read in loc instead.
func (s *Schedule) In(loc *time.Location) *Schedule {
	if s == nil {
		return nil
	}
	out := &Schedule{windows: s.windows, loc: loc}
	for _, w := range s.windows {
		if w.Dated() {
			out.lastDated = later(out.lastDated, wall(w.Date, w.Start+w.Length, loc))
		}
	}
	return out
}

// Location returns the zone the schedule reads its windows in.
func (s *Schedule) Location() *time.Location {
	if s == nil {
		return time.UTC
	}
	return s.loc
}

// Windows returns the windows, in the order given.
func (s *Schedule) Windows() []Window {
	if s == nil {
		return nil
	}
	return slices.Clone(s.windows)
}

// String writes the schedule the way ParseSchedule reads it (without its
// zone): the windows in the order given, separated by "; ".
func (s *Schedule) String() string {
	if s == nil {
		return ""
	}
	parts := make([]string, len(s.windows))
	for i, w := range s.windows {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

// wall returns the first instant at which the clock in loc reads minute
// of day d (minute may pass 1440: the days after). A time the clocks skip
// (02:30 on the night they go forward) is the instant they skip to; a
// time they show twice is its first showing.
func wall(d Date, minute int, loc *time.Location) time.Time {
	u := time.Date(d.Year, d.Month, d.Day, 0, minute, 0, 0, time.UTC)
	var best time.Time
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, off := u.Add(probe).In(loc).Zone()
		c := u.Add(-time.Duration(off) * time.Second)
		if _, o := c.In(loc).Zone(); o == off && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if best.IsZero() {
		// In a gap: with the offset before the change, the instant lies
		// after the change; the zone in force then began at the change.
		_, off := u.Add(-26 * time.Hour).In(loc).Zone()
		best, _ = u.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	}
	return best.In(loc)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// occurrence is one opening of one window: [start, end) at rate.
type occurrence struct {
	start, end time.Time
	rate       Rate
	dated      bool
	wallStart  int64 // minutes since 1970-01-01 00:00 on the wall clock
	index      int
}

// beats reports whether o holds over p where both are open: a dated one
// over a weekly one, else the one that opened last, then the later by the
// wall clock (two openings a clock change moved to one instant), then the
// later listed.
func (o occurrence) beats(p occurrence) bool {
	switch {
	case o.dated != p.dated:
		return o.dated
	case !o.start.Equal(p.start):
		return o.start.After(p.start)
	case o.wallStart != p.wallStart:
		return o.wallStart > p.wallStart
	}
	return o.index > p.index
}

// occurrences returns every opening that overlaps [a, b).
func (s *Schedule) occurrences(a, b time.Time) []occurrence {
	var out []occurrence
	add := func(i int, w Window, d Date) {
		st, en := wall(d, w.Start, s.loc), wall(d, w.Start+w.Length, s.loc)
		if !en.After(st) || !en.After(a) || !st.Before(b) {
			return
		}
		out = append(out, occurrence{start: st, end: en, rate: w.Rate, dated: w.Dated(), index: i,
			wallStart: civil(d).Unix()/86400*minutesPerDay + int64(w.Start)})
	}
	first, last := civil(dateOf(a.In(s.loc))).AddDate(0, 0, -8), civil(dateOf(b.In(s.loc)))
	for i, w := range s.windows {
		if w.Dated() {
			add(i, w, w.Date)
			continue
		}
		for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
			if w.Days.Has(weekday(day)) {
				add(i, w, dateOf(day))
			}
		}
	}
	return out
}

// Segment is a stretch of time at one rate; Rate 0 is closed (outside
// every window, or in a window that pauses). A zero End is forever.
type Segment struct {
	Start, End time.Time
	Rate       Rate
}

// Segments returns [a, b) cut where the rate changes, in order; a nil
// schedule gives one unlimited segment.
func (s *Schedule) Segments(a, b time.Time) []Segment {
	if !b.After(a) {
		return nil
	}
	if s == nil || len(s.windows) == 0 {
		return []Segment{{a, b, Unlimited}}
	}
	occ := s.occurrences(a, b)
	slices.SortFunc(occ, func(x, y occurrence) int { return x.start.Compare(y.start) })
	points := []time.Time{a, b}
	for _, o := range occ {
		for _, p := range []time.Time{o.start, o.end} {
			if p.After(a) && p.Before(b) {
				points = append(points, p)
			}
		}
	}
	slices.SortFunc(points, func(x, y time.Time) int { return x.Compare(y) })
	points = slices.CompactFunc(points, func(x, y time.Time) bool { return x.Equal(y) })
	var out []Segment
	var active []occurrence // open at the current point; a handful at most
	next := 0
	for i := 0; i+1 < len(points); i++ {
		p := points[i]
		for next < len(occ) && !occ[next].start.After(p) {
			active = append(active, occ[next])
			next++
		}
		active = slices.DeleteFunc(active, func(o occurrence) bool { return !o.end.After(p) })
		r := Rate(0)
		if len(active) > 0 {
			win := active[0]
			for _, o := range active[1:] {
				if o.beats(win) {
					win = o
				}
			}
			r = win.rate
		}
		if n := len(out); n > 0 && out[n-1].Rate == r {
			out[n-1].End = points[i+1]
			continue
		}
		out = append(out, Segment{p, points[i+1], r})
	}
	return out
}

// RateAt returns the rate at t: the holding window's, or 0 when closed.
func (s *Schedule) RateAt(t time.Time) Rate {
	return s.Segments(t, t.Add(time.Nanosecond))[0].Rate
}

// IsOpen reports whether a window holds at t with a rate above 0.
func (s *Schedule) IsOpen(t time.Time) bool { return s.RateAt(t) > 0 }

const week = 7 * 24 * time.Hour

// forward calls f with each segment from t on, merged across the weeks it
// looks at, until f returns false. Once the schedule is known never to
// change again the last segment has a zero End.
func (s *Schedule) forward(t time.Time, f func(Segment) bool) {
	if s == nil || len(s.windows) == 0 {
		f(Segment{t, time.Time{}, Unlimited})
		return
	}
	var cur Segment
	have := false
	for from := t; ; from = from.Add(week) {
		for _, seg := range s.Segments(from, from.Add(week)) {
			if have && seg.Rate == cur.Rate {
				cur.End = seg.End
				continue
			}
			if have && !f(cur) {
				return
			}
			cur, have = seg, true
		}
		// A weekly pattern that has not changed for eight days (a week
		// and the hour a clock change may take) never changes again.
		if cur.End.Sub(later(cur.Start, s.lastDated)) > week+24*time.Hour {
			cur.End = time.Time{}
			f(cur)
			return
		}
	}
}

// NextChange returns the first instant after t at which the rate may
// differ from RateAt(t), or the zero time if it never changes.
func (s *Schedule) NextChange(t time.Time) time.Time {
	var next time.Time
	s.forward(t, func(seg Segment) bool {
		next = seg.End
		return false
	})
	return next
}

// Period is an open stretch of a schedule: from Start until End, whatever
// the rates inside. A zero Start is open since before anything asked; a
// zero End never closes.
type Period struct {
	Start, End time.Time
}

// String writes p in the schedule's terms, e.g. "Sat 2026-12-05 22:00 CET – Sun 2026-12-06 04:00 CET".
func (p Period) String() string {
	f := func(t time.Time, none string) string {
		if t.IsZero() {
			return none
		}
		return t.Format("Mon 2006-01-02 15:04 MST")
	}
	return f(p.Start, "open") + " – " + f(p.End, "never closes")
}

// NextOpening returns the first open period that starts at or after t;
// false if the schedule never opens again.
func (s *Schedule) NextOpening(t time.Time) (Period, bool) {
	if s == nil || len(s.windows) == 0 {
		return Period{}, false // always open: it never opens
	}
	openBefore := s.IsOpen(t.Add(-time.Nanosecond))
	var p Period
	found := false
	s.forward(t, func(seg Segment) bool {
		open := seg.Rate > 0
		switch {
		case found && open:
			p.End = seg.End
			return true
		case found:
			return false
		case open && !openBefore:
			p, found = Period{seg.Start, seg.End}, true
			return !seg.End.IsZero()
		}
		openBefore = open
		return !seg.End.IsZero()
	})
	return p, found
}

// OpenPeriod returns the open period that holds t, or else the next one;
// false if there is none. This is what "the current or next window" shows.
func (s *Schedule) OpenPeriod(t time.Time) (Period, bool) {
	if !s.IsOpen(t) {
		return s.NextOpening(t)
	}
	if s == nil || len(s.windows) == 0 {
		return Period{}, true
	}
	// Back to where it opened: weekly windows open within the week before;
	// a dated one may reach further.
	start := time.Time{}
	for back := t; ; {
		segs := s.Segments(back.Add(-week), back)
		k := len(segs) - 1
		for k >= 0 && segs[k].Rate > 0 {
			k--
		}
		if k >= 0 {
			start = segs[k].End
			break
		}
		back = back.Add(-week)
		if back.Before(t.Add(-400*24*time.Hour)) || s.lastDated.IsZero() {
			break // open for over a year, or always: since before anything asked
		}
	}
	p := Period{Start: start}
	s.forward(t, func(seg Segment) bool {
		if seg.Rate > 0 {
			p.End = seg.End
			return !seg.End.IsZero()
		}
		return false
	})
	return p, true
}

// OpenBetween returns how long the schedule is open in [a, b).
func (s *Schedule) OpenBetween(a, b time.Time) time.Duration {
	var d time.Duration
	for _, seg := range s.Segments(a, b) {
		if seg.Rate > 0 {
			d += seg.End.Sub(seg.Start)
		}
	}
	return d
}

// BytesBetween returns how many bytes [a, b) carries at each window's rate
// capped at base (Inf when both are unlimited and it is open at all).
func (s *Schedule) BytesBetween(a, b time.Time, base Rate) float64 {
	var n float64
	for _, seg := range s.Segments(a, b) {
		if r := min(seg.Rate, base); r > 0 {
			n += float64(r) * seg.End.Sub(seg.Start).Seconds()
		}
	}
	return n
}

// Finish returns when bytes bytes have been carried starting at t, inside
// windows at each window's rate capped at base; false if they never are.
// A transfer of years costs no more than one of weeks: once only weekly
// windows are left, whole blocks of 52 weeks (which hold each clock change
// once) are skipped by arithmetic.
func (s *Schedule) Finish(t time.Time, bytes float64, base Rate) (time.Time, bool) {
	if bytes <= 0 {
		return t, true
	}
	if base <= 0 || math.IsNaN(bytes) || math.IsInf(bytes, 0) {
		return time.Time{}, false
	}
	idle, weeks, skipped := 0, 0, false
	for x := t; ; weeks++ {
		if weeks >= 104 && !skipped && s != nil && !x.Before(s.lastDated) {
			skipped = true
			// Two years in and only weekly windows left: skip whole blocks
			// of 52 weeks, the same wall-clock times each block.
			xl := x.In(s.loc)
			if year := s.BytesBetween(xl, xl.AddDate(0, 0, 364), base); year > 0 && bytes > 2*year {
				k := math.Floor(bytes/year) - 1
				if k > 1e6 {
					return time.Time{}, false // beyond a million years: never, for any plan
				}
				x = xl.AddDate(0, 0, 364*int(k))
				bytes -= k * year
			}
		}
		to := x.Add(week)
		carried := false
		for _, seg := range s.Segments(x, to) {
			r := min(seg.Rate, base)
			if r <= 0 {
				continue
			}
			carried = true
			if r.IsUnlimited() {
				return seg.Start, true
			}
			c := float64(r) * seg.End.Sub(seg.Start).Seconds()
			if c >= bytes {
				return seg.Start.Add(time.Duration(bytes / float64(r) * float64(time.Second))), true
			}
			bytes -= c
		}
		if carried {
			idle = 0
		} else if s == nil || !x.Before(s.lastDated) {
			if idle++; idle >= 2 {
				return time.Time{}, false
			}
		}
		x = to
	}
}

// CheckFuture refuses dated windows that have closed by now, and a
// schedule that never opens again after now: what a schedule for work
// still to come must not hold.
func (s *Schedule) CheckFuture(now time.Time) error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, w := range s.windows {
		if !w.Dated() {
			continue
		}
		if end := wall(w.Date, w.Start+w.Length, s.loc); !end.After(now) {
			errs = append(errs, fmt.Errorf("%s closed on %s, before now (%s): give a date to come",
				w.name(), end.Format("2006-01-02 15:04 MST"), now.In(s.loc).Format("2006-01-02 15:04 MST")))
		}
	}
	if len(errs) == 0 && !s.IsOpen(now) {
		if _, ok := s.NextOpening(now); !ok {
			errs = append(errs, fmt.Errorf("windows %q never open after now", s.String()))
		}
	}
	return errors.Join(errs...)
}
