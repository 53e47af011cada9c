package ferry

// Windows: when a transfer may run or a cutover may start. One grammar and
// one rule on overlaps for the planner (transfer_windows, cutover_windows),
// the engine (agent --windows, the throttle), the API and the UI.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Weekdays is a set of days of the week, bit d for day d with Monday = 0.
type Weekdays uint8

// AllWeek is every day.
const AllWeek Weekdays = 1<<7 - 1

// Has reports whether d (Monday = 0) is in the set.
func (w Weekdays) Has(d int) bool { return w&(1<<d) != 0 }

// Date is a calendar day, in whatever zone the schedule reads it.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

const (
	minutesPerDay    = 24 * 60
	minutesPerWeek   = 7 * minutesPerDay
	maxDatedMinutes  = 366 * minutesPerDay
	maxWindowEntries = 100
)

var dayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
var fullDayNames = [7]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// Window is one entry of a Schedule. A weekly window opens on each of its
// Days; a dated window (Days empty) opens once, on Date. Either opens at
// minute Start of the day and stays open Length minutes by the clock on
// the wall, so that "22:00-06:00" is 22:00 to 06:00 local time also on the
// nights the clocks change (then 7 or 9 hours).
type Window struct {
	Days   Weekdays
	Date   Date
	Start  int  // minute of the day it opens, 0..1439
	Length int  // minutes it stays open
	Rate   Rate // Unlimited unless the window gives one; 0 pauses
	// Name is how errors name the window (a config field, an entry of a
	// list); empty means its String.
	Name string
}

// Dated reports whether w opens once, on its Date, rather than weekly.
func (w Window) Dated() bool { return w.Days == 0 }

func (w Window) name() string {
	if w.Name != "" {
		return w.Name
	}
	return strconv.Quote(w.String())
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// String writes w the way ParseWindows reads it, e.g. "Mon-Fri 20:00-06:00=8Mbps",
// "Fri 20:00-Mon 06:00", "2026-12-24 18:00-2026-12-27 06:00".
func (w Window) String() string {
	var b strings.Builder
	if w.Dated() {
		b.WriteString(w.Date.String())
	} else {
		b.WriteString(w.Days.String())
	}
	b.WriteString(" " + clock(w.Start) + "-")
	end := w.Start + w.Length
	switch {
	case w.Length < minutesPerDay || w.Start == 0 && w.Length == minutesPerDay:
		if end%minutesPerDay == 0 {
			b.WriteString("24:00")
		} else {
			b.WriteString(clock(end % minutesPerDay))
		}
	case w.Dated():
		d := civil(w.Date).AddDate(0, 0, end/minutesPerDay)
		b.WriteString(dateOf(d).String() + " " + clock(end%minutesPerDay))
	default:
		first := 0
		for !w.Days.Has(first) {
			first++
		}
		b.WriteString(dayNames[(first+end/minutesPerDay)%7] + " " + clock(end%minutesPerDay))
	}
	if !w.Rate.IsUnlimited() {
		b.WriteString("=" + w.Rate.String())
	}
	return b.String()
}

// String writes the set as runs of days: "Daily", "Mon-Fri", "Sat-Sun",
// "Mon,Wed,Fri", "Fri-Mon".
func (w Weekdays) String() string {
	w &= AllWeek
	if w == AllWeek {
		return "Daily"
	}
	// From Monday, unless a run crosses the week boundary (Fri-Mon): then
	// from the day after the first day not in the set, so it stays one run.
	start := 0
	if w.Has(0) && w.Has(6) {
		for w.Has(start) {
			start++
		}
		start++
	}
	var parts []string
	for k := 0; k < 7; k++ {
		d := (start + k) % 7
		if !w.Has(d) || k > 0 && w.Has((d+6)%7) {
			continue
		}
		e := d
		for w.Has((e+1)%7) && (e+1)%7 != start {
			e = (e + 1) % 7
		}
		if e == d {
			parts = append(parts, dayNames[d])
		} else {
			parts = append(parts, dayNames[d]+"-"+dayNames[e])
		}
	}
	return strings.Join(parts, ",")
}

// windowHelp ends every window error: what a good window looks like.
const windowHelp = `want DAYS HH:MM-HH:MM[=RATE], e.g. "Mon-Fri 20:00-06:00=8Mbps", "Sat 22:00-04:00" or "2026-12-24 18:00-2026-12-27 06:00"`

// ParseWindows reads a list of windows separated by ",", ";" or new lines:
//
//	WINDOW := DAYS  HH:MM "-" [DAY]  HH:MM [RATE]     weekly
//	        | DATE  HH:MM "-" [DATE] HH:MM [RATE]     once
//	DAYS   := DAY | DAY "-" DAY | DAYS "," DAYS | Daily | Weekdays | Weekends
//	DAY    := Mon … Sun (or the day's name: Tuesday, Thurs)
//	DATE   := YYYY-MM-DD
//	RATE   := "=" rate | "@" rate                    (see ParseRate)
//
// An end at or before the start runs past midnight into the next day
// ("Mon-Fri 20:00-06:00" is five nights); 24:00 may end a window. With an
// end day or date a window may last longer than a day ("Fri 20:00-Mon
// 06:00"). Without a rate a window is unlimited (capped by whatever base
// rate applies); a rate of 0 pauses. Errors name the entry and what is wrong.
func ParseWindows(spec string) ([]Window, error) {
	var out []Window
	var entries []string
	for _, e := range splitEntries(spec) {
		if strings.TrimSpace(e) != "" {
			entries = append(entries, strings.TrimSpace(e))
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("windows: empty; %s", windowHelp)
	}
	if len(entries) > maxWindowEntries {
		return nil, fmt.Errorf("windows: %d entries, more than %d", len(entries), maxWindowEntries)
	}
	for n, e := range entries {
		w, err := parseWindow(e)
		if len(entries) > 1 {
			w.Name = fmt.Sprintf("entry %d %q", n+1, e)
		}
		if err != nil {
			if len(entries) > 1 {
				return nil, fmt.Errorf("windows %s: %w", w.Name, err)
			}
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// splitEntries cuts a list at the separators between windows. A comma is
// a separator only after a window's times (and rate); inside the days it
// separates days ("Mon,Wed 01:00-05:00").
func splitEntries(spec string) []string {
	var out []string
	start, seenTime := 0, false
	for i := 0; i < len(spec); i++ {
		switch c := spec[i]; {
		case c == ':':
			seenTime = true
		case c == ';' || c == '\n' || c == ',' && seenTime:
			out = append(out, spec[start:i])
			start, seenTime = i+1, false
		}
	}
	return append(out, spec[start:])
}

type scanner struct {
	s string
	i int
}

func (sc *scanner) space() {
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t' || sc.s[sc.i] == '\r') {
		sc.i++
	}
}

func (sc *scanner) peek() byte {
	if sc.i < len(sc.s) {
		return sc.s[sc.i]
	}
	return 0
}

// run returns the longest run at the cursor of bytes for which ok holds.
func (sc *scanner) run(ok func(byte) bool) string {
	j := sc.i
	for sc.i < len(sc.s) && ok(sc.s[sc.i]) {
		sc.i++
	}
	return sc.s[j:sc.i]
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isClock(c byte) bool  { return isDigit(c) || c == ':' }

// isDateAhead reports whether a YYYY-MM-DD date starts at the cursor.
func (sc *scanner) isDateAhead() bool {
	r := sc.s[sc.i:]
	return len(r) >= 5 && isDigit(r[0]) && isDigit(r[1]) && isDigit(r[2]) && isDigit(r[3]) && r[4] == '-'
}

func (sc *scanner) date() (Date, error) {
	tok := sc.run(func(c byte) bool { return isDigit(c) || c == '-' })
	if len(tok) > 10 {
		// "2026-12-24-2026-12-25" without times: show the date part.
		tok = tok[:10]
	}
	t, err := time.Parse("2006-01-02", tok)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD, e.g. 2026-12-24", tok)
	}
	return dateOf(t), nil
}

func parseWindow(e string) (Window, error) {
	w := Window{Rate: Unlimited}
	sc := &scanner{s: e}
	single := -1 // the day, when DAYS is one day
	if sc.isDateAhead() {
		d, err := sc.date()
		if err != nil {
			return w, err
		}
		w.Date = d
	} else {
		days, one, err := sc.days()
		if err != nil {
			return w, err
		}
		w.Days, single = days, one
	}
	sc.space()
	if !isDigit(sc.peek()) {
		return w, fmt.Errorf("%s", windowHelp)
	}
	start, err := parseClock(sc.run(isClock), false)
	if err != nil {
		return w, err
	}
	sc.space()
	if sc.peek() != '-' {
		return w, fmt.Errorf("no end time: %s", windowHelp)
	}
	sc.i++
	sc.space()
	endDays := -1 // days after the start day, when an end day or date is given
	switch {
	case isLetter(sc.peek()):
		if w.Dated() {
			return w, fmt.Errorf("a dated window ends on a date, e.g. \"2026-12-24 18:00-2026-12-27 06:00\"")
		}
		tok := sc.run(isLetter)
		d, ok := dayIndex(tok)
		if !ok {
			return w, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", tok)
		}
		if single < 0 {
			return w, fmt.Errorf("a window that ends on another day starts on one day, e.g. \"Fri 20:00-Mon 06:00\"")
		}
		endDays = (d - single + 7) % 7
		sc.space()
	case sc.isDateAhead():
		if !w.Dated() {
			return w, fmt.Errorf("a weekly window ends on a day, e.g. \"Fri 20:00-Mon 06:00\"")
		}
		d, err := sc.date()
		if err != nil {
			return w, err
		}
		endDays = int(civil(d).Sub(civil(w.Date)).Hours() / 24)
		if endDays < 0 {
			return w, fmt.Errorf("ends on %s, before it starts on %s", d, w.Date)
		}
		sc.space()
	}
	endTok := sc.run(isClock)
	end, err := parseClock(endTok, true)
	if err != nil {
		return w, err
	}
	w.Start = start
	switch {
	case endDays < 0 && end == start:
		return w, fmt.Errorf("opens and closes at the same minute (%s-%s is empty), so it never opens: for a whole day write 00:00-24:00", clock(start), endTok)
	case endDays < 0 && end > start:
		w.Length = end - start
	case endDays < 0:
		w.Length = minutesPerDay - start + end
	default:
		w.Length = endDays*minutesPerDay + end - start
		if !w.Dated() && w.Length <= 0 {
			w.Length += minutesPerWeek
		}
		if w.Length <= 0 {
			return w, fmt.Errorf("ends at or before it starts")
		}
	}
	if !w.Dated() && w.Length >= minutesPerWeek {
		return w, fmt.Errorf("lasts a week or more: for always open write \"Daily 00:00-24:00\"")
	}
	if w.Length > maxDatedMinutes {
		return w, fmt.Errorf("lasts more than 366 days")
	}
	sc.space()
	if c := sc.peek(); c == '=' || c == '@' {
		sc.i++
		r, err := ParseRate(sc.s[sc.i:])
		if err != nil {
			return w, err
		}
		w.Rate = r
		sc.i = len(sc.s)
	}
	if sc.i < len(sc.s) {
		return w, fmt.Errorf("unexpected %q after the window: %s", sc.s[sc.i:], windowHelp)
	}
	return w, nil
}

// days reads DAYS; one is the day when DAYS names a single day, else -1.
func (sc *scanner) days() (set Weekdays, one int, err error) {
	one = -1
	singles, others := 0, 0
	for {
		tok := sc.run(isLetter)
		if tok == "" {
			if singles+others == 0 {
				return 0, -1, fmt.Errorf("%s", windowHelp)
			}
			return 0, -1, fmt.Errorf("a day must follow %q", ",")
		}
		switch strings.ToLower(tok) {
		case "daily", "everyday":
			set |= AllWeek
			others++
		case "weekdays":
			set |= 0b0011111
			others++
		case "weekends":
			set |= 0b1100000
			others++
		default:
			a, ok := dayIndex(tok)
			if !ok {
				return 0, -1, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, a list such as Mon,Wed, or Daily, Weekdays, Weekends", tok)
			}
			if sc.peek() == '-' && isLetter(sc.at(1)) {
				sc.i++
				tokB := sc.run(isLetter)
				b, ok := dayIndex(tokB)
				if !ok {
					return 0, -1, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", tokB)
				}
				for d := a; ; d = (d + 1) % 7 {
					set |= 1 << d
					if d == b {
						break
					}
				}
				if a != b {
					others++
					break
				}
			}
			set |= 1 << a
			singles++
			one = a
		}
		save := sc.i
		sc.space()
		if sc.peek() != ',' {
			sc.i = save
			break
		}
		sc.i++
		sc.space()
	}
	if others > 0 || singles != 1 {
		one = -1
	}
	return set, one, nil
}

func (sc *scanner) at(k int) byte {
	if sc.i+k < len(sc.s) {
		return sc.s[sc.i+k]
	}
	return 0
}

// dayIndex reads a day: its three-letter name or a longer start of its
// full name ("Tues", "Thursday"), in any case.
func dayIndex(s string) (int, bool) {
	l := strings.ToLower(s)
	if len(l) < 3 {
		return 0, false
	}
	for i, full := range fullDayNames {
		if strings.HasPrefix(full, l) {
			return i, true
		}
	}
	return 0, false
}

// parseClock reads H:MM or HH:MM, 00:00 to 23:59, and 24:00 when allow24.
func parseClock(s string, allow24 bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 || h > 24 || m > 59 || h == 24 && (m != 0 || !allow24) {
		if s == "24:00" {
			return 0, fmt.Errorf("time \"24:00\" cannot start a window: write 00:00 of the next day")
		}
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

// civil returns d at noon UTC, for calendar arithmetic that no zone's
// clock change can disturb.
func civil(d Date) time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC) }

func dateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// weekday returns t's day with Monday = 0.
func weekday(t time.Time) int { return (int(t.Weekday()) + 6) % 7 }
