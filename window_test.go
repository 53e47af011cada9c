package ferry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry"
)

var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at reads "2006-01-02 15:04" in loc.
func at(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func schedule(t testing.TB, spec string, loc *time.Location) *ferry.Schedule {
	t.Helper()
	s, err := ferry.ParseSchedule(spec, loc)
	if err != nil {
		t.Fatalf("ParseSchedule(%q): %v", spec, err)
	}
	return s
}

func TestParseWindows(t *testing.T) {
	tests := []struct {
		in, canonical string
		want          []ferry.Window // fields compared without Name
	}{
		{"Sat 22:00-04:00", "Sat 22:00-04:00", []ferry.Window{{Days: 1 << 5, Start: 22 * 60, Length: 6 * 60, Rate: ferry.Unlimited}}},
		{"Mon-Fri 20:00-06:00=8Mbps", "Mon-Fri 20:00-06:00=8Mbps", []ferry.Window{{Days: 0b11111, Start: 20 * 60, Length: 10 * 60, Rate: 1e6}}},
		{"mon-fri 19:00-07:00 @ 800Mbps", "Mon-Fri 19:00-07:00=800Mbps", nil},
		{"Mon,Wed 01:00-05:00", "Mon,Wed 01:00-05:00", []ferry.Window{{Days: 0b101, Start: 60, Length: 240, Rate: ferry.Unlimited}}},
		{"Mon, Wed,Fri 1:00-5:00", "Mon,Wed,Fri 01:00-05:00", nil},
		{"Tues,Thursday 07:00-09:00", "Tue,Thu 07:00-09:00", nil},
		{"daily 00:00-24:00", "Daily 00:00-24:00", nil},
		{"everyday 00:00-24:00", "Daily 00:00-24:00", nil},
		{"Mon-Sun 08:00-09:00=0", "Daily 08:00-09:00=0", nil},
		{"weekdays 19:00-07:00", "Mon-Fri 19:00-07:00", nil},
		{"weekends 00:00-24:00", "Sat-Sun 00:00-24:00", nil},
		{"Fri-Mon 23:30-00:15", "Fri-Mon 23:30-00:15", []ferry.Window{{Days: 0b1110001, Start: 23*60 + 30, Length: 45, Rate: ferry.Unlimited}}},
		{"Sun,Mon 20:00-24:00", "Sun-Mon 20:00-24:00", nil},
		{"Fri 20:00 - Mon 06:00", "Fri 20:00-Mon 06:00", []ferry.Window{{Days: 1 << 4, Start: 20 * 60, Length: 58 * 60, Rate: ferry.Unlimited}}},
		{"Sun 20:00-Mon 06:00", "Sun 20:00-06:00", nil},
		{"Mon 10:00-Tue 10:00", "Mon 10:00-Tue 10:00", nil},
		{"2026-12-24 22:00-04:00", "2026-12-24 22:00-04:00", []ferry.Window{{Date: ferry.Date{Year: 2026, Month: 12, Day: 24}, Start: 22 * 60, Length: 6 * 60, Rate: ferry.Unlimited}}},
		{"2026-12-24 18:00-2026-12-27 06:00=0", "2026-12-24 18:00-2026-12-27 06:00=0", []ferry.Window{{Date: ferry.Date{Year: 2026, Month: 12, Day: 24}, Start: 18 * 60, Length: 60 * 60, Rate: 0}}},
		{"2026-12-31 00:00-24:00", "2026-12-31 00:00-24:00", nil},
		// Lists: "," after a window's times, ";" or new lines anywhere.
		{"Mon-Fri 20:00-06:00=8Mbps,Sat-Sun 00:00-24:00=20Mbps", "Mon-Fri 20:00-06:00=8Mbps; Sat-Sun 00:00-24:00=20Mbps", nil},
		{"Mon 01:00-02:00, Tue,Wed 03:00-04:00", "Mon 01:00-02:00; Tue-Wed 03:00-04:00", nil},
		{"Sat 22:00-04:00\n\nWed 23:00-03:00;", "Sat 22:00-04:00; Wed 23:00-03:00", nil},
	}
	for _, tc := range tests {
		s, err := ferry.ParseSchedule(tc.in, time.UTC)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.in, err)
			continue
		}
		if got := s.String(); got != tc.canonical {
			t.Errorf("ParseSchedule(%q).String() = %q, want %q", tc.in, got, tc.canonical)
		}
		if tc.want != nil {
			got := s.Windows()
			for i := range got {
				got[i].Name = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseSchedule(%q) windows (-want +got):\n%s", tc.in, diff)
			}
		}
	}
}

func TestParseWindowsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "windows: empty"},
		{" ; \n", "windows: empty"},
		{"Mon", "want DAYS HH:MM-HH:MM"},
		{"Mun 10:00-11:00", `day "Mun"`},
		{"Mo 10:00-11:00", `day "Mo"`},
		{"Mon- 10:00-11:00", "want DAYS"},
		{"Mon, 10:00-11:00", "a day must follow"},
		{"Mon 25:00-26:00", `time "25:00": want HH:MM between 00:00 and 24:00`},
		{"Mon 10:60-11:00", `time "10:60"`},
		{"Mon 10:5-11:00", `time "10:5"`},
		{"Mon 10:00-10:00", `opens and closes at the same minute (10:00-10:00 is empty)`},
		{"Mon 24:00-01:00", `time "24:00" cannot start a window`},
		{"Mon 10:00", "no end time"},
		{"Mon 10:00-11:00=fast", `rate "fast"`},
		{"Mon 10:00-11:00=1000", "needs a unit"},
		{"Mon 10:00-11:00 8Mbps", `unexpected "8Mbps" after the window`},
		{"Mon-Fri 20:00-Sat 06:00", "a window that ends on another day starts on one day"},
		{"Mon 10:00-Mon 10:00", "lasts a week or more"},
		{"2026-02-30 10:00-11:00", `date "2026-02-30"`},
		{"2026-12-24 10:00-2026-12-23 11:00", "ends on 2026-12-23, before it starts on 2026-12-24"},
		{"2026-12-24 10:00-2028-12-24 11:00", "lasts more than 366 days"},
		{"2026-12-24 10:00-Mon 11:00", "a dated window ends on a date"},
		{"Mon 10:00-2026-12-24 11:00", "a weekly window ends on a day"},
		{"Mon 10:00-11:00; Tue 25:00-26:00", `windows entry 2 "Tue 25:00-26:00": time "25:00"`},
		{strings.Repeat("Mon 10:00-11:00;", 101), "more than 100"},
		// The rule on overlaps: two windows may not open at the same minute
		// (whichever held would be a guess); the error names both.
		{"Mon 10:00-12:00,Mon 10:00-13:00", `entry 2 "Mon 10:00-13:00" and entry 1 "Mon 10:00-12:00" both start on Mon at 10:00`},
		{"Mon-Fri 20:00-06:00; Fri 20:00-24:00=8Mbps", `both start on Fri at 20:00`},
		{"2026-12-24 10:00-12:00; 2026-12-24 10:00-11:00=0", `both start on 2026-12-24 at 10:00`},
	}
	for _, tc := range tests {
		_, err := ferry.ParseSchedule(tc.in, time.UTC)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestNewScheduleNamesWindows(t *testing.T) {
	a, _ := ferry.ParseWindows("Mon-Fri 19:00-07:00")
	b, _ := ferry.ParseWindows("Fri 19:00-24:00")
	a[0].Name, b[0].Name = `transfer_windows[0] "Mon-Fri 19:00-07:00"`, `transfer_windows[1] "Fri 19:00-24:00"`
	_, err := ferry.NewSchedule(time.UTC, append(a, b...))
	want := `transfer_windows[1] "Fri 19:00-24:00" and transfer_windows[0] "Mon-Fri 19:00-07:00" both start on Fri at 19:00`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	for _, bad := range []ferry.Window{
		{Days: 1, Start: 0, Length: 0},
		{Days: 1, Start: 1440, Length: 10},
		{Days: 0b11, Start: 0, Length: 2000},
		{Date: ferry.Date{Year: 2026, Month: 2, Day: 30}, Length: 10},
		{Days: 1, Length: 10, Rate: -1},
	} {
		if _, err := ferry.NewSchedule(time.UTC, []ferry.Window{bad}); err == nil {
			t.Errorf("NewSchedule(%+v) accepted it", bad)
		}
	}
}

// TestLatestOpenedHolds is the rule on overlaps, for every reader: where
// windows overlap, the one that opened last holds until it closes.
func TestLatestOpenedHolds(t *testing.T) {
	// 2026-11-23 is a Monday.
	tests := []struct {
		spec string
		when string
		want ferry.Rate
	}{
		// Weeknights and weekends: Saturday 00:00-06:00 goes to the weekend.
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-23 05:59", 0}, // Sunday ended at 24:00, and Sunday night is not a weeknight
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-23 19:59", 0},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-23 20:00", 1e6},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-24 05:59", 1e6},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-24 06:00", 0},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-27 23:59", 1e6},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-28 00:00", 2.5e6},
		{"Mon-Fri 20:00-06:00=8Mbps, Sat-Sun 00:00-24:00=20Mbps", "2026-11-29 23:59", 2.5e6},
		// An exception inside a longer window, and the longer one resuming.
		{"Daily 00:00-24:00=10Mbps; Mon 09:00-10:00=0", "2026-11-23 08:59", 1.25e6},
		{"Daily 00:00-24:00=10Mbps; Mon 09:00-10:00=0", "2026-11-23 09:00", 0},
		{"Daily 00:00-24:00=10Mbps; Mon 09:00-10:00=0", "2026-11-23 10:00", 1.25e6},
		{"Mon 10:00-12:00=1000B/s, Mon 11:00-13:00=0", "2026-11-23 10:59", 1000},
		{"Mon 10:00-12:00=1000B/s, Mon 11:00-13:00=0", "2026-11-23 11:00", 0},
		{"Mon 10:00-12:00=1000B/s, Mon 11:00-13:00=0", "2026-11-23 12:30", 0},
		{"Mon 09:00-17:00=8kbps; Mon 08:00-18:00=16kbps", "2026-11-23 08:30", 2000},
		{"Mon 09:00-17:00=8kbps; Mon 08:00-18:00=16kbps", "2026-11-23 16:59", 1000},
		{"Mon 09:00-17:00=8kbps; Mon 08:00-18:00=16kbps", "2026-11-23 17:30", 2000},
		// A dated window holds over weekly ones, whenever they open: it is the more particular.
		{"Mon 08:00-18:00=16kbps; 2026-11-23 08:00-12:00=0", "2026-11-23 09:00", 0},
		{"Mon 08:00-18:00=16kbps; 2026-11-23 08:00-12:00=0", "2026-11-23 12:00", 2000},
		{"Mon 08:00-18:00=16kbps; 2026-11-23 08:00-12:00=0", "2026-11-30 09:00", 2000},
		// A holiday freeze over weeknights: Thursday 20:00 opens inside it and still waits.
		{"Mon-Fri 20:00-06:00; 2026-12-24 00:00-2026-12-28 00:00=0", "2026-12-24 21:00", 0},
		{"Mon-Fri 20:00-06:00; 2026-12-24 00:00-2026-12-28 00:00=0", "2026-12-28 21:00", ferry.Unlimited},
		{"Sat 22:00-04:00=0; 2026-11-28 23:00-2026-11-29 01:00=8Mbps", "2026-11-29 00:30", 1e6},
		{"Sat 22:00-04:00=0; 2026-11-28 23:00-2026-11-29 01:00=8Mbps", "2026-11-29 01:00", 0},
		// Between dated windows, the one that opened last.
		{"2026-12-24 00:00-2026-12-28 00:00=0; 2026-12-26 10:00-12:00=8Mbps", "2026-12-26 11:00", 1e6},
	}
	for _, tc := range tests {
		s := schedule(t, tc.spec, time.UTC)
		if got := s.RateAt(at(t, time.UTC, tc.when)); got != tc.want {
			t.Errorf("%q at %s: rate %v, want %v", tc.spec, tc.when, got, tc.want)
		}
	}
}

// TestMidnightAndWeekBoundary: windows that run past midnight and past
// Sunday into Monday.
func TestMidnightAndWeekBoundary(t *testing.T) {
	tests := []struct {
		spec, from, to string
		open           time.Duration // in [from, to)
	}{
		{"Mon 23:00-01:00", "2026-11-23 00:00", "2026-11-25 00:00", 2 * time.Hour},
		{"Sun 22:00-02:00", "2026-11-23 00:00", "2026-11-30 00:00", 4 * time.Hour}, // the week's Monday 00-02 is last Sunday's
		{"Sun 22:00-02:00", "2026-11-29 23:00", "2026-11-30 03:00", 3 * time.Hour},
		{"Fri-Mon 23:00-01:00", "2026-11-23 00:00", "2026-11-30 00:00", 8 * time.Hour},
		{"Fri 20:00-Mon 06:00", "2026-11-23 00:00", "2026-11-30 00:00", 58 * time.Hour}, // Mon 00-06 of last week's + Fri 20:00-Mon 00:00
		{"Daily 00:00-24:00", "2026-11-23 00:00", "2026-11-30 00:00", 7 * 24 * time.Hour},
		{"Sat-Sun 00:00-24:00; Mon-Fri 20:00-06:00", "2026-11-23 00:00", "2026-11-30 00:00", 48*time.Hour + 4*10*time.Hour + 4*time.Hour}, // Fri night ends when Saturday opens
	}
	for _, tc := range tests {
		s := schedule(t, tc.spec, time.UTC)
		if got := s.OpenBetween(at(t, time.UTC, tc.from), at(t, time.UTC, tc.to)); got != tc.open {
			t.Errorf("%q open %s between %s and %s, want %s", tc.spec, got, tc.from, tc.to, tc.open)
		}
	}
}

// TestDST: windows are wall-clock times in their zone. Europe/Berlin goes
// forward on Sunday 2026-03-29 at 02:00 and back on Sunday 2026-10-25 at 03:00.
func TestDST(t *testing.T) {
	tests := []struct {
		name, spec string
		from, to   string
		open       time.Duration
		opens      string // NextOpening(from), "15:04 MST" on the wall
		closes     string
	}{
		{"night across spring forward", "Sat 22:00-04:00", "2026-03-28 12:00", "2026-03-29 12:00", 5 * time.Hour, "22:00 CET", "04:00 CEST"},
		{"night across fall back", "Sat 22:00-04:00", "2026-10-24 12:00", "2026-10-25 12:00", 7 * time.Hour, "22:00 CEST", "04:00 CET"},
		{"inside the skipped hour", "Sun 02:00-03:00", "2026-03-29 00:00", "2026-03-30 00:00", 0, "02:00 CEST", "03:00 CEST"}, // next week's
		{"opening in the skipped hour", "Sun 02:30-04:00", "2026-03-29 00:00", "2026-03-30 00:00", time.Hour, "03:00 CEST", "04:00 CEST"},
		{"the repeated hour: first showing to first showing", "Sun 02:00-02:30", "2026-10-25 00:00", "2026-10-26 00:00", 30 * time.Minute, "02:00 CEST", "02:30 CEST"},
		{"ending after the repeated hour", "Sun 01:00-03:30", "2026-10-25 00:00", "2026-10-26 00:00", 3*time.Hour + 30*time.Minute, "01:00 CEST", "03:30 CET"},
		{"a whole day of 23 hours", "Sun 00:00-24:00", "2026-03-29 00:00", "2026-03-30 00:00", 23 * time.Hour, "00:00 CET", "00:00 CEST"},
		{"a whole day of 25 hours", "Sun 00:00-24:00", "2026-10-25 00:00", "2026-10-26 00:00", 25 * time.Hour, "00:00 CEST", "00:00 CET"},
		{"a dated window across the change", "2026-03-28 20:00-2026-03-29 08:00", "2026-03-28 00:00", "2026-03-30 00:00", 11 * time.Hour, "20:00 CET", "08:00 CEST"},
	}
	for _, tc := range tests {
		s := schedule(t, tc.spec, berlin)
		from, to := at(t, berlin, tc.from), at(t, berlin, tc.to)
		if got := s.OpenBetween(from, to); got != tc.open {
			t.Errorf("%s: %q open %s, want %s", tc.name, tc.spec, got, tc.open)
		}
		p, ok := s.NextOpening(from)
		if !ok {
			t.Errorf("%s: never opens", tc.name)
			continue
		}
		if got := p.Start.In(berlin).Format("15:04 MST"); got != tc.opens {
			t.Errorf("%s: opens %s (%s), want %s", tc.name, got, p, tc.opens)
		}
		if got := p.End.In(berlin).Format("15:04 MST"); got != tc.closes {
			t.Errorf("%s: closes %s (%s), want %s", tc.name, got, p, tc.closes)
		}
	}
	// The same instant of the repeated hour, its first and second showing.
	s := schedule(t, "Sun 02:00-02:30", berlin)
	first := time.Date(2026, 10, 25, 0, 10, 0, 0, time.UTC)  // 02:10 CEST
	second := time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC) // 02:10 CET
	if !s.IsOpen(first) || s.IsOpen(second) {
		t.Errorf("02:10 CEST open %v (want true), 02:10 CET open %v (want false)", s.IsOpen(first), s.IsOpen(second))
	}
}

func TestNextOpeningAndPeriods(t *testing.T) {
	s := schedule(t, "Sat 22:00-04:00; Wed 23:00-03:00", time.UTC)
	tests := []struct {
		from, start, end string // "" end: never closes
		holds            bool   // OpenPeriod(from) holds from
	}{
		{"2026-11-23 12:00", "2026-11-25 23:00", "2026-11-26 03:00", false},
		{"2026-11-25 23:00", "2026-11-25 23:00", "2026-11-26 03:00", true},
		{"2026-11-26 01:00", "2026-11-28 22:00", "2026-11-29 04:00", true}, // inside Wednesday's: the next opening is Saturday's
		{"2026-11-29 03:00", "2026-12-02 23:00", "2026-12-03 03:00", true},
	}
	for _, tc := range tests {
		from := at(t, time.UTC, tc.from)
		p, ok := s.NextOpening(from)
		want := ferry.Period{Start: at(t, time.UTC, tc.start), End: at(t, time.UTC, tc.end)}
		if !ok || !p.Start.Equal(want.Start) || !p.End.Equal(want.End) {
			t.Errorf("NextOpening(%s) = %s, %v; want %s", tc.from, p, ok, want)
		}
		cur, ok := s.OpenPeriod(from)
		if !ok || s.IsOpen(from) != tc.holds || tc.holds && (cur.Start.After(from) || !cur.End.After(from)) || !tc.holds && !cur.Start.Equal(want.Start) {
			t.Errorf("OpenPeriod(%s) = %s, %v", tc.from, cur, ok)
		}
	}
	// Windows that touch make one period whatever their rates.
	s = schedule(t, "Mon-Fri 20:00-06:00=8Mbps; Sat-Sun 00:00-24:00=20Mbps", time.UTC)
	p, _ := s.NextOpening(at(t, time.UTC, "2026-11-27 12:00"))
	if want := (ferry.Period{Start: at(t, time.UTC, "2026-11-27 20:00"), End: at(t, time.UTC, "2026-11-30 00:00")}); p != want {
		t.Errorf("weekend period = %s, want %s", p, want)
	}
	if got, want := s.NextChange(at(t, time.UTC, "2026-11-27 12:00")), at(t, time.UTC, "2026-11-27 20:00"); !got.Equal(want) {
		t.Errorf("NextChange = %s, want %s", got, want)
	}
	if got, want := s.NextChange(at(t, time.UTC, "2026-11-27 20:00")), at(t, time.UTC, "2026-11-28 00:00"); !got.Equal(want) {
		t.Errorf("NextChange inside = %s, want %s (the weekend's rate)", got, want)
	}
	// Always open: never opens, holds forever, never changes.
	always := schedule(t, "Daily 00:00-24:00", time.UTC)
	if _, ok := always.NextOpening(at(t, time.UTC, "2026-11-23 12:00")); ok {
		t.Error("an always-open schedule opens")
	}
	if p, ok := always.OpenPeriod(at(t, time.UTC, "2026-11-23 12:00")); !ok || !p.Start.IsZero() || !p.End.IsZero() {
		t.Errorf("always open: period %s, %v", p, ok)
	}
	if got := always.NextChange(at(t, time.UTC, "2026-11-23 12:00")); !got.IsZero() {
		t.Errorf("always open changes at %s", got)
	}
	// Only paused windows: never opens.
	if _, ok := schedule(t, "Daily 08:00-09:00=0", time.UTC).NextOpening(at(t, time.UTC, "2026-11-23 12:00")); ok {
		t.Error("a paused schedule opens")
	}
	// A dated window months ahead is found; after it, nothing.
	d := schedule(t, "2027-06-05 22:00-04:00", berlin)
	if p, ok := d.NextOpening(at(t, berlin, "2026-11-23 12:00")); !ok || p.Start.In(berlin).Format("2006-01-02 15:04") != "2027-06-05 22:00" {
		t.Errorf("dated window: %s, %v", p, ok)
	}
	if _, ok := d.NextOpening(at(t, berlin, "2027-06-06 04:00")); ok {
		t.Error("a dated window opened again")
	}
	var none *ferry.Schedule
	if none.RateAt(time.Now()) != ferry.Unlimited || !none.IsOpen(time.Now()) || !none.NextChange(time.Now()).IsZero() {
		t.Error("a nil schedule restricts")
	}
}

func TestFinishAndBytes(t *testing.T) {
	mon := at(t, time.UTC, "2026-11-23 00:00")
	// 20:00-24:00 at 100 Mbit/s = 180 GB a night.
	s := schedule(t, "Daily 20:00-24:00=100Mbps; Daily 08:00-09:00=0", time.UTC)
	if got := s.BytesBetween(mon, mon.Add(24*time.Hour), ferry.Unlimited); got != 180e9 {
		t.Errorf("a night carries %g bytes, want 180e9", got)
	}
	if got := s.BytesBetween(mon, mon.Add(24*time.Hour), ferry.RateFromBits(50e6)); got != 90e9 {
		t.Errorf("capped at 50 Mbit/s a night carries %g bytes, want 90e9", got)
	}
	end, ok := s.Finish(mon, 450e9, ferry.Unlimited)
	if want := at(t, time.UTC, "2026-11-25 22:00"); !ok || !end.Equal(want) {
		t.Errorf("Finish = %s, %v; want %s", end, ok, want)
	}
	if _, ok := schedule(t, "Daily 08:00-09:00=0", time.UTC).Finish(mon, 1, ferry.Unlimited); ok {
		t.Error("a paused schedule finished")
	}
	if _, ok := s.Finish(mon, 1, 0); ok {
		t.Error("a zero base rate finished")
	}
	var none *ferry.Schedule
	if end, ok := none.Finish(mon, 3600, 1); !ok || !end.Equal(mon.Add(time.Hour)) {
		t.Errorf("no windows: %s, %v", end, ok)
	}
	// A transfer of years: the skipped blocks give what the week-by-week
	// sum gives (here in a zone with clock changes).
	b := schedule(t, "Mon-Fri 19:00-07:00=800Mbps; Sat-Sun 00:00-24:00=1Gbps", berlin)
	bytes := 40e12 * 30 // 30 links' worth: ~ 6 years
	end, ok = b.Finish(mon, bytes, ferry.RateFromBits(1e9))
	if !ok {
		t.Fatal("never finished")
	}
	got := b.BytesBetween(mon, end, ferry.RateFromBits(1e9))
	if rel := (got - bytes) / bytes; rel > 1e-9 || rel < -1e-9 {
		t.Errorf("Finish after %s carries %g bytes by BytesBetween, want %g", end.Sub(mon), got, bytes)
	}
}

func TestCheckFuture(t *testing.T) {
	now := at(t, berlin, "2026-12-01 12:00")
	if err := schedule(t, "Sat 22:00-04:00; 2026-12-24 22:00-04:00", berlin).CheckFuture(now); err != nil {
		t.Errorf("future windows refused: %v", err)
	}
	if err := schedule(t, "2026-12-01 10:00-14:00", berlin).CheckFuture(now); err != nil {
		t.Errorf("a window open now refused: %v", err)
	}
	err := schedule(t, "Sat 22:00-04:00; 2026-11-28 22:00-04:00", berlin).CheckFuture(now)
	if want := `entry 2 "2026-11-28 22:00-04:00" closed on 2026-11-29 04:00 CET, before now (2026-12-01 12:00 CET)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckFuture = %v, want %q", err, want)
	}
	if err := schedule(t, "Daily 08:00-09:00=0", berlin).CheckFuture(now); err == nil || !strings.Contains(err.Error(), "never open after now") {
		t.Errorf("CheckFuture of a paused schedule = %v", err)
	}
}

func TestScheduleIn(t *testing.T) {
	s := schedule(t, "Sat 22:00-04:00", berlin)
	utc := s.In(time.UTC)
	if utc.String() != s.String() || utc.Location() != time.UTC || s.Location() != berlin {
		t.Errorf("In changed the windows or kept the zone: %q %v", utc, utc.Location())
	}
	if s.IsOpen(at(t, time.UTC, "2026-11-28 21:30")) != true || utc.IsOpen(at(t, time.UTC, "2026-11-28 21:30")) {
		t.Error("21:30 UTC is 22:30 in Berlin (open) and 21:30 in UTC (closed)")
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{
		"Mon-Fri 20:00-06:00=8Mbps,Sat-Sun 00:00-24:00=20Mbps", "Daily 00:00-24:00=0", "Fri-Mon 23:30-00:15",
		"Mon 10:00-12:00,Mon 11:00-13:00", "Mon,Wed 01:00-05:00; weekends 00:00-24:00 @ 1Gbps", "Fri 20:00-Mon 06:00",
		"2026-03-28 20:00-2026-03-29 08:00=0; Sun 02:30-04:00", "Tues,Thursday 7:00-9:00\nSat 22:00-04:00",
	} {
		f.Add(s)
	}
	probes := []time.Time{}
	for h := 0; h < 24*14; h += 5 {
		probes = append(probes, time.Date(2026, 3, 23, 0, 17, 0, 0, berlin).Add(time.Duration(h)*time.Hour))
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ferry.ParseSchedule(spec, berlin)
		if err != nil {
			return
		}
		// What parses prints to a form that parses to the same windows and
		// the same rates at any time.
		again, err := ferry.ParseSchedule(s.String(), berlin)
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", s.String(), spec, err)
		}
		if diff := cmp.Diff(s.String(), again.String()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		for _, p := range probes {
			if a, b := s.RateAt(p), again.RateAt(p); a != b {
				t.Fatalf("%q at %s: %v, reparsed %v", spec, p, a, b)
			}
		}
		// Segments tile the range they cover, in order.
		from, to := probes[0], probes[len(probes)-1]
		segs := s.Segments(from, to)
		if len(segs) == 0 || !segs[0].Start.Equal(from) || !segs[len(segs)-1].End.Equal(to) {
			t.Fatalf("segments of %q do not cover the range: %v", spec, segs)
		}
		for i := 1; i < len(segs); i++ {
			if !segs[i].Start.Equal(segs[i-1].End) || segs[i].Rate == segs[i-1].Rate {
				t.Fatalf("segments of %q: %v then %v", spec, segs[i-1], segs[i])
			}
		}
		s.NextChange(from)
		s.NextOpening(from)
		s.OpenPeriod(from)
	})
}

// BenchmarkFinish: a six-year transfer across weekly windows in a zone with
// clock changes (the planner asks this once per wave).
func BenchmarkFinish(b *testing.B) {
	s := schedule(b, "Mon-Fri 19:00-07:00=800Mbps; Sat-Sun 00:00-24:00=1Gbps", berlin)
	mon := at(b, time.UTC, "2026-11-23 00:00")
	for b.Loop() {
		if _, ok := s.Finish(mon, 40e12*30, ferry.RateFromBits(1e9)); !ok {
			b.Fatal("never")
		}
	}
}

// BenchmarkRateAt: what the throttle asks when a window may have changed.
func BenchmarkRateAt(b *testing.B) {
	s := schedule(b, "Mon-Fri 19:00-07:00=800Mbps; Sat-Sun 00:00-24:00=1Gbps; Daily 12:00-13:00=0", berlin)
	t := at(b, time.UTC, "2026-11-23 00:00")
	for b.Loop() {
		s.RateAt(t)
		s.NextChange(t)
	}
}
