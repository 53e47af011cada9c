package planner_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/estate"
)

const gib = int64(1) << 30

// host makes a test host with one disk of `used` GiB.
func host(id, app, env, crit string, used int64) planner.Host {
	return planner.Host{ID: id, Name: id, Application: app, Environment: env, Criticality: crit, OS: "CentOS Linux 7.9", OSFamily: "linux",
		Arch: "x86_64", BootMode: "bios", CPUs: 2, MemoryMiB: 4096, Disks: []planner.Disk{{Name: "sda", ProvisionedBytes: 2 * used * gib, UsedBytes: used * gib}}}
}

func conn(src, dst string, port int) planner.Connection {
	return planner.Connection{Src: src, Dst: dst, Port: port, Protocol: "tcp", Count: 100}
}

var no = new(bool)

// plain turns inference off, for tests about the other mechanics on
// estates too small for traffic to mean applications.
func plain(r planner.Rules) planner.Rules {
	r.InferApplications = no
	return r
}

func constraints() planner.Constraints {
	return planner.Constraints{Start: "2026-12-07", Bandwidth: 100e6, MaxHostsPerWave: 10}
}

func build(t *testing.T, e *planner.Estate, r planner.Rules, c planner.Constraints) *planner.Plan {
	t.Helper()
	p, err := planner.Build(e, r, c)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

func waveOf(p *planner.Plan) map[string]int {
	out := map[string]int{}
	for _, w := range p.Waves {
		for _, m := range w.Members {
			out[m.HostID] = w.Number
		}
	}
	return out
}

func reasonOf(p *planner.Plan, id string) string {
	for _, w := range p.Waves {
		for _, m := range w.Members {
			if m.HostID == id {
				return m.Reason
			}
		}
	}
	return ""
}

func TestCycleGroupsAndReasons(t *testing.T) {
	e := &planner.Estate{
		Hosts: []planner.Host{
			host("web01", "shop", "production", "high", 10), host("app03", "", "production", "high", 10),
			host("db01", "", "production", "high", 10), host("ora-12", "", "production", "high", 10),
			host("dns01", "", "production", "high", 1),
		},
		Connections: []planner.Connection{
			conn("web01", "app03", 8080), conn("app03", "db01", 5432), conn("db01", "app03", 9000), // cycle app03 ↔ db01
			conn("db01", "ora-12", 1521), conn("web01", "dns01", 53), // noise
		},
	}
	c := constraints()
	c.MaxHostsPerWave = 2
	p := build(t, e, plain(planner.Rules{}), c)
	if len(p.Cycles) != 1 || p.Cycles[0].Chain != "app03 ↔ db01" {
		t.Fatalf("cycles = %+v, want one app03 ↔ db01", p.Cycles)
	}
	w := waveOf(p)
	if w["app03"] != w["db01"] {
		t.Errorf("cycle split: app03 in %d, db01 in %d", w["app03"], w["db01"])
	}
	if !(w["ora-12"] < w["db01"]) {
		t.Errorf("ora-12 wave %d, db01 wave %d: with 2 hosts per wave the dependency must come first", w["ora-12"], w["db01"])
	}
	r := reasonOf(p, "db01")
	// The binding reason: wave 1 had room for ora-12 but not for the pair.
	for _, want := range []string{"moves with cycle app03 ↔ db01", fmt.Sprintf("db01 depends on ora-12 (port 1521), in wave %d", w["ora-12"]), fmt.Sprintf("wave %d was full", w["ora-12"])} {
		if !strings.Contains(r, want) {
			t.Errorf("reason of db01 = %q, want it to contain %q", r, want)
		}
	}
	// DNS is noise: no dependency, so dns01 is free and web01 is not after it for that reason.
	if strings.Contains(reasonOf(p, "web01"), "dns01") {
		t.Errorf("web01 reason mentions noise flow to dns01: %q", reasonOf(p, "web01"))
	}
	if p.Metrics.Placed != 5 || len(p.Unplaced) != 0 || len(p.Infeasible) != 0 {
		t.Errorf("placed %d, unplaced %v, infeasible %v", p.Metrics.Placed, p.Unplaced, p.Infeasible)
	}
}

func TestPilotWaveTakesOnlyLowRisk(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{
		host("prod1", "", "production", "high", 1), host("test1", "", "test", "low", 1), host("dev1", "", "development", "medium", 1),
		host("test2", "", "test", "critical", 1), host("test3", "", "test", "low", 1), host("p1", "", "production", "low", 1),
		host("p2", "", "production", "low", 1), host("p3", "", "production", "low", 1),
	}, Connections: []planner.Connection{conn("p1", "test3", 80), conn("p2", "test3", 80), conn("p3", "test3", 80)}}
	c := constraints()
	c.Pilot = planner.Pilot{Hosts: 5}
	p := build(t, e, planner.Rules{}, c)
	if !p.Waves[0].Pilot {
		t.Fatalf("wave 1 is not the pilot")
	}
	var got []string
	for _, m := range p.Waves[0].Members {
		got = append(got, m.HostID)
	}
	// test3 has three dependants (> default 2); test2 is critical; prod1 is production.
	if diff := cmp.Diff([]string{"dev1", "test1"}, got); diff != "" {
		t.Errorf("pilot members (-want +got):\n%s", diff)
	}
}

func TestInfeasibleNamesTheChain(t *testing.T) {
	base := func() *planner.Estate {
		return &planner.Estate{Hosts: []planner.Host{
			host("a1", "erp", "production", "high", 10), host("a2", "erp", "production", "high", 10), host("a3", "erp", "production", "high", 10),
			host("b1", "", "production", "high", 10), host("c1", "", "production", "high", 10), host("d1", "", "production", "high", 10),
		}, Connections: []planner.Connection{conn("a1", "b1", 1521), conn("c1", "a1", 8080)}}
	}
	tests := []struct {
		name  string
		rules planner.Rules
		edit  func(*planner.Estate, *planner.Constraints)
		kind  string
		want  []string // substrings of the message
		unpl  []string // hosts that must be unplaced
	}{
		{name: "group bigger than a wave", edit: func(e *planner.Estate, c *planner.Constraints) { c.MaxHostsPerWave = 2 },
			kind: "too-big", want: []string{"erp", "3 hosts", "max_hosts_per_wave 2"}, unpl: []string{"a1", "a2", "a3"}},
		{name: "group bigger than bytes cap", edit: func(e *planner.Estate, c *planner.Constraints) { c.MaxBytesPerWave = planner.ByteSize(25 * gib) },
			kind: "too-big", want: []string{"30.0 GiB", "max_bytes_per_wave 25.0 GiB"}, unpl: []string{"a1", "a2", "a3"}},
		{name: "before rule against a dependency", rules: planner.Rules{Before: []planner.Before{{First: "a1", Then: "b1"}}},
			kind: "order-cycle", want: []string{"rules.before[0]: a1 before b1", "a1 depends on b1 (port 1521)"}},
		{name: "before rule inside a group", rules: planner.Rules{Before: []planner.Before{{First: "a1", Then: "a2"}}},
			kind: "rule-conflict", want: []string{"a1 before a2", "application erp (production)"}},
		{name: "pin against dependency", rules: planner.Rules{Pins: map[string]int{"b1": 3, "a1": 1}},
			kind: "pin-order", want: []string{"b1 pinned to wave 3", "a1 depends on b1 (port 1521)", "a1 pinned to wave 1"}},
		{name: "pins split a group", rules: planner.Rules{Pins: map[string]int{"a1": 1, "a2": 2}},
			kind: "pin-conflict", want: []string{"a1 is pinned to wave 1", "a2 to wave 2", "application erp"}},
		{name: "keep-apart inside a group", rules: planner.Rules{KeepApart: [][2]string{{"a1", "a3"}}},
			kind: "keep-apart", want: []string{"a1 and a3 apart", "application erp"}},
		{name: "pin against before rule", rules: planner.Rules{Before: []planner.Before{{First: "d1", Then: "b1"}}, Pins: map[string]int{"b1": 1}},
			kind: "pin-order", want: []string{"b1 pinned to wave 1", "rules.before[0]: d1 before b1"}},
		{name: "before rule closing a dependency chain", rules: planner.Rules{Before: []planner.Before{{First: "c1", Then: "b1"}}},
			kind: "order-cycle", want: []string{"c1 depends on a1 (port 8080)", "rules.before[0]: c1 before b1", "a1 depends on b1 (port 1521)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, c := base(), constraints()
			if tc.edit != nil {
				tc.edit(e, &c)
			}
			tc.rules = plain(tc.rules)
			p := build(t, e, tc.rules, c)
			if len(p.Infeasible) == 0 {
				t.Fatalf("no infeasibility reported; waves %v", waveOf(p))
			}
			inf := p.Infeasible[0]
			if inf.Kind != tc.kind {
				t.Errorf("kind = %q, want %q (%s)", inf.Kind, tc.kind, inf.Message)
			}
			all := inf.Message + " | " + strings.Join(inf.Chain, " | ")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("infeasibility %q does not name %q", all, w)
				}
			}
			un := map[string]bool{}
			for _, u := range p.Unplaced {
				un[u.HostID] = true
				if u.Reason == "" {
					t.Errorf("unplaced %s has no reason", u.HostID)
				}
			}
			for _, h := range tc.unpl {
				if !un[h] {
					t.Errorf("%s should be unplaced (too big), unplaced = %v", h, p.Unplaced)
				}
			}
			// One conflict never leaves the rest of the estate unplaced.
			if len(p.Unplaced) != len(tc.unpl) {
				t.Errorf("unplaced %v, want only %v", p.Unplaced, tc.unpl)
			}
			if inf.Resolution == "" {
				t.Errorf("infeasibility %q does not say what the planner did instead", inf.Message)
			}
			checkInvariants(t, e, tc.rules, c, p)
		})
	}
}

func TestBadEstateNamesEveryItem(t *testing.T) {
	e := &planner.Estate{
		Hosts: []planner.Host{host("h1", "", "", "", 1), host("h1", "", "", "", 1), host("h3", "", "prod", "", 1)},
		Connections: []planner.Connection{
			conn("h1", "ghost", 80), conn("nobody", "h1", 80), {Src: "h1", Port: 80},
		},
	}
	e.Hosts[2].Disks[0].UsedBytes = -5
	err := planner.ValidateEstate(e)
	var p planner.Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want Problems", err)
	}
	for _, want := range []string{`duplicate host id "h1"`, `environment "prod"`, "used_bytes is negative", `dst "ghost" is not a host id`, `src "nobody" is not a host id`, "both dst and dst_address are empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if len(p) != 6 {
		t.Errorf("got %d problems, want 6 (all of them, not the first):\n%v", len(p), err)
	}
}

func TestReadConfig(t *testing.T) {
	good, err := os.ReadFile("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := planner.ReadConfig(bytes.NewReader(good))
	if err != nil {
		t.Fatalf("example constraints: %v", err)
	}
	if cfg.Bandwidth != 1e9 || cfg.MaxBytesPerWave != planner.ByteSize(40<<40) || len(cfg.TransferWindows) != 5 || cfg.Rules.Pins["ntp01"] != 3 {
		t.Errorf("parsed %+v", cfg.Constraints)
	}
	bad := []struct{ yaml, want string }{
		{"bandwidth: 0\n", "bandwidth: must be above zero"},
		{"bandwidth: 10Mbps\nmax_hosts_per_wave: -1\n", "max_hosts_per_wave: -1 is negative"},
		{"bandwidth: 10 parsecs\n", "not a bit rate"},
		{"bandwidth: 1Gbps\nmax_bytes_per_wave: lots\n", "not a size"},
		{"bandwidth: 1Gbps\ntransfer_windows:\n  - when: \"Sat 10:00-10:00\"\n", "transfer_windows[0].when \"Sat 10:00-10:00\": opens and closes at the same minute"},
		{"bandwidth: 1Gbps\ntransfer_windows:\n  - when: \"Sat 01:00-02:00\"\n    rate: 0\n", "every window has rate 0"},
		// Overlapping windows are read as everywhere in Ferry (the one that
		// opened last holds: Mon-Fri 19:00-07:00 then Sat 00:00-24:00 gives
		// Saturday morning to Saturday's); the planner used to refuse them
		// while the engine took them. What stays an error is two windows
		// opening at once, and it names both.
		{"bandwidth: 1Gbps\ntransfer_windows:\n  - when: \"Mon-Fri 19:00-07:00\"\n  - when: \"Fri 19:00-24:00\"\n", "transfer_windows[1] \"Fri 19:00-24:00\" and transfer_windows[0] \"Mon-Fri 19:00-07:00\" both start on Fri at 19:00"},
		{"bandwidth: 1Gbps\ntransfer_windows:\n  - when: \"Sat 01:00-02:00=8Mbps\"\n    rate: 10Mbps\n", "transfer_windows[0]: a rate in when (8Mbps) and in rate (10Mbps): give one"},
		{"bandwidth: 1Gbps\ncutover_windows: [\"Sat 22:00-04:00=8Mbps\"]\n", "cutover_windows[0] \"Sat 22:00-04:00=8Mbps\": a cutover window takes no rate"},
		{"bandwidth: 1Gbps\ncutover_windows: [\"Sat 22:00-04:00\", \"Sat 22:00-23:00\"]\n", "cutover_windows[1] \"Sat 22:00-23:00\" and cutover_windows[0] \"Sat 22:00-04:00\" both start on Sat at 22:00"},
		{"bandwidth: 100000000\n", "\"100000000\" is not a bit rate (e.g. 100Mbps, 1Gbps): rate \"100000000\": a number needs a unit"},
		{"bandwidth: 100MB\n", "\"MB\" is not per second"},
		{"bandwidth: unlimited\n", "bandwidth: unlimited is not a link"},
		{"bandwidth: 1Gbps\ncutover_windows: [\"Someday 22:00-04:00\"]\n", "cutover_windows[0]"},
		{"bandwidth: 1Gbps\ntimezone: Mars/Olympus\n", "timezone:"},
		{"bandwidth: 1Gbps\nstart: yesterday\n", "start:"},
		{"bandwidth: 1Gbps\nmax_host_per_wave: 3\n", "field max_host_per_wave not found"},
		{"bandwidth: 1Gbps\nrules:\n  pins: {web01: 0}\n", "rules.pins[web01]: wave 0"},
		{"bandwidth: 1Gbps\nrules:\n  keep_apart: [[a, a]]\n", "rules.keep_apart[0]"},
		{"bandwidth: 1Gbps\nrules:\n  before: [{first: a}]\n", "rules.before[0]: first and then are both required"},
	}
	for _, tc := range bad {
		_, err := planner.ReadConfig(strings.NewReader(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadConfig(%q) = %v, want error containing %q", tc.yaml, err, tc.want)
		}
	}
	// Several problems at once are all reported.
	_, err = planner.ReadConfig(strings.NewReader("bandwidth: 0\nmax_hosts_per_wave: -2\nparallel_migrations: -1\n"))
	var p planner.Problems
	if !errors.As(err, &p) || len(p) != 3 {
		t.Errorf("want 3 problems, got %v", err)
	}
}

func TestUnknownRuleReference(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{host("a", "", "", "", 1)}}
	_, err := planner.Build(e, planner.Rules{Pins: map[string]int{"ghost": 2}, Before: []planner.Before{{First: "a", Then: "application:nope"}}}, constraints())
	if err == nil || !strings.Contains(err.Error(), `rules.pins[ghost]: "ghost" is not a host`) || !strings.Contains(err.Error(), `rules.before[0].then: "application:nope"`) {
		t.Errorf("err = %v", err)
	}
}

func TestScheduleRespectsWindows(t *testing.T) {
	// 450 GB at 100 Mbit/s = 36,000 s = 10 h of link time.
	e := &planner.Estate{Hosts: []planner.Host{{ID: "big", Disks: []planner.Disk{{Name: "d", ProvisionedBytes: 450e9, UsedBytes: 450e9}}}}}
	rate := planner.BitRate(100e6)
	paused := planner.BitRate(0)
	c := planner.Constraints{Start: "2026-12-07", Timezone: "Asia/Shanghai", Bandwidth: 1e9,
		// Monday 2026-12-07: only 20:00-24:00 each night at 100 Mbit/s; the rate-0 window carries nothing.
		TransferWindows: []planner.TransferWindow{{When: "daily 20:00-24:00", Rate: &rate}, {When: "daily 08:00-09:00", Rate: &paused}},
		CutoverWindows:  []string{"Sat 22:00-04:00"}}
	p := build(t, e, planner.Rules{}, c)
	w := p.Waves[0]
	// 4 h per night: nights of Mon, Tue -> 8 h, then 2 h on Wednesday: done Wed 22:00.
	if got := w.ReplicationEnd.Format("Mon 2006-01-02 15:04 MST"); got != "Wed 2026-12-09 22:00 CST" {
		t.Errorf("replication end = %s", got)
	}
	if got := w.CutoverStart.Format("Mon 15:04"); got != "Sat 22:00" {
		t.Errorf("cutover start = %s, want the Saturday window", got)
	}
	if w.CutoverEnd.Sub(w.CutoverStart) < 30*60e9 {
		t.Errorf("cutover shorter than the default 30m overhead: %s", w.CutoverEnd.Sub(w.CutoverStart))
	}
}

// TestScheduleAcrossClockChange: windows are wall-clock times in the
// plan's zone, as in the engine. On the night Berlin's clocks go forward,
// "Sat 22:00-04:00" is five hours long: 180 GB at 100 Mbit/s (4 h of link
// time) from 22:00 CET ends at 03:00 CEST.
func TestScheduleAcrossClockChange(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{{ID: "big", Disks: []planner.Disk{{Name: "d", ProvisionedBytes: 180e9, UsedBytes: 180e9}}}}}
	c := planner.Constraints{Start: "2026-03-28", Timezone: "Europe/Berlin", Bandwidth: 100e6,
		TransferWindows: []planner.TransferWindow{{When: "Sat 22:00-04:00"}}, CutoverWindows: []string{"Sun 04:00-06:00"}}
	w := build(t, e, planner.Rules{}, c).Waves[0]
	if got := w.ReplicationEnd.Format("Mon 2006-01-02 15:04 MST"); got != "Sun 2026-03-29 03:00 CEST" {
		t.Errorf("replication end = %s, want Sun 2026-03-29 03:00 CEST", got)
	}
	if got := w.CutoverStart.Format("Mon 15:04 MST"); got != "Sun 04:00 CEST" {
		t.Errorf("cutover start = %s, want the window that opens at 04:00", got)
	}
}

// TestAverageRateOverlaps: the week's average follows the rule on
// overlaps: Friday night's window gives way to Saturday's at midnight.
func TestAverageRateOverlaps(t *testing.T) {
	wk, we := planner.BitRate(800e6), planner.BitRate(1e9)
	c := planner.Constraints{Bandwidth: 1e9, TransferWindows: []planner.TransferWindow{
		{When: "Mon-Fri 19:00-07:00", Rate: &wk}, {When: "Sat-Sun 00:00-24:00", Rate: &we}}}
	got, err := c.AverageRate()
	if err != nil {
		t.Fatal(err)
	}
	// Weeknights: four of 12 h and Friday's 5 h until Saturday opens.
	if want := (800e6*53 + 1e9*48) / 168; math.Abs(got-want) > 1e-6*want {
		t.Errorf("average %.0f bit/s, want %.0f", got, want)
	}
	// A window's rate above the link's is capped at the link, as the
	// engine caps a window's rate at the agent's.
	fast := planner.BitRate(10e9)
	c = planner.Constraints{Bandwidth: 1e9, TransferWindows: []planner.TransferWindow{{When: "Daily 00:00-24:00", Rate: &fast}}}
	if got, _ := c.AverageRate(); got != 1e9 {
		t.Errorf("average %.0f bit/s, want the bandwidth's 1e9", got)
	}
}

func TestDeterministicJSON(t *testing.T) {
	e, _ := estate.Generate(estate.Options{Hosts: 1500, Seed: 7})
	cfg := exampleConfig(t)
	a, _ := json.Marshal(build(t, e, cfg.Rules, cfg.Constraints))
	b, _ := json.Marshal(build(t, e, cfg.Rules, cfg.Constraints))
	if !bytes.Equal(a, b) {
		t.Fatal("two plans of the same input differ")
	}
}

func exampleConfig(t testing.TB) *planner.Config {
	f, err := os.Open("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := planner.ReadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPropertiesOverSeeds plans many random estates under random
// constraints and rules and checks every invariant independently of the
// planner's own bookkeeping.
func TestPropertiesOverSeeds(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := 1; seed <= seeds; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 99))
		n := 30 + r.IntN(400)
		e, _ := estate.Generate(estate.Options{Hosts: n, Seed: uint64(seed)})
		c := planner.Constraints{Start: "2026-12-07", Bandwidth: planner.BitRate(10e6 + r.IntN(1000)*1e6), MaxHostsPerWave: 8 + r.IntN(40)}
		if r.IntN(2) == 0 {
			c.MaxBytesPerWave = planner.ByteSize(int64(5+r.IntN(50)) << 40)
		}
		if r.IntN(2) == 0 {
			c.Pilot = planner.Pilot{Hosts: 3 + r.IntN(8)}
		}
		if r.IntN(3) == 0 {
			c.CutoverWindows = []string{"Sat 22:00-04:00"}
		}
		var rules planner.Rules
		pick := func() string { return e.Hosts[r.IntN(len(e.Hosts))].ID }
		for i := 0; i < r.IntN(4); i++ {
			rules.Before = append(rules.Before, planner.Before{First: pick(), Then: pick()})
		}
		for i := 0; i < r.IntN(4); i++ {
			rules.KeepApart = append(rules.KeepApart, [2]string{pick(), pick()})
		}
		if r.IntN(2) == 0 {
			rules.Pins = map[string]int{pick(): 1 + r.IntN(6)}
		}
		rules.KeepTogether = []planner.KeepTogether{{Name: "kt", Hosts: []string{pick(), pick()}}}
		// Self-references are input errors; drop them so the seed tests planning.
		rules.Before = dropSelf(rules.Before)
		rules.KeepApart = dropSelfPairs(rules.KeepApart)
		t.Run(fmt.Sprintf("seed=%d/hosts=%d", seed, n), func(t *testing.T) {
			p, err := planner.Build(e, rules, c)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			checkInvariants(t, e, rules, c, p)
			again, _ := planner.Build(e, rules, c)
			a, _ := json.Marshal(p)
			b, _ := json.Marshal(again)
			if !bytes.Equal(a, b) {
				t.Errorf("not deterministic")
			}
		})
	}
}

func dropSelf(bs []planner.Before) []planner.Before {
	var out []planner.Before
	for _, b := range bs {
		if b.First != b.Then {
			out = append(out, b)
		}
	}
	return out
}

func dropSelfPairs(ps [][2]string) [][2]string {
	var out [][2]string
	for _, p := range ps {
		if p[0] != p[1] {
			out = append(out, p)
		}
	}
	return out
}

// checkInvariants verifies a plan against its inputs without trusting the
// planner: each host placed once or reported, caps, order, before rules,
// pins, keep-apart, keep-together, applications and the pilot.
func checkInvariants(t *testing.T, e *planner.Estate, r planner.Rules, c planner.Constraints, p *planner.Plan) {
	t.Helper()
	wave := map[string]int{}
	for _, w := range p.Waves {
		var hosts int
		var bytes int64
		for _, m := range w.Members {
			if _, dup := wave[m.HostID]; dup {
				t.Errorf("%s placed twice", m.HostID)
			}
			wave[m.HostID] = w.Number
			if m.Reason == "" {
				t.Errorf("%s has no reason", m.HostID)
			}
			hosts++
			bytes += m.Bytes
		}
		capH := c.MaxHostsPerWave
		if w.Pilot && (capH == 0 || c.Pilot.Hosts < capH) {
			capH = c.Pilot.Hosts
		}
		if capH > 0 && hosts > capH {
			t.Errorf("wave %d has %d hosts > cap %d", w.Number, hosts, capH)
		}
		if c.MaxBytesPerWave > 0 && bytes > int64(c.MaxBytesPerWave) {
			t.Errorf("wave %d has %d bytes > cap %d", w.Number, bytes, c.MaxBytesPerWave)
		}
		if w.ReplicationEnd.Before(w.ReplicationStart) || w.CutoverStart.Before(w.ReplicationEnd) || w.End.Before(w.Start) {
			t.Errorf("wave %d times out of order: %+v", w.Number, w)
		}
		if w.Number > 1 && w.CutoverStart.Before(p.Waves[w.Number-2].CutoverEnd) {
			t.Errorf("wave %d cuts over before wave %d finished", w.Number, w.Number-1)
		}
	}
	// A rule may give way only where the plan names the conflict.
	conflicted := map[string]bool{}
	for _, inf := range p.Infeasible {
		if inf.Resolution == "" {
			t.Errorf("infeasibility %q has no resolution", inf.Message)
		}
		for _, h := range inf.Hosts {
			conflicted[h] = true
		}
	}
	for _, u := range p.Unplaced {
		if _, dup := wave[u.HostID]; dup {
			t.Errorf("%s both placed and unplaced", u.HostID)
		}
		wave[u.HostID] = 0
	}
	// Shared services placed last or kept on-premises order nothing; the
	// ones kept on-premises are in no wave, by policy.
	sharedPolicy := map[string]string{}
	for _, s := range p.SharedServices {
		sharedPolicy[s.HostID] = s.Policy
		if s.Policy == planner.PolicyOnPremises {
			if _, placed := wave[s.HostID]; placed {
				t.Errorf("%s kept on-premises but placed", s.HostID)
			}
			wave[s.HostID] = 0
			conflicted[s.HostID] = true
		}
	}
	if len(wave) != len(e.Hosts) {
		t.Errorf("%d hosts accounted for, estate has %d", len(wave), len(e.Hosts))
	}
	if len(p.Unplaced) > 0 && len(p.Infeasible) == 0 {
		t.Errorf("hosts unplaced with no infeasibility reported: %v", p.Unplaced[:min(3, len(p.Unplaced))])
	}
	names := map[string][]string{}
	byID := map[string]*planner.Host{}
	for i := range e.Hosts {
		h := &e.Hosts[i]
		byID[h.ID] = h
		names[h.ID] = append(names[h.ID], h.ID)
		names[h.Name] = append(names[h.Name], h.ID)
	}
	resolve := func(ref string) []string {
		if app, ok := strings.CutPrefix(ref, "application:"); ok {
			var out []string
			for _, h := range e.Hosts {
				if h.Application == app {
					out = append(out, h.ID)
				}
			}
			return out
		}
		return names[ref]
	}
	noise := map[int]bool{}
	for _, p := range planner.DefaultNoisePorts {
		noise[p] = true
	}
	noiseProc := map[string]bool{}
	for _, p := range planner.DefaultNoiseProcesses {
		noiseProc[p] = true
	}
	for _, cn := range e.Connections {
		if cn.Dst == "" || noise[cn.Port] || noiseProc[strings.ToLower(cn.Process)] {
			continue
		}
		ws, wd := wave[cn.Src], wave[cn.Dst]
		if pol, shared := sharedPolicy[cn.Dst]; shared && pol != planner.PolicyEarly || sharedPolicy[cn.Src] != "" && sharedPolicy[cn.Dst] == "" {
			continue
		}
		if ws > 0 && wd > 0 && wd > ws {
			t.Errorf("%s (wave %d) depends on %s (wave %d, later)", cn.Src, ws, cn.Dst, wd)
		}
		if ws > 0 && wd == 0 && !conflicted[cn.Dst] {
			t.Errorf("%s placed in wave %d but its dependency %s is unplaced with no conflict named", cn.Src, ws, cn.Dst)
		}
	}
	for _, b := range r.Before {
		for _, x := range resolve(b.First) {
			for _, y := range resolve(b.Then) {
				if wave[x] > 0 && wave[y] > 0 && wave[x] >= wave[y] && !conflicted[x] && !conflicted[y] {
					t.Errorf("before rule %s<%s broken: waves %d, %d", x, y, wave[x], wave[y])
				}
			}
		}
	}
	for _, k := range r.KeepApart {
		for _, x := range resolve(k[0]) {
			for _, y := range resolve(k[1]) {
				if x != y && wave[x] > 0 && wave[x] == wave[y] && !conflicted[x] && !conflicted[y] {
					t.Errorf("keep-apart %s/%s both in wave %d", x, y, wave[x])
				}
			}
		}
	}
	for ref, pw := range r.Pins {
		for _, h := range resolve(ref) {
			if wave[h] != 0 && wave[h] != pw && !conflicted[h] {
				t.Errorf("%s pinned to %d, placed in %d", h, pw, wave[h])
			}
		}
	}
	for _, k := range r.KeepTogether {
		var ws []int
		for _, ref := range k.Hosts {
			for _, h := range resolve(ref) {
				ws = append(ws, wave[h])
			}
		}
		for _, w := range ws {
			if w != ws[0] {
				t.Errorf("keep-together %s split over waves %v", k.Name, ws)
				break
			}
		}
	}
	app := map[string]int{}
	for _, h := range e.Hosts {
		if h.Application == "" || wave[h.ID] == 0 {
			continue
		}
		key := h.Application + "/" + h.Environment
		if w, ok := app[key]; ok && w != wave[h.ID] {
			t.Errorf("application %s split: %s in wave %d, another in %d", key, h.ID, wave[h.ID], w)
		}
		app[key] = wave[h.ID]
	}
	if len(p.Waves) > 0 && p.Waves[0].Pilot {
		for _, m := range p.Waves[0].Members {
			h := byID[m.HostID]
			if (h.Environment == "production" || h.Environment == "dr" || h.Criticality == "high" || h.Criticality == "critical") && r.Pins[m.HostID] != 1 && h.PinnedWave != 1 {
				t.Errorf("pilot wave holds %s (%s, %s)", h.ID, h.Environment, h.Criticality)
			}
		}
	}
}

func TestCheckMove(t *testing.T) {
	e := &planner.Estate{Hosts: []planner.Host{
		host("db", "", "production", "high", 10), host("app", "", "production", "high", 10),
		host("w1", "web", "production", "high", 1), host("w2", "web", "production", "high", 1), host("x", "", "production", "high", 1),
	}, Connections: []planner.Connection{conn("app", "db", 5432), conn("w1", "app", 8080)}}
	c := constraints()
	c.MaxHostsPerWave = 2
	rules := plain(planner.Rules{KeepApart: [][2]string{{"x", "db"}}, Pins: map[string]int{"x": 2}})
	p := build(t, e, rules, c)
	w := waveOf(p)
	if w["db"] > w["app"] || w["app"] > w["w1"] {
		t.Fatalf("unexpected plan %v", w)
	}
	kinds := func(vs []planner.Violation) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Kind)
		}
		return out
	}
	tests := []struct {
		mv   planner.Move
		want []string
	}{
		{planner.Move{HostID: "db", ToWave: len(p.Waves) + 1}, []string{"order"}},                                            // app would depend on a later wave
		{planner.Move{HostID: "w1", ToWave: w["w1"]}, nil},                                                                   // no-op
		{planner.Move{HostID: "w1", ToWave: len(p.Waves) + 1}, []string{"group"}},                                            // splits web
		{planner.Move{HostID: "w1", ToWave: len(p.Waves) + 1, WholeGroup: true}, nil},                                        // whole group to a new last wave
		{planner.Move{HostID: "x", ToWave: 1}, append(append([]string{"pin"}, capOrNil(p, 1)...), apartIf(w["db"] == 1)...)}, // pinned to 2
		{planner.Move{HostID: "w1", ToWave: 0}, []string{"wave"}},                                                            // no wave 0
		{planner.Move{HostID: "db", ToWave: w["x"]}, append(capOrNil(p, w["x"]), keepApartKinds(w, "db")...)},                // keep-apart with x
	}
	for _, tc := range tests {
		got, err := planner.CheckMove(e, rules, c, p, tc.mv)
		if err != nil {
			t.Fatalf("%+v: %v", tc.mv, err)
		}
		if diff := cmp.Diff(tc.want, kinds(got), cmpSorted); diff != "" {
			t.Errorf("CheckMove(%+v) kinds (-want +got):\n%s\n%+v", tc.mv, diff, got)
		}
	}
	// Applying a clean move recomputes the plan; a bad one changes nothing.
	np, vs, err := planner.ApplyMove(e, rules, c, p, planner.Move{HostID: "w1", ToWave: len(p.Waves) + 1, WholeGroup: true})
	if err != nil || len(vs) != 0 {
		t.Fatalf("ApplyMove: %v %v", err, vs)
	}
	if nw := waveOf(np); nw["w1"] != len(p.Waves)+1 || nw["w2"] != len(p.Waves)+1 || len(np.Waves) != len(p.Waves)+1 {
		t.Errorf("after move: %v", nw)
	}
	checkInvariants(t, e, rules, c, np)
	if np, vs, _ := planner.ApplyMove(e, rules, c, p, planner.Move{HostID: "x", ToWave: 1}); np != nil || len(vs) == 0 {
		t.Errorf("bad move applied")
	}
	if _, err := planner.CheckMove(e, rules, c, p, planner.Move{HostID: "ghost", ToWave: 1}); err == nil {
		t.Error("unknown host accepted")
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
})

// capOrNil expects a capacity violation when wave w is already full.
func capOrNil(p *planner.Plan, w int) []string {
	if p.Waves[w-1].Hosts >= 2 {
		return []string{"capacity"}
	}
	return nil
}

func apartIf(b bool) []string {
	if b {
		return []string{"keep-apart"}
	}
	return nil
}

// keepApartKinds: moving db next to x breaks keep-apart, and db's dependant
// app must not end up before it.
func keepApartKinds(w map[string]int, _ string) []string {
	out := []string{"keep-apart"}
	if w["app"] < w["x"] {
		out = append(out, "order")
	}
	return out
}

func TestFerryBeatsNaiveBaseline(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		e, _ := estate.Generate(estate.Options{Hosts: 3000, Seed: seed})
		c := planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 50}
		p := build(t, e, planner.Rules{}, c)
		base, err := planner.Baseline(e, planner.Rules{}, c)
		if err != nil {
			t.Fatal(err)
		}
		if p.Metrics.CrossingWeight >= base.CrossingWeight {
			t.Errorf("seed %d: Ferry crossing %d >= baseline %d", seed, p.Metrics.CrossingWeight, base.CrossingWeight)
		}
	}
}

func TestGenerateIsDeterministicAndRealistic(t *testing.T) {
	a, planted := estate.Generate(estate.Options{Hosts: 5000, Seed: 42})
	b, _ := estate.Generate(estate.Options{Hosts: 5000, Seed: 42})
	c, _ := estate.Generate(estate.Options{Hosts: 5000, Seed: 43})
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	jc, _ := json.Marshal(c)
	if !bytes.Equal(ja, jb) || bytes.Equal(ja, jc) {
		t.Fatal("same seed must give the same estate, another seed another")
	}
	if err := planner.ValidateEstate(a); err != nil {
		t.Fatal(err)
	}
	if len(a.Hosts) != 5000 {
		t.Errorf("%d hosts", len(a.Hosts))
	}
	per := float64(len(a.Connections)) / 5000
	if per < 8 || per > 12 {
		t.Errorf("%.1f connections per host, want about 10", per)
	}
	seen := map[string]bool{}
	for _, h := range a.Hosts {
		seen[h.OS] = true
		seen[h.Arch] = true
		seen[h.BootMode] = true
	}
	for _, want := range []string{"SUSE Linux Enterprise Server 11 SP4", "Microsoft Windows Server 2003 R2 Standard", "CentOS Linux 6.10", "uefi", "aarch64"} {
		if !seen[want] {
			t.Errorf("no %s in the generated estate", want)
		}
	}
	if len(planted.Cycles) == 0 || planted.CrossAppDep == 0 || len(planted.Shared) == 0 {
		t.Errorf("planted %+v", planted)
	}
	// The planner finds every planted cycle.
	p := build(t, a, planner.Rules{}, planner.Constraints{Start: "2026-12-07", Bandwidth: 1e9, MaxHostsPerWave: 100})
	w := waveOf(p)
	for _, cy := range planted.Cycles {
		if w[cy[0]] != w[cy[1]] {
			t.Errorf("planted cycle %v split over waves %d and %d", cy, w[cy[0]], w[cy[1]])
		}
	}
	if len(p.Cycles) < len(planted.Cycles)/2 {
		t.Errorf("found %d cycles, planted %d", len(p.Cycles), len(planted.Cycles))
	}
}

func TestCSVHeaders(t *testing.T) {
	e, _ := estate.Generate(estate.Options{Hosts: 20, Seed: 1})
	var h, c bytes.Buffer
	if err := estate.WriteCSV(e, &h, &c); err != nil {
		t.Fatal(err)
	}
	if got := strings.SplitN(h.String(), "\n", 2)[0]; got != "id,name,fqdn,ip,mac,bios_uuid,os,os_family,arch,boot_mode,cpus,memory_mib,disk_count,disk_provisioned_gib,disk_used_gib,environment,criticality,application,owner,tags,cpu_p95,memory_p95,virtualization" {
		t.Errorf("hosts header %q", got)
	}
	if got := strings.SplitN(c.String(), "\n", 2)[0]; got != "src,dst,dst_address,port,protocol,process,count,bytes" {
		t.Errorf("connections header %q", got)
	}
	if n := strings.Count(h.String(), "\n"); n != 21 {
		t.Errorf("%d host lines", n)
	}
}

func FuzzReadConfig(f *testing.F) {
	good, _ := os.ReadFile("testdata/plan.yaml")
	f.Add(string(good))
	f.Add("bandwidth: 1Gbps\ntransfer_windows:\n  - when: \"Fri 23:00-01:00\"\n")
	f.Add("bandwidth: 10\ncutover_windows: [\"Sun 23:00-02:00\"]\nstart: 2026-01-01\n")
	f.Add("max_bytes_per_wave: 1e400\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := planner.ReadConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		// A config that validates must plan a one-host estate without panicking.
		cfg.Start = "2026-12-07"
		e := &planner.Estate{Hosts: []planner.Host{host("h", "", "", "", 1)}}
		if _, err := planner.Build(e, planner.Rules{}, cfg.Constraints); err != nil {
			t.Fatalf("valid config rejected by Build: %v", err)
		}
	})
}

func FuzzReadEstate(f *testing.F) {
	e, _ := estate.Generate(estate.Options{Hosts: 12, Seed: 3})
	seed, _ := json.Marshal(e)
	f.Add(string(seed))
	f.Add(`{"hosts":[{"id":"a"},{"id":"b","pinned_wave":2}],"connections":[{"src":"a","dst":"b","port":1},{"src":"b","dst":"a","port":2}]}`)
	f.Add(`{"hosts":[{"id":"a","disks":[{"used_bytes":-1}]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := planner.ReadEstate(strings.NewReader(s))
		if err != nil || planner.ValidateEstate(e) != nil {
			return
		}
		p, err := planner.Build(e, planner.Rules{}, planner.Constraints{Start: "2026-12-07", Bandwidth: 1e6, MaxHostsPerWave: 3, Pilot: planner.Pilot{Hosts: 1}})
		if err != nil {
			t.Fatalf("valid estate rejected: %v", err)
		}
		checkInvariants(t, e, planner.Rules{}, planner.Constraints{MaxHostsPerWave: 3, Pilot: planner.Pilot{Hosts: 1}}, p)
	})
}

// FuzzDecodeEstate holds the fast decoder to strict encoding/json's
// meaning (unknown keys refused): same estate or both an error.
func FuzzDecodeEstate(f *testing.F) {
	e, _ := estate.Generate(estate.Options{Hosts: 8, Seed: 9})
	seed, _ := json.Marshal(e)
	f.Add(string(seed))
	f.Add(`{"connections":[{"src":"a","dst":"b","port":80,"count":1,"bytes":2}],"hosts":[{"id":"a"},{"id":"b"}]}`)
	f.Add(`{"connections":[{"SRC":"a","port":1.0}]}`)
	f.Add(`{"connections":[{"src":"a\u00e9","port":-0}], "extra": {"x":[1,2,{"y":"]"}]}}`)
	f.Add(`{"hosts":null,"connections":[]}`)
	f.Add(`{"connections":[{"port":007}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := planner.DecodeEstate([]byte(s))
		var want planner.Estate
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		werr := dec.Decode(&want)
		if werr == nil && dec.More() {
			werr = errors.New("trailing data")
		}
		if werr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				werr = errors.New("trailing data")
			}
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeEstate err %v, encoding/json err %v", err, werr)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("decoded differently (-json +fast):\n%s", diff)
		}
	})
}

// TestEstateJSONErrorsSayWhere: unknown keys are refused with their path,
// syntax and type errors name the line, column and host.
func TestEstateJSONErrorsSayWhere(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"hosts":[{"id":"a"}],"conections":[]}`, `line 1, column 23: unknown key "conections"`},
		{"{\"hosts\":[\n {\"id\":\"a\"},\n {\"id\":\"b\",\"disks\":[{\"name\":\"sda\",\"siez\":1}]}\n]}", `line 3, column 35 (host b, hosts[1].disks[0]): unknown key "siez"`},
		{`{"hosts":[{"id":"a"},{"id":"b"}],"connections":[{"src":"a","dst":"b","port":80,"prot":"tcp"}]}`, `(connections[0]): unknown key "prot"`},
		{"{\"hosts\":[\n {\"id\":\"a\",\"cpus\":\"four\"}\n]}", `line 2, column 19 (host a, hosts[0].cpus): string is not a valid int`},
		{"{\"hosts\":[\n {\"id\":\"a\",\"disks\":[{\"used_bytes\":1.5}]}]}", `(host a, hosts[0].disks[0].used_bytes): number 1.5 is not a valid int64`},
		{"{\"hosts\":[\n {\"id\":\"a\",\n  \"name\":\"x\" \"os\":\"y\"}]}", `line 3, column 14 (host a, hosts[0].name)`},
		{`{"hosts":[{"id":"a"}]`, `the document ends too early`},
	}
	for _, tc := range tests {
		_, err := planner.DecodeEstate([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeEstate(%q) = %v, want an error containing %q", tc.doc, err, tc.want)
		}
	}
	// Known keys match as encoding/json matches them (case-insensitively).
	if _, err := planner.DecodeEstate([]byte(`{"Hosts":[{"ID":"a"}]}`)); err != nil {
		t.Errorf("differently cased known keys refused: %v", err)
	}
}
